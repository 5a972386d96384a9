"""Reads of tasks: the inbox, one task, the counters. All go through `visible_tasks`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from processes.errors import NotFound

from steps import lookahead, tricks
from steps.lockread import TaskRows
from .access import roles_of, sees_everything, visible_tasks
from .models import OPEN_TASK_STATUSES, TaskInstance, TaskStatus
from .permissions import is_manager_of

INBOX_ORDER = (F("priority_rank").asc(), F("due_date").asc(nulls_last=True), F("created_at").asc(), F("pk").asc())


def subject_user(caller, username: str | None):
    """The user whose inbox or stats are asked for: the caller, someone it manages, or
    anyone for an administrator who sees every task. Anyone else naming a user gets the
    same 404 whether that user exists or not: the answer must not tell who has an account."""
    if not username or username == caller.get_username():
        return caller
    subject = get_user_model().objects.filter(username=username).select_related("workflow_profile").first()
    if subject is None or not (is_manager_of(caller, subject) or sees_everything(caller, "tasks.view_all_tasks")):
        raise NotFound("no inbox of that user is visible to you")
    return subject


def inbox(
    caller,
    *,
    username: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    journey_id: str | None = None,
    overdue: bool = False,
) -> QuerySet[TaskInstance]:
    """The tasks assigned to the user and the unassigned tasks of its roles' queues, by
    priority (high first), then due date, then age."""
    user = subject_user(caller, username)
    statuses = [status] if status else OPEN_TASK_STATUSES
    mine = Q(assigned_to=user) | Q(assigned_to__isnull=True, role__in=roles_of(user), kind="human")
    tasks = TaskInstance.objects.filter(mine, status__in=statuses)
    if priority:
        tasks = tasks.filter(priority=priority)
    if journey_id:
        tasks = tasks.filter(Q(process__journey_id=journey_id) | Q(process__workflow_id=journey_id))
    if overdue:
        tasks = tasks.filter(due_date__lt=timezone.now())
    if user.pk != caller.pk:
        tasks = tasks & visible_tasks(caller)
    return tasks.select_related("assigned_to").order_by(*INBOX_ORDER)


class OwnInbox:
    """The caller's own inbox as `inbox(caller, status=status).select_related("process")`
    lists it, read in hand-written SQL: the API's most frequent read, whose compiling by the
    ORM cost more than running it. It counts and slices as DRF's pagination does a queryset;
    `tests/api/test_own_inbox.py` holds it to the queryset's rows, order and count.

    The tasks come with their assignee and with the process columns a task's representation
    reads (not its context and atom states, the bulk of a process row).
    """

    PROCESS_COLUMNS = ("version_id", "journey_id", "workflow_id")

    def __init__(self, caller, status: str | None = None) -> None:
        self.caller = caller
        self.statuses = [status] if status else list(OPEN_TASK_STATUSES)
        self.roles = roles_of(caller)

    def _where(self) -> tuple[str, list[Any]]:
        mine = ["t.assigned_to_id = %s"]
        params: list[Any] = [self.caller.pk]
        if self.roles:
            mine.append(f"(t.assigned_to_id IS NULL AND t.role IN ({', '.join(['%s'] * len(self.roles))})"
                        " AND t.kind = %s)")
            params += [*self.roles, "human"]
        sql = f"({' OR '.join(mine)}) AND t.status IN ({', '.join(['%s'] * len(self.statuses))})"
        return sql, params + self.statuses

    def count(self) -> int:
        quote = connection.ops.quote_name
        where, params = self._where()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {quote(TaskInstance._meta.db_table)} t WHERE {where}", params)
            return cursor.fetchone()[0]

    def __getitem__(self, page: slice) -> list[TaskInstance]:
        rows = _own_inbox_rows()
        where, params = self._where()
        sql = (
            f"{rows.select()} WHERE {where}"
            " ORDER BY t.priority_rank ASC, t.due_date ASC NULLS LAST, t.created_at ASC, t.id ASC"
            " LIMIT %s OFFSET %s"
        )
        db = connections[DEFAULT_DB_ALIAS]
        with db.cursor() as cursor:
            cursor.execute(sql, [*params, page.stop - page.start, page.start])
            tasks = [rows.read(row, db) for row in cursor.fetchall()]
        for task in tasks:  # what a person completes next: routed with its lock read
            lookahead.remember(task.pk, task.process, task.atom_id)
        return tasks


def inbox_page_source(caller, *, username: str | None = None, status: str | None = None):
    """What the API's inbox pages through: the caller's own inbox read by `OwnInbox`, anyone
    else's through the `inbox` queryset (with its visibility check)."""
    if username in (None, "", caller.get_username()) and tricks.on("own_inbox"):
        return OwnInbox(caller, status=status)
    return inbox(caller, username=username, status=status).select_related("process")


@lru_cache(maxsize=None)
def _own_inbox_rows() -> TaskRows:
    return TaskRows(process_only=OwnInbox.PROCESS_COLUMNS)


def task_for(user, task_id: Any) -> TaskInstance:
    try:
        return visible_tasks(user).select_related("assigned_to", "process").get(pk=int(task_id))
    except (TaskInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"task {task_id} not found") from None


def stats(caller, *, username: str | None = None) -> dict[str, int]:
    user = subject_user(caller, username)
    now = timezone.now()
    counts = TaskInstance.objects.filter(assigned_to=user).aggregate(
        pending=Count("pk", filter=Q(status=TaskStatus.PENDING)),
        in_progress=Count("pk", filter=Q(status=TaskStatus.IN_PROGRESS)),
        completed=Count("pk", filter=Q(status=TaskStatus.COMPLETED)),
        overdue=Count("pk", filter=Q(status__in=OPEN_TASK_STATUSES, due_date__lt=now)),
    )
    counts["queued"] = TaskInstance.objects.filter(
        assigned_to__isnull=True, role__in=roles_of(user), status=TaskStatus.PENDING, kind="human"
    ).count()
    return counts
