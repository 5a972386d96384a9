"""Discussion events to the viewers of one task (`/ws/tasks/{id}/`).

The process's viewers get them like every event (`processes.live`); someone who sees a
task but not its process (a colleague looking at a queued task) listens on the task. With
the in-memory channel layer, the discussion events other processes commit reach this
process's listeners through `processes.tail`, once each.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from processes import tail
from processes.live import listened_groups, run_for_listeners
from processes.models import DiscussionEventType, ProcessEvent

from processes.live import task_group

log = logging.getLogger(__name__)


def publish_to_task(task_id: int, events) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        events = _discussions.fresh(events)  # once, here or by the tail
        if not events:
            return
    messages = [{"type": "event.message", "event": event.as_message()} for event in events]

    async def send() -> None:
        for message in messages:
            await layer.group_send(task_group(task_id), message)

    try:
        async_to_sync(send)()
    except Exception:  # noqa: BLE001 - live updates are best effort by design
        log.warning("could not publish %d events to task %s", len(messages), task_id, exc_info=True)


def _publish_discussed_elsewhere(events: list[ProcessEvent]) -> None:
    """The discussion events of tasks that another process committed, to the tasks' viewers here."""
    layer = get_channel_layer()
    by_task: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        if event.task_id and event.type in DiscussionEventType.values:
            by_task[event.task_id].append({"type": "event.message", "event": event.as_message()})
    if not by_task:
        return
    heard = listened_groups(layer, [task_group(task_id) for task_id in by_task])
    listening = {task_id: messages for task_id, messages in by_task.items() if task_group(task_id) in heard}
    if not listening:
        return

    async def send() -> None:
        for task_id, messages in listening.items():
            for message in messages:
                await layer.group_send(task_group(task_id), message)

    run_for_listeners(layer, send)


# The discussions: ours at our commit, other processes' as the tail reads them.
_discussions = tail.hand(ProcessEvent, _publish_discussed_elsewhere)
