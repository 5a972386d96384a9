"""WebSocket consumers: they only check who may listen, subscribe, and forward events.

Group names come from the server (`processes.live`), never from the client. Anonymous
connections are refused at the handshake; origins are checked by the ASGI stack. Their
database calls run once more on a new connection when the first met one the server had
dropped (`gndp.websocket.database_call`).
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from gndp.websocket import database_call
from tasks.access import roles_of, visible_processes

from . import live

# Close codes in the application range (4000-4999), so a client can tell why.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


class EventConsumer(AsyncJsonWebsocketConsumer):
    """Forwards every `event.message` (and each event of an `event.batch`) of its groups as
    the contract's Event."""

    groups_joined: list[str]

    async def connect(self) -> None:
        live.note_listening_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        groups = await self.groups_for(user)
        if groups is None:
            await self.close(code=FORBIDDEN)
            return
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients have nothing to say beyond keep-alives; whatever they send is ignored."""

    async def event_message(self, message) -> None:
        await self.send_json(message["event"])

    async def event_batch(self, message) -> None:
        """Several events of one group, sent together by the publisher: one frame each."""
        for event in message["events"]:
            await self.send_json(event)

    async def groups_for(self, user) -> list[str] | None:
        raise NotImplementedError


class InboxConsumer(EventConsumer):
    """`/ws/inbox/`: the caller's own tasks and its roles' queues."""

    async def groups_for(self, user) -> list[str]:
        roles = await database_call(roles_of)(user)
        return [live.inbox_group(user.pk), *(live.role_group(role) for role in roles)]

    async def notification_message(self, message) -> None:
        """The caller's own new notifications (the bell): sent to its inbox group only."""
        await self.send_json(message["notification"])


class ProcessConsumer(EventConsumer):
    """`/ws/processes/{id}/`: one process the caller may see."""

    async def groups_for(self, user) -> list[str] | None:
        process_id = self.scope["url_route"]["kwargs"]["process_id"]
        visible = await database_call(
            lambda: visible_processes(user).filter(pk=process_id).exists()
        )()
        return [live.process_group(process_id)] if visible else None


class MonitoringConsumer(EventConsumer):
    """`/ws/monitoring/`: dashboard counters, for staff."""

    async def groups_for(self, user) -> list[str] | None:
        return [live.MONITORING_GROUP] if user.is_staff or user.is_superuser else None
