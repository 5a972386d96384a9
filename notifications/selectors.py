"""Reads: a person's notifications, the unread count, their preferences."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from processes.errors import NotFound

from .models import Notification, NotificationPreference


def notifications_for(user, *, unread_only: bool = False) -> QuerySet[Notification]:
    """What the bell and the notifications page list: the in-app ones, newest first."""
    notifications = Notification.objects.filter(recipient=user, in_app=True) if user.is_authenticated \
        else Notification.objects.none()
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-id")


def notification_for(user, notification_id: Any) -> Notification:
    try:
        return notifications_for(user).get(pk=int(notification_id))
    except (Notification.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(f"notification {notification_id} not found") from None


def unread_count(user) -> int:
    return notifications_for(user, unread_only=True).count()


def preferences_for(user) -> NotificationPreference:
    """The stored preferences, or the defaults (unsaved) for someone who never chose."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found if found is not None else NotificationPreference(user=user)
