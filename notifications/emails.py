"""Notification emails through Django's email framework, after commit, batched.

A worker sends a person's pending emails a short while after they were made
(`GNDP_NOTIFICATION_EMAIL_DELAY`), so that what arrives at once goes together: from
`GNDP_NOTIFICATION_DIGEST_MIN` on, as one digest. During the person's quiet hours nothing
is sent; the periodic flush sends what waited once they are over, as a digest if many.
The pending rows are locked while sending, so two workers never send the same email.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from .models import EmailStatus, Notification
from .selectors import preferences_for

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[GNDP Flow] "


def _absolute(url: str) -> str:
    return settings.GNDP_BASE_URL + url


def single_message(user, notification: Notification) -> EmailMessage:
    body = render_to_string("notifications/email/single.txt", {
        "user": user, "n": notification, "link": _absolute(notification.url),
        "settings_link": _absolute("/profile/"),
    })
    return EmailMessage(SUBJECT_PREFIX + notification.title, body, to=[user.email])


def digest_message(user, notifications: list[Notification]) -> EmailMessage:
    body = render_to_string("notifications/email/digest.txt", {
        "user": user, "items": [(n, _absolute(n.url)) for n in notifications],
        "settings_link": _absolute("/profile/"), "all_link": _absolute("/notifications/"),
    })
    return EmailMessage(f"{SUBJECT_PREFIX}{len(notifications)} new notifications", body, to=[user.email])


def send_pending(user_id: int, *, now: datetime | None = None) -> int:
    """Send the person's pending notification emails; returns how many emails went out."""
    now = now or timezone.now()
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return 0
    if preferences_for(user).is_quiet(now):
        return 0
    with transaction.atomic():
        pending = list(Notification.objects.select_for_update(skip_locked=True)
                       .filter(recipient_id=user_id, email_status=EmailStatus.PENDING).order_by("id"))
        if not pending:
            return 0
        ids = [n.pk for n in pending]
        if not user.is_active or not user.email:
            Notification.objects.filter(pk__in=ids).update(email_status=EmailStatus.NONE)
            return 0
        if len(pending) >= settings.GNDP_NOTIFICATION_DIGEST_MIN:
            messages = [digest_message(user, pending)]
        else:
            messages = [single_message(user, n) for n in pending]
        # Sent inside the transaction: if the mail server refuses, the rows stay pending
        # for the next flush instead of being marked sent.
        with get_connection(fail_silently=False) as connection:
            connection.send_messages(messages)
        Notification.objects.filter(pk__in=ids).update(email_status=EmailStatus.SENT, emailed_at=now)
    return len(messages)


def flush(*, now: datetime | None = None) -> int:
    """Send every pending email whose delay has passed (quiet hours over, a lost hand-off)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.GNDP_NOTIFICATION_EMAIL_DELAY)
    user_ids = (Notification.objects.filter(email_status=EmailStatus.PENDING, created_at__lte=cutoff)
                .order_by().values_list("recipient_id", flat=True).distinct())
    sent = 0
    for user_id in list(user_ids):
        try:
            sent += send_pending(user_id, now=now)
        except Exception:  # noqa: BLE001 - one person's mail server trouble must not stop the rest
            log.warning("could not send the notification emails of user %s", user_id, exc_info=True)
    return sent
