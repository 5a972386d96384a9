"""Tasks read with their process and assignee in hand-written SQL: the lock read of every
task operation (`lock_task`), a worker's look at a system step (`read_task`) and the API's
own-inbox page (`TaskRows`). All join the same three tables and turn a row into the same
instances; the ORM's compiling of that join cost more than running it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections

from processes.errors import NotFound
from processes.models import ProcessInstance
from tasks.models import TaskInstance
from tasks.routing import Route

from . import lookahead, tricks
from .rows import Columns
from .writes import pipelined


class TaskRows:
    """`SELECT` of tasks (alias t) with their process (p) and assignee (u), and its rows read
    back; `process_only`: the process columns to read, the others deferred."""

    def __init__(self, process_only: Sequence[str] = ()) -> None:
        self.task = Columns(TaskInstance, "t")
        self.process = Columns(ProcessInstance, "p", only=process_only)
        self.user = Columns(get_user_model(), "u")

    def select(self) -> str:
        quote = connection.ops.quote_name
        task, process, user = self.task, self.process, self.user
        return (
            f"SELECT {task.sql(quote)}, {process.sql(quote)}, {user.sql(quote)}"
            f" FROM {quote(TaskInstance._meta.db_table)} t"
            f" JOIN {quote(ProcessInstance._meta.db_table)} p ON p.{quote(ProcessInstance._meta.pk.column)} = t.process_id"
            f" LEFT JOIN {quote(user.model._meta.db_table)} u ON u.{quote(user.model._meta.pk.column)} = t.assigned_to_id"
        )

    def read(self, row: Sequence, db) -> TaskInstance:
        """The task of a row read on `db` (a database wrapper), with its process and assignee."""
        split, end = len(self.task), len(self.task) + len(self.process)
        task = self.task.read(row[:split], db)
        # Cached as select_related caches what it joined (not set through the descriptors,
        # which would ask the database router where each instance belongs: it came from here).
        _PROCESS.set_cached_value(task, self.process.read(row[split:end], db))
        _ASSIGNEE.set_cached_value(task, self.user.read(row[end:], db))
        return task


_PROCESS = TaskInstance._meta.get_field("process")
_ASSIGNEE = TaskInstance._meta.get_field("assigned_to")


# --- the lock read of every task operation -----------------------------------------------------

def lock_task(task_id: Any, db, *, completing: bool = False) -> tuple[TaskInstance, dict[str, Route]]:
    """Read the task with its process and assignee, and lock the process row, in one statement;
    404 where there is no such task. `completing`: the step completes this task, and the
    routing of its certain next tasks travels in the same round trip (`steps.lookahead`):
    their routes, by atom id, come back with it (none where its atom is not known here).

    The task's columns come from the statement's snapshot and may be older than the lock;
    that is safe because every change to a task is guarded by the version it was read with
    (`steps.changes`), and the engine reads the atom states from the freshly locked row.
    """
    try:
        task_id = int(task_id)
    except (TypeError, ValueError):
        raise NotFound(f"task {task_id} not found") from None
    if not -(2**63) <= task_id < 2**63:  # no such id; SQLite would refuse the number itself
        raise NotFound(f"task {task_id} not found")
    if not tricks.on("lock_read"):
        return _lock_with_the_orm(task_id), {}
    foreseen = None
    try:
        with db.cursor() as cursor:
            with pipelined(db):
                cursor.execute(_lock_sql(db.vendor), [task_id])
                foreseen = lookahead.send(task_id, db) if completing and tricks.on("lookahead") else None
            # Read once the pipeline is done: its end brings every answer back in the one
            # round trip (a read inside it would ask for them in one of its own).
            row = cursor.fetchone()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        task = _rows().read(row, db)
        routes = foreseen.routes(task) if foreseen is not None else {}
    except BaseException:
        if foreseen is not None:
            foreseen.discard()
        raise
    lookahead.remember(task.pk, task.process, task.atom_id)
    return task, routes


def _lock_with_the_orm(task_id: int) -> TaskInstance:
    """The plain way (`steps.tricks`): the same rows and lock through the ORM."""
    of = ("process",) if connection.features.has_select_for_update_of else ()
    task = (TaskInstance.objects.select_related("process", "assigned_to").select_for_update(of=of)
            .filter(pk=task_id).first())
    if task is None:
        raise NotFound(f"task {task_id} not found")
    lookahead.remember(task.pk, task.process, task.atom_id)
    return task


def read_task(task_id: int) -> TaskInstance | None:
    """The task with its process and assignee, unlocked: what a worker looks at before it
    runs a system step (the lock read's statement, without the lock)."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_read_sql(db.vendor), [task_id])
        row = cursor.fetchone()
    if row is None:
        return None
    task = _rows().read(row, db)
    lookahead.remember(task.pk, task.process, task.atom_id)
    return task


@lru_cache(maxsize=None)
def _rows() -> TaskRows:
    return TaskRows()


@lru_cache(maxsize=None)
def _lock_sql(vendor: str) -> str:
    # Written out rather than compiled by the ORM at every call: the hot path's one read.
    sql = _read_sql(vendor)
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF p"
    return sql


@lru_cache(maxsize=None)
def _read_sql(vendor: str) -> str:
    return f"{_rows().select()} WHERE t.{connection.ops.quote_name(TaskInstance._meta.pk.column)} = %s"
