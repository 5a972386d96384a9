"""Writes a person makes to their own notifications and preferences."""

from __future__ import annotations

from datetime import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from processes.errors import InvalidInput

from .kinds import CHANNELS, Kind
from .models import Notification, NotificationPreference, validate_timezone
from .selectors import notification_for, notifications_for


def notification_mark_read(*, user, notification_id: Any) -> Notification:
    """Mark one of the caller's notifications read (already read: unchanged)."""
    notification = notification_for(user, notification_id)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, user) -> int:
    return notifications_for(user, unread_only=True).update(read_at=timezone.now())


def preferences_update(
    *,
    user,
    channels: dict[str, list[str]] | None = None,
    quiet_start: time | None | str = "",
    quiet_end: time | None | str = "",
    timezone_name: str | None = None,
) -> NotificationPreference:
    """Change what is given; `""` (the default) leaves quiet hours as they are, None clears."""
    problems: dict[str, str] = {}
    if channels is not None:
        for kind, chosen in channels.items():
            if kind not in Kind.values:
                problems[f"channels.{kind}"] = "unknown kind"
            elif not isinstance(chosen, (list, tuple)) or not set(chosen) <= set(CHANNELS):
                problems[f"channels.{kind}"] = f"a list of {', '.join(CHANNELS)}"
    if timezone_name is not None:
        try:
            validate_timezone(timezone_name)
        except Exception:  # noqa: BLE001 - ValidationError; reported like every field
            problems["timezone"] = "unknown time zone"
    if problems:
        raise InvalidInput("invalid notification preferences", details=problems)
    with transaction.atomic():
        NotificationPreference.objects.get_or_create(user=user)
        preference = NotificationPreference.objects.select_for_update().get(user=user)
        if channels is not None:
            preference.channels = {**preference.channels,
                                   **{kind: [c for c in CHANNELS if c in chosen] for kind, chosen in channels.items()}}
        if quiet_start != "":
            preference.quiet_start = quiet_start
        if quiet_end != "":
            preference.quiet_end = quiet_end
        if timezone_name is not None:
            preference.timezone = timezone_name
        preference.save()
    return preference


def email_address_update(*, user, email: str) -> None:
    """The address notification emails go to (empty: no emails)."""
    from django.core.validators import validate_email

    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except Exception:  # noqa: BLE001 - ValidationError; reported like every field
            raise InvalidInput("invalid email address", details={"email": "not a valid email address"}) from None
    get_user_model().objects.filter(pk=user.pk).update(email=email)
    user.email = email
