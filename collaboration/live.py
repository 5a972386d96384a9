"""Discussion events to the viewers of one task (`/ws/tasks/{id}/`).

The process's viewers get them like every event (`processes.live`); someone who sees a
task but not its process (a colleague looking at a queued task) listens on the task.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from processes.live import task_group

log = logging.getLogger(__name__)


def publish_to_task(task_id: int, events) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    messages = [{"type": "event.message", "event": event.as_message()} for event in events]

    async def send() -> None:
        for message in messages:
            await layer.group_send(task_group(task_id), message)

    try:
        async_to_sync(send)()
    except Exception:  # noqa: BLE001 - live updates are best effort by design
        log.warning("could not publish %d events to task %s", len(messages), task_id, exc_info=True)


