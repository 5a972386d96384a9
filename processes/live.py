"""Channel-layer groups that live clients subscribe to, and the publisher that feeds them.

Group names are derived here, on the server, from ids: a client can never name a group it
joins. Publishing never holds up a request: with Redis, events go to a background thread
(`processes.background`) that sends them in order; with the in-memory layer (the embedded
default) they are sent inline, and only to groups somebody listens to, and the events other
processes commit (the worker's) reach this process's listeners through `processes.tail`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable, Container, Iterable, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from . import tail
from .background import Drain
from .models import EventType, ProcessEvent

MONITORING_GROUP = "monitoring"
_MOVED = frozenset({EventType.TASK_REASSIGNED, EventType.TASK_ESCALATED})
_ASSIGNED = EventType.TASK_ASSIGNED

T = TypeVar("T")


def process_group(process_id: int) -> str:
    return f"process.{process_id}"


def inbox_group(user_id: int) -> str:
    return f"inbox.{user_id}"


def role_group(role: str) -> str:
    return f"role.{role}"


def task_group(task_id: int) -> str:
    """The viewers of one task's discussion (`/ws/tasks/{id}/`)."""
    return f"task.{task_id}"


def user_group(user_id: int) -> str:
    """Every open socket of one user: told to re-check its access (`processes.live_access`)."""
    return f"user.{user_id}"


def takes_access(event) -> bool:
    """Whether someone may have lost sight of the event's process or task by it: a task moved
    away from its assignee (and from that person's manager), or taken out of a role's queue
    by one member (the others no longer see it)."""
    return event.type in _MOVED or (event.type == _ASSIGNED and bool(event.payload.get("claimed")))


def groups_of(event) -> list[str]:
    """The groups that hear of `event`: its process, the dashboard, and the inboxes and role
    queues it touches; the task's own viewers when it moved between people."""
    groups = [process_group(event.process_id), MONITORING_GROUP]
    for key in ("assigned_to_id", "previous_assignee_id"):
        if event.payload.get(key):
            groups.append(inbox_group(event.payload[key]))
    # A role's queue hears of tasks put in it and taken out of it, never of tasks
    # routed straight to one person: those are that person's business.
    if event.payload.get("role") and (event.payload.get("queued") or event.payload.get("claimed")):
        groups.append(role_group(event.payload["role"]))
    if event.task_id and takes_access(event):
        groups.append(task_group(event.task_id))
    return list(dict.fromkeys(groups))


def messages_for(events: Iterable, listening: Container[str]) -> list[tuple[str, dict]]:
    """(group, message) pairs for the groups among `listening`: each message is made only for
    an event somebody hears (most groups have nobody listening at any moment). The message
    of an event that may take someone's access away says so (`recheck`): its listeners check
    that they may still listen before they hear it (`processes.consumers`)."""
    pairs = []
    for event in events:
        groups = [group for group in groups_of(event) if group in listening]
        if groups:
            message = {"type": "event.message", "event": event.as_message()}
            if takes_access(event):
                message["recheck"] = True
            pairs += [(group, message) for group in groups]
    return pairs


def broadcast(events: Iterable) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        # Once each, whether the commit here or the tail of the event log gets there first.
        _publish(layer, _events.fresh(events))
        return
    # The messages are made on the publisher's thread, which runs while the committing thread
    # waits on the database: the events of a committed step do not change.
    _publisher.put(list(events))


def _publish(layer, events: list) -> None:
    """Which of the events' groups anybody listens to (with Redis, one round trip), then the
    messages for those alone, sent; with Redis, the events then noted as sent, for the relay
    (`processes.live_relay`) to know them from those a killed process never sent."""
    pairs = messages_for(events, listened_groups(layer, {group for event in events for group in groups_of(event)}))
    if pairs:
        run_for_listeners(layer, _send, layer, pairs)
    if hasattr(layer, "mark_sent"):
        run_for_listeners(layer, layer.mark_sent, [event.pk for event in events])


# The event loop that the in-memory layer's consumers wait on (the server's), noted by each
# consumer that connects. The layer's queues belong to it and are not thread-safe.
_listening: asyncio.AbstractEventLoop | None = None


def note_listening_loop() -> None:
    global _listening
    _listening = asyncio.get_running_loop()


def run_for_listeners(layer, send: Callable[..., Awaitable[T]], *args) -> T:
    """Run `send(*args)` (a coroutine function) from this synchronous thread where the layer's
    listeners hear it; returns its result.

    The in-memory layer's queues belong to the loop its consumers wait on: a request's thread
    gets there through asgiref's bridge anyway; a thread of this process's own (the background
    delivery of notifications) would run it on a loop of its own, whose wake-ups those
    consumers never see, so it hands it to theirs. Redis is reached from this thread's own
    event loop, kept for the thread's life: channels-redis keeps its connections per loop, and
    asgiref's bridge made a loop, and so new connections, for every call."""
    if not isinstance(layer, InMemoryChannelLayer) and not _loop_running_here():
        return thread_loop().run_until_complete(send(*args))
    loop = _listening
    if isinstance(layer, InMemoryChannelLayer) and loop is not None and loop.is_running() and not _runs_on(loop):
        return asyncio.run_coroutine_threadsafe(send(*args), loop).result(timeout=5)
    return async_to_sync(send)(*args)


def listened_groups(layer, groups: Iterable[str]) -> set[str]:
    """The groups among `groups` that somebody listens to: the in-memory layer knows its own,
    Redis is asked about all of them at once (`gndp.channel_layer`)."""
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group in groups if layer.groups.get(group)}
    if hasattr(layer, "listened"):
        return run_for_listeners(layer, layer.listened, groups)
    return set(groups)


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for the channel layer, made on first use."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _runs_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # no loop runs in this thread
        return False


async def _send(layer, pairs) -> None:
    # One message per group, the group's events in order, the groups concurrently.
    by_group: dict[str, list[dict]] = {}
    for group, message in pairs:
        by_group.setdefault(group, []).append(message)
    await asyncio.gather(*(layer.group_send(group, _one(messages)) for group, messages in by_group.items()))


def _one(messages: list[dict]) -> dict:
    if len(messages) == 1:
        return messages[0]
    batch = {"type": "event.batch", "events": [message["event"] for message in messages]}
    if any(message.get("recheck") for message in messages):
        batch["recheck"] = True
    return batch


def _send_batch(events) -> None:
    _publish(get_channel_layer(), events)


def follows_others(layer) -> bool:
    """Whether this layer needs the tail to hear what other processes commit."""
    return isinstance(layer, InMemoryChannelLayer) and settings.GNDP_LIVE_TAIL_SECONDS > 0


# The events to their groups: ours at our commit, other processes' as the tail reads them.
_events = tail.hand(ProcessEvent, _send_batch)


_loops = threading.local()
# 20 ms: live enough for a person, and a busy process sends one batch per 20 ms, not per commit.
_publisher = Drain("publisher", _send_batch, linger=0.02)


def flush(timeout: float = 5.0) -> None:
    """Wait until the background publisher has sent what it holds (tests, shutdown)."""
    _publisher.wait(timeout)
