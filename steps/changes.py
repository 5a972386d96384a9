"""The one way a task changes.

Every change of a task (its status, assignee, priority, result, stamps and deadlines) moves
its version on by one, here and nowhere else: a writer that read the task and means to
change what it read sends its UPDATE guarded by that version and status, and finds the row
changed under it (409 `stale_task`) instead of overwriting someone else's change. A status
changes only by a move declared in `tasks.states`. The test suite holds every UPDATE of a
task to a moved version (`tests/steps/test_one_writer.py`).
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from processes.errors import Conflict
from tasks import states
from tasks.models import TaskInstance

from .writes import Writes


def change_task(task: TaskInstance, writes: Writes | None = None, *, move: str | None = None, **changes: Any) -> None:
    """Change one task: the fields in `changes`, and its status by `move` (a move of
    `tasks.states`, checked against the status read). Guarded by the version and status
    read; sent with `writes` (a step's, at its commit) or at once."""
    if move is not None:
        changes["status"] = states.target_of(task.status, move, task_id=task.pk)
    seen = {"version": task.version, "status": task.status}
    for field, value in changes.items():
        setattr(task, field, value)
    task.version += 1
    target = writes if writes is not None else Writes()
    target.update(task, [*changes, "version"], where=seen,
                  stale=Conflict(f"task {task.pk} was changed by someone else", code="stale_task"))
    if writes is None:
        target.execute()


def change_tasks(tasks: QuerySet[TaskInstance], **changes: Any) -> int:
    """Change many tasks in one UPDATE (stamps, deadlines, clocks, re-encrypted results),
    each row's version moved on; returns how many changed. Their statuses stay: a move is
    one task's, through `change_task`."""
    if "status" in changes:
        raise ValueError("a status changes by a move, one task at a time (change_task)")
    return tasks.update(version=F("version") + 1, **changes)
