"""The bell, live: new notifications pushed to their recipient's inbox WebSocket group.

The message is not an Event: `{"type": "notification.created", "unread_count": n,
"notifications": [...]}`. `processes.consumers.InboxConsumer.notification_message`
forwards it; the page's bell sets its count from `unread_count`.

With the in-memory channel layer (the embedded default) a bell rings only in the process
that made the notification; those another process made (a worker's deliveries) reach this
one's listeners through `processes.tail`, once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db.models import Count

from processes import tail
from processes.live import inbox_group, listened_groups, run_for_listeners

from .models import Notification

log = logging.getLogger(__name__)

MESSAGE_TYPE = "notification.created"


def as_message(notification: Notification) -> dict:
    return {
        "id": notification.pk, "kind": notification.kind, "title": notification.title, "body": notification.body,
        "url": notification.url, "process_id": notification.process_id, "task_id": notification.task_id,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
    }


def push(notifications: list[Notification]) -> None:
    """One message per recipient with its new in-app notifications and unread count. Best
    effort: a broker outage costs the live bell only; the page reads the count on load."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        notifications = _bells.fresh(notifications)  # once, here or by the tail
    _push(layer, notifications)


def _push_made_elsewhere(notifications: list[Notification]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        _push(layer, notifications)


def _push(layer, notifications: list[Notification]) -> None:
    by_user: dict[int, list[Notification]] = defaultdict(list)
    for notification in notifications:
        if notification.in_app:
            by_user[notification.recipient_id].append(notification)
    if not by_user:
        return
    # Only to whoever has an inbox open: the others' count is read when their page loads.
    try:
        heard = listened_groups(layer, [inbox_group(user_id) for user_id in by_user])
    except Exception:  # noqa: BLE001 - live updates are best effort by design
        log.warning("could not ask who listens for %d notification messages", len(by_user), exc_info=True)
        return
    by_user = {user_id: items for user_id, items in by_user.items() if inbox_group(user_id) in heard}
    if not by_user:
        return
    counts = dict(Notification.objects.filter(recipient_id__in=list(by_user), in_app=True, read_at__isnull=True)
                  .order_by().values("recipient_id").annotate(n=Count("pk")).values_list("recipient_id", "n"))
    pairs = [
        (inbox_group(user_id), {"type": "notification.message", "notification": {
            "type": MESSAGE_TYPE, "unread_count": counts.get(user_id, 0),
            "notifications": [as_message(n) for n in items]}})
        for user_id, items in by_user.items()
    ]
    send(pairs)


def send(pairs: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        run_for_listeners(layer, _send_all, layer, pairs)
    except Exception:  # noqa: BLE001 - live updates are best effort by design
        log.warning("could not push %d notification messages", len(pairs), exc_info=True)


async def _send_all(layer, pairs) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group, message in pairs))


# The bells: ours at our deliveries, other processes' as the tail reads their notifications.
_bells = tail.hand(Notification, _push_made_elsewhere)
