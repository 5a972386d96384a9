"""`/ws/tasks/{id}/`: the discussion of one task, for those who can see the task."""

from __future__ import annotations


from gndp.websocket import database_call
from processes.consumers import EventConsumer
from tasks.access import visible_tasks

from .live import task_group


class TaskConsumer(EventConsumer):
    async def groups_for(self, user) -> list[str] | None:
        task_id = self.scope["url_route"]["kwargs"]["task_id"]
        visible = await database_call(lambda: visible_tasks(user).filter(pk=task_id).exists())()
        return [task_group(task_id)] if visible else None
