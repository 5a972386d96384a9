"""`/ws/tasks/{id}/`: the discussion of one task, for those who can see the task."""

from __future__ import annotations

from processes.consumers import EventConsumer
from tasks.access import visible_tasks

from .live import task_group


class TaskConsumer(EventConsumer):
    def groups_for(self, user) -> list[str] | None:
        task_id = self.scope["url_route"]["kwargs"]["task_id"]
        return [task_group(task_id)] if visible_tasks(user).filter(pk=task_id).exists() else None
