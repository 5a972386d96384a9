"""WebSocket consumers: they check who may listen, subscribe, and forward events.

Group names come from the server (`processes.live`), never from the client. Anonymous
connections are refused at the handshake; origins are checked by the ASGI stack.

A socket keeps checking after its handshake (`processes.live_access`). Every socket joins
its user's group, where it hears when its session ended or its user's access changed; it
checks again then, before it delivers an event that may have taken its access away (a task
moved between people: the event's `recheck`), when its session's expiry passes, and at
least every `GNDP_SOCKET_RECHECK_SECONDS` while it delivers. Any other delivery costs a
comparison. A socket whose session no longer signs its user in closes with
UNAUTHENTICATED; one whose user may no longer see what it listens to, with FORBIDDEN.
Database calls run once more on a new connection when the first met one the server had
dropped (`gndp.websocket.database_call`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from gndp.websocket import database_call
from tasks.access import roles_of, visible_processes

from . import live, live_access, live_relay, tail

# Close codes in the application range (4000-4999), so a client can tell why.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
MESSAGE_TOO_BIG = 1009
# The most a client frame may hold: a keep-alive is a few bytes.
MAX_CLIENT_FRAME = 4096
# Event ids a socket remembers having sent, to send each once.
SENT_IDS_KEPT = 2000


@dataclass
class Verdict:
    """What a check decided: close with `refusal`, or listen on `groups` until `expires_at`."""

    refusal: int | None = None
    groups: list[str] = field(default_factory=list)
    expires_at: float | None = None  # the session's expiry (a timestamp), where known


class EventConsumer(AsyncJsonWebsocketConsumer):
    """Forwards every `event.message` (and each event of an `event.batch`) of its groups as
    the contract's Event, while its user may still hear it."""

    # Whether an event that moved a task makes this socket check before hearing it. The
    # inbox's groups are its user's own and its roles': a moved task changes neither.
    checks_moves = True

    groups_joined: list[str]

    async def connect(self) -> None:
        live.note_listening_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        self.user = user
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.groups_joined = []
        self.refused = False
        self.check_due = 0.0
        self.expiry_timer: asyncio.TimerHandle | None = None
        self.sent_ids: OrderedDict[int, None] = OrderedDict()
        if await self.check():
            if live.follows_others(self.channel_layer):
                # What other processes (the worker) commit from now on reaches this socket too.
                await database_call(tail.listen)()
            # And on Redis, what a killed publisher never sent.
            self.relayed = live_relay.listen(self.channel_layer)
            await self.accept()

    async def disconnect(self, code) -> None:
        if getattr(self, "relayed", False):
            self.relayed = False
            live_relay.leave()
        if getattr(self, "expiry_timer", None) is not None:
            self.expiry_timer.cancel()
        if getattr(self, "groups_joined", None):
            await self._join([])

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """Clients have nothing to say beyond keep-alives: what they send is dropped unread.
        Never parsed (a frame nested thousands deep overflowed the JSON parser and killed
        the socket's consumer with an error); a frame larger than a keep-alive closes the
        connection (1009, message too big)."""
        if len(text_data or bytes_data or "") > MAX_CLIENT_FRAME:
            await self.close(code=MESSAGE_TOO_BIG)

    async def event_message(self, message) -> None:
        if self.clear(message) or await self.may_hear(message):
            await self._send_new([message["event"]])

    async def event_batch(self, message) -> None:
        """Several events of one group, sent together by the publisher: one frame each."""
        if self.clear(message) or await self.may_hear(message):
            await self._send_new(message["events"])

    async def _send_new(self, events: list[dict]) -> None:
        """Each event once: the relay (`processes.live_relay`) may send one its publisher sent
        too, and one socket may hear an event through two of its groups."""
        for event in events:
            event_id = event.get("id")
            if event_id is not None:
                if event_id in self.sent_ids:
                    continue
                self.sent_ids[event_id] = None
                if len(self.sent_ids) > SENT_IDS_KEPT:
                    self.sent_ids.popitem(last=False)
            await self.send_json(event)

    async def access_recheck(self, message) -> None:
        """From `processes.live_access`: a session of this user ended, or its access changed.
        A message naming another session of the same user is not for this socket."""
        if self.refused:
            return
        session_key = message.get("session_key")
        if session_key and session_key != self.session_key:
            return
        if message.get("ended"):
            await self.refuse(UNAUTHENTICATED)
        else:
            await self.check()

    def clear(self, message) -> bool:
        """The check on every delivery, a comparison: no check is due (otherwise `may_hear`)."""
        return (not self.refused and time.monotonic() < self.check_due
                and not (self.checks_moves and "recheck" in message))

    async def may_hear(self, message) -> bool:
        """Whether this socket may deliver `message`, checking now where one is due (which
        may close the socket)."""
        if self.refused:
            return False
        return self.clear(message) or await self.check()

    async def check(self) -> bool:
        """Check the session and the access now (in a thread: it reads the database); follow
        the groups it allows, or close."""
        verdict = await database_call(self.verdict)()
        if verdict.refusal is not None:
            await self.refuse(verdict.refusal)
            return False
        await self._join(verdict.groups)
        self._schedule(verdict.expires_at)
        return True

    def verdict(self) -> Verdict:
        user, expires_at = live_access.signed_in_user(self.session_key)
        if user is None or user.pk != self.user.pk:
            return Verdict(UNAUTHENTICATED)
        groups = self.groups_for(user)
        if groups is None:
            return Verdict(FORBIDDEN)
        return Verdict(None, [*groups, live.user_group(user.pk)], expires_at)

    def groups_for(self, user) -> list[str] | None:
        """The groups `user` (fresh from the database) may hear on this socket; None: none.
        Runs in a thread."""
        raise NotImplementedError

    async def refuse(self, code: int) -> None:
        self.refused = True
        await self._join([])
        await self.close(code=code)

    async def _join(self, groups: list[str]) -> None:
        """Be in exactly these groups."""
        for group in [g for g in self.groups_joined if g not in groups]:
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in [g for g in groups if g not in self.groups_joined]:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = list(groups)

    def _schedule(self, expires_at: float | None) -> None:
        """The next check: at most `GNDP_SOCKET_RECHECK_SECONDS` away for a delivery, and
        at the session's expiry in any case (a message to itself, handled in turn)."""
        now = time.time()
        self.check_due = time.monotonic() + settings.GNDP_SOCKET_RECHECK_SECONDS
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None
        if expires_at is not None:
            self.check_due = min(self.check_due, time.monotonic() + expires_at - now)
            self.expiry_timer = asyncio.get_running_loop().call_later(
                max(0.0, expires_at - now) + 0.05, self._expiry_passed)

    def _expiry_passed(self) -> None:
        self.expiry_timer = None
        asyncio.ensure_future(self.channel_layer.send(self.channel_name, {"type": live_access.RECHECK}))


class InboxConsumer(EventConsumer):
    """`/ws/inbox/`: the caller's own tasks and its roles' queues; the roles are read again
    at every check, so its groups follow the caller's roles."""

    checks_moves = False

    def groups_for(self, user) -> list[str]:
        return [live.inbox_group(user.pk), *(live.role_group(role) for role in roles_of(user))]

    async def notification_message(self, message) -> None:
        """The caller's own new notifications (the bell): sent to its inbox group only."""
        if self.clear(message) or await self.may_hear(message):
            await self.send_json(message["notification"])


class ProcessConsumer(EventConsumer):
    """`/ws/processes/{id}/`: one process the caller may see."""

    def groups_for(self, user) -> list[str] | None:
        process_id = self.scope["url_route"]["kwargs"]["process_id"]
        visible = visible_processes(user).filter(pk=process_id).exists()
        return [live.process_group(process_id)] if visible else None
