"""Channel-layer groups that live clients subscribe to. Group names are derived here, on
the server, from ids: a client can never name a group it joins."""

from __future__ import annotations

from typing import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

MONITORING_GROUP = "monitoring"


def process_group(process_id: int) -> str:
    return f"process.{process_id}"


def inbox_group(user_id: int) -> str:
    return f"inbox.{user_id}"


def role_group(role: str) -> str:
    return f"role.{role}"


def broadcast(events: Iterable) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(_send_all)
    send(layer, list(events))


async def _send_all(layer, events) -> None:
    for event in events:
        message = {"type": "event.message", "event": event.as_message()}
        groups = {process_group(event.process_id), MONITORING_GROUP}
        for key in ("assigned_to_id", "previous_assignee_id"):
            if event.payload.get(key):
                groups.add(inbox_group(event.payload[key]))
        if event.payload.get("role"):
            groups.add(role_group(event.payload["role"]))
        for group in groups:
            await layer.group_send(group, message)
