"""Tasks read with their process and assignee in hand-written SQL: the lock read of every
task operation and the API's own-inbox page. Both join the same three tables and turn a row
into the same instances; the ORM's compiling of that join cost more than running it."""

from __future__ import annotations

from typing import Sequence

from django.contrib.auth import get_user_model
from django.db import connection

from processes.models import ProcessInstance
from .rows import Columns

from tasks.models import TaskInstance


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
