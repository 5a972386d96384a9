"""Channel-layer groups that live clients subscribe to, and the publisher that feeds them.

Group names are derived here, on the server, from ids: a client can never name a group it
joins. Publishing never holds up a request: with Redis, events go to a background thread
that sends them in order; with the in-memory layer (one process, development) they are sent
inline, and only to groups somebody listens to.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Iterable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

MONITORING_GROUP = "monitoring"


def process_group(process_id: int) -> str:
    return f"process.{process_id}"


def inbox_group(user_id: int) -> str:
    return f"inbox.{user_id}"


def role_group(role: str) -> str:
    return f"role.{role}"


def messages_for(events: Iterable) -> list[tuple[str, dict]]:
    """(group, message) pairs: each event to its process, the dashboard, and the inboxes
    and role queues it touches."""
    pairs = []
    for event in events:
        message = {"type": "event.message", "event": event.as_message()}
        groups = [process_group(event.process_id), MONITORING_GROUP]
        for key in ("assigned_to_id", "previous_assignee_id"):
            if event.payload.get(key):
                groups.append(inbox_group(event.payload[key]))
        # A role's queue hears of tasks put in it and taken out of it, never of tasks
        # routed straight to one person: those are that person's business.
        if event.payload.get("role") and (event.payload.get("queued") or event.payload.get("claimed")):
            groups.append(role_group(event.payload["role"]))
        pairs += [(group, message) for group in dict.fromkeys(groups)]
    return pairs


def broadcast(events: Iterable) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    pairs = messages_for(events)
    if isinstance(layer, InMemoryChannelLayer):
        pairs = [(group, message) for group, message in pairs if layer.groups.get(group)]
        if pairs:
            async_to_sync(_send)(layer, pairs)
        return
    _publisher().put(pairs)


async def _send(layer, pairs) -> None:
    # Groups concurrently, since each group_send is a round trip to the broker; within a
    # group in sequence, so that its listeners see a process's events in order.
    by_group: dict[str, list[dict]] = {}
    for group, message in pairs:
        by_group.setdefault(group, []).append(message)

    async def send_in_order(group: str, messages: list[dict]) -> None:
        for message in messages:
            await layer.group_send(group, message)

    await asyncio.gather(*(send_in_order(group, messages) for group, messages in by_group.items()))


class _Publisher(threading.Thread):
    """One daemon thread with one long-lived event loop, draining a queue in order.

    The loop lives as long as the thread: channels-redis keeps its connections per event
    loop, so a loop per batch would open and close Redis connections for every batch."""

    def __init__(self) -> None:
        super().__init__(name="gndp-publisher", daemon=True)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.idle = threading.Event()
        self.idle.set()
        self._pending = 0  # batches put and not yet sent
        self._count = threading.Lock()

    def put(self, pairs) -> None:
        if pairs:
            with self._count:
                self._pending += 1
                self.idle.clear()
            self.queue.put(pairs)

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            batches = [self.queue.get()]
            # Whatever piled up meanwhile goes out with it, still in order.
            while not self.queue.empty():
                batches.append(self.queue.get_nowait())
            batch = [pair for pairs in batches for pair in pairs]
            try:
                loop.run_until_complete(_send(get_channel_layer(), batch))
            except Exception:  # noqa: BLE001 - a broker outage degrades live updates only
                log.warning("could not publish %d messages", len(batch), exc_info=True)
            with self._count:
                self._pending -= len(batches)
                if not self._pending:
                    self.idle.set()


_lock = threading.Lock()
_thread: _Publisher | None = None


def _publisher() -> _Publisher:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = _Publisher()
            _thread.start()
        return _thread


def flush(timeout: float = 5.0) -> None:
    """Wait until the background publisher has sent what it holds (tests, shutdown)."""
    if _thread is not None:
        _thread.idle.wait(timeout)
