"""Task operations: claim, complete, and the system-step outcomes reported by workers.

Completion is exactly-once: inside one transaction the process row is locked, the task is
read again under that lock, and the status change is a conditional UPDATE on the task's
version, so of two people completing the same task exactly one wins and the other gets a
409; the process advances in that same transaction.

Every operation here is one transaction that PostgreSQL may abort to break a deadlock or a
serialization conflict: it then runs again from the start (`retry_transaction`), unless it
runs inside an outer transaction (an Idempotency-Key's), whose owner runs the whole again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from gndp.db_faults import retry_transaction
from processes import sensitive, versions
from processes.engine import core
from processes.errors import Conflict, Forbidden, InvalidInput, NotFound
from processes.events import EventLog
from processes.models import EventType, ProcessInstance, ProcessStatus
from steps.writes import Writes, pipelined
from processes.runtime import apply_step, enqueue_system_tasks, runtime_of

from steps import lookahead
from steps.lockread import TaskRows

from . import access, routing
from .models import OPEN_TASK_STATUSES, TaskInstance, TaskStatus
from .permissions import can_see_task, can_work_task, is_manager_of


def _lock(task_id: Any, user=None) -> tuple[ProcessInstance, TaskInstance]:
    """Read the task and its assignee and lock its process row, in one statement.

    The task's columns come from the statement's snapshot and may be older than the lock;
    that is safe because every change to a task is a conditional UPDATE on its version
    (`_mark`), and the engine reads the atom states from the freshly locked process row.
    """
    process, task, _ = _locked(task_id, user, closing=False)
    return process, task


def _lock_to_complete(task_id: Any, user=None) -> tuple[ProcessInstance, TaskInstance, dict]:
    """`_lock`, and the routes of the task's certain next tasks by atom id, routed in the same
    round trip where the task's atom is known here (`steps.lookahead`); the others are
    routed after the engine ran."""
    return _locked(task_id, user, closing=True)


def _locked(task_id: Any, user, *, closing: bool) -> tuple[ProcessInstance, TaskInstance, dict]:
    try:
        task_id = int(task_id)
    except (TypeError, ValueError):
        raise NotFound(f"task {task_id} not found") from None
    if not -(2**63) <= task_id < 2**63:  # no such id; SQLite would refuse the number itself
        raise NotFound(f"task {task_id} not found")
    foreseen = None
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up again
    try:
        with db.cursor() as cursor:
            with pipelined(db):
                cursor.execute(_lock_sql(db.vendor), [task_id])
                foreseen = lookahead.send(task_id, db) if closing else None
            # Read once the pipeline is done: its end brings every answer back in the one
            # round trip (a read inside it would ask for them in one of its own).
            row = cursor.fetchone()
        if row is None:
            raise NotFound(f"task {task_id} not found")
        task = _lock_rows().read(row, db)
        process = task.process
        routes = foreseen.routes(task) if foreseen is not None else {}
    except BaseException:
        if foreseen is not None:
            foreseen.discard()
        raise
    lookahead.remember(task.pk, process, task.atom_id)
    if user is not None and not can_see_task(user, task):
        raise NotFound(f"task {task_id} not found")
    return process, task, routes


@lru_cache(maxsize=None)
def _lock_rows() -> TaskRows:
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
    return f"{_lock_rows().select()} WHERE t.{connection.ops.quote_name(TaskInstance._meta.pk.column)} = %s"


def read_task(task_id: int) -> TaskInstance | None:
    """The task with its process and assignee, unlocked: what a worker looks at before it
    runs a system step (the lock read's statement, without the lock)."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_read_sql(db.vendor), [task_id])
        row = cursor.fetchone()
    if row is None:
        return None
    task = _lock_rows().read(row, db)
    lookahead.remember(task.pk, task.process, task.atom_id)
    return task


def _require_running(process: ProcessInstance) -> None:
    if process.status != ProcessStatus.RUNNING:
        raise Conflict(f"the process is {process.status}", details={"process_status": process.status},
                       code="process_not_running")


def _mark(task: TaskInstance, writes: Writes | None = None, **changes: Any) -> None:
    """Conditional update on the task's version: the last line of the completion guard.
    Sent now, or with the step's other writes when given them (then the step's routing
    must not count the task as open: see `apply_step`'s `closing`)."""
    seen = {"version": task.version, "status": task.status}
    for field, value in changes.items():
        setattr(task, field, value)
    task.version += 1
    target = writes if writes is not None else Writes()
    target.update(task, [*changes, "version"], where=seen,
                  stale=Conflict(f"task {task.pk} was changed by someone else", code="stale_task"))
    if writes is None:
        target.execute()


@retry_transaction
def start_task(task_id: Any, *, user) -> TaskInstance:
    """Start (claim) a task: an unassigned one becomes the caller's."""
    with transaction.atomic():
        process, task = _lock(task_id)
        if not can_see_task(user, task):
            if task.role in access.roles_of(user) and task.assigned_to_id is not None:
                # A colleague who saw it in the shared queue lost the race to claim it.
                raise Conflict(f"task {task.pk} was already claimed", code="already_claimed")
            raise NotFound(f"task {task_id} not found")
        _require_running(process)
        if task.kind == "system":
            raise Conflict("system steps are run by workers", code="system_task")
        if task.status != TaskStatus.PENDING:
            raise Conflict(f"task {task.pk} is {task.status}", details={"status": task.status}, code="invalid_state")
        if not can_work_task(user, task):
            raise Forbidden("this task is not yours to start")
        log = EventLog(user, process_locked=True)
        _claim(process, task, user, log)
        log.flush(commit=True)
    return task


def _claim(process: ProcessInstance, task: TaskInstance, user, log: EventLog) -> None:
    now = timezone.now()
    if task.assigned_to_id is None:
        _mark(task, status=TaskStatus.IN_PROGRESS, started_at=now, assigned_to=user)
        log.add(process, EventType.TASK_ASSIGNED, task=task, assigned_to=user.get_username(),
                assigned_to_id=user.pk, role=task.role, claimed=True)
        access.revoke_task_from_role(task)
        access.grant_task_to_user(task, user)
    else:
        _mark(task, status=TaskStatus.IN_PROGRESS, started_at=now)
    log.add(process, EventType.TASK_STARTED, task=task, assigned_to_id=user.pk)


@retry_transaction
def complete_task(task_id: Any, *, user, result: Any = None) -> TaskInstance:
    result = {} if result is None else result
    if not isinstance(result, dict):
        raise InvalidInput("result must be a JSON object", details={"result": "must be a JSON object"})
    with transaction.atomic():
        process, task, routes = _lock_to_complete(task_id, user)
        if task.kind == "system":
            raise Conflict("system steps are completed by workers", code="system_task")
        if task.status not in OPEN_TASK_STATUSES:
            raise Conflict(f"task {task.pk} is {task.status}", details={"status": task.status}, code="invalid_state")
        _require_running(process)
        if not can_work_task(user, task):
            raise Forbidden("this task is not yours to complete")
        if task.assigned_to_id != user.pk and not user.is_superuser:
            raise Conflict("claim the task (start) before completing it", code="not_claimed")
        log = EventLog(user, process_locked=True)
        if task.status == TaskStatus.PENDING:
            # The implicit start is recorded, but shares the completion's UPDATE.
            task.started_at = timezone.now()
            log.add(process, EventType.TASK_STARTED, task=task, assigned_to_id=user.pk, implicit=True)
        _finish(process, task, result, log, user=user, routes=routes)
        log.flush(commit=True)
    return task


def _finish(process: ProcessInstance, task: TaskInstance, result: dict, log: EventLog, user=None,
            routes: dict | None = None) -> None:
    blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
    paths = sensitive.paths_of(process)
    try:
        step = core.complete(blueprint, runtime_of(process), sensitive.reveal(paths, process.context), task.atom_id,
                             result)
    except core.InvalidResult as exc:
        raise InvalidInput("the result does not match the step's form", details=exc.problems) from exc
    except core.AtomNotActive as exc:
        raise Conflict(str(exc), code="atom_not_active") from exc
    _mark(task, log.writes, status=TaskStatus.COMPLETED, started_at=task.started_at or timezone.now(),
          completed_at=timezone.now(), result=sensitive.seal(paths, result),
          completed_by=user if user is not None else None)
    log.add(process, EventType.TASK_COMPLETED, task=task, result_keys=sorted(result),
            assigned_to_id=task.assigned_to_id)
    apply_step(process, blueprint, step, log, closing=task, routes=routes)


# --- system steps, called by the worker -------------------------------------------------------

@retry_transaction
def complete_system_task(task_id: int, result: Any, *, attempt: int) -> TaskInstance | None:
    """Record a handler's result. A duplicate delivery finds the task closed: no-op."""
    with transaction.atomic():
        process, task, routes = _lock_to_complete(task_id)
        if task.status not in OPEN_TASK_STATUSES or process.status != ProcessStatus.RUNNING:
            return None
        if not isinstance(result, dict):
            result = {}
        log = EventLog(process_locked=True)
        try:
            task.attempts = max(task.attempts, attempt)
            _mark(task, attempts=task.attempts)
            _finish(process, task, result, log, routes=routes)
        except InvalidInput as exc:
            # The handler's output broke the form: a handler bug, not worth retrying.
            _fail(process, task, f"invalid handler result: {exc.details}", log)
        log.flush(commit=True)
    return task


@retry_transaction
def system_task_failed(task_id: int, error: str, *, attempt: int) -> float | None:
    """Record a failed attempt. Returns the delay before the next try, or None when the
    retries are spent and the task and its process are now `failed` (an incident)."""
    with transaction.atomic():
        process, task = _lock(task_id)
        if task.status not in OPEN_TASK_STATUSES or process.status != ProcessStatus.RUNNING:
            return None
        blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
        retries = blueprint.atoms[task.atom_id].retries
        attempts = max(task.attempts, attempt)
        if attempts <= retries:
            _mark(task, attempts=attempts, last_error=error[:4000])
            return min(settings.GNDP_RETRY_BACKOFF_BASE * 2 ** (attempts - 1), settings.GNDP_RETRY_BACKOFF_MAX)
        log = EventLog(process_locked=True)
        task.attempts = attempts
        _fail(process, task, error, log)
        log.flush()
        return None


def _fail(process: ProcessInstance, task: TaskInstance, error: str, log: EventLog) -> None:
    _mark(task, status=TaskStatus.FAILED, last_error=error[:4000], attempts=task.attempts)
    log.add(process, EventType.TASK_FAILED, task=task, error=error[:1000], attempts=task.attempts)
    process.status = ProcessStatus.FAILED
    process.failure = f"{task.atom_id}: {error}"[:4000]
    process.lock_version += 1
    process.save(update_fields=["status", "failure", "lock_version", "updated_at"])
    log.add(process, EventType.PROCESS_FAILED, atom_id=task.atom_id, error=error[:1000])


@retry_transaction
def retry_task(task_id: Any, *, user) -> TaskInstance:
    """An administrator's retry of a failed system step: the process runs again."""
    with transaction.atomic():
        process, task = _lock(task_id, user)
        if not (user.is_superuser or user.is_staff):
            raise Forbidden("only administrators may retry failed steps")
        if task.status != TaskStatus.FAILED:
            raise Conflict(f"task {task.pk} is {task.status}, not failed", code="invalid_state")
        if process.status != ProcessStatus.FAILED:
            raise Conflict(f"the process is {process.status}", code="process_not_failed")
        _mark(task, status=TaskStatus.PENDING, attempts=0, last_error="")
        process.status = ProcessStatus.RUNNING
        process.failure = ""
        process.lock_version += 1
        process.save(update_fields=["status", "failure", "lock_version", "updated_at"])
        log = EventLog(user, process_locked=True)
        log.add(process, EventType.TASK_RETRIED, task=task)
        log.flush()
        ids = [task.pk]
        transaction.on_commit(lambda: enqueue_system_tasks(ids))
    return task


def cancel_open_tasks(process: ProcessInstance, log: EventLog, *, reason: str, now) -> list[TaskInstance]:
    """Cancel every open (or failed) task of `process`, whose row the caller's transaction has
    locked: each through the guarded writer (`_mark`, sent with the step's other writes), its
    grants revoked, and a `task.cancelled` event with the reason. Returns the tasks."""
    tasks = list(TaskInstance.objects.filter(process=process, status__in=[*OPEN_TASK_STATUSES, TaskStatus.FAILED])
                 .select_related("assigned_to").order_by("pk"))
    for task in tasks:
        was = task.status
        _mark(task, log.writes, status=TaskStatus.CANCELLED, completed_at=now)
        queued = task.kind == "human" and task.assigned_to_id is None
        log.add(process, EventType.TASK_CANCELLED, task=task, reason=reason, previous_status=was,
                role=task.role, queued=queued, assigned_to_id=task.assigned_to_id,
                assigned_to=task.assigned_to.get_username() if task.assigned_to_id else None)
    access.revoke_tasks([task.pk for task in tasks])
    return tasks


# --- moving work between people ----------------------------------------------------------------

NOT_A_TAKER = "the new assignee must be an active member of the task's role or the person it escalates to"
NOT_A_TAKER_DETAIL = "no active user of this name may work this task"


def _assign(process: ProcessInstance, task: TaskInstance, new_user, log: EventLog, event: str, **payload) -> None:
    previous = task.assigned_to
    _mark(task, assigned_to=new_user, **payload.pop("changes", {}))
    if previous is not None:
        access.revoke_task_from_user(task, previous)
    else:
        access.revoke_task_from_role(task)
    access.grant_task_to_user(task, new_user)
    routing.stamp_assignments({new_user.pk: timezone.now()}, log.writes)
    log.add(process, event, task=task, assigned_to=new_user.get_username(), assigned_to_id=new_user.pk,
            previous_assignee=previous.get_username() if previous else None,
            previous_assignee_id=previous.pk if previous else None, **payload)


@retry_transaction
def reassign_task(task_id: Any, *, user, new_assignee: str) -> TaskInstance:
    """Hand a task to someone who can work it: an active member of its role, or its
    escalation manager (`_escalation_target`). Anyone else, and a name nobody active holds,
    get the same 400: a refusal never tells whether a user exists."""
    from django.contrib.auth import get_user_model

    with transaction.atomic():
        process, task = _lock(task_id, user)
        _require_open(task)
        _require_human(task)
        if process.is_final:
            raise Conflict(f"the process is {process.status}", code="process_closed")
        if not (user.is_superuser or user.is_staff or can_work_task(user, task)
                or (task.assigned_to and is_manager_of(user, task.assigned_to))):
            raise Forbidden("you may not reassign this task")
        target = get_user_model().objects.filter(username=new_assignee, is_active=True).first()
        if target is None or not _may_take(task, target):
            raise InvalidInput(NOT_A_TAKER, details={"new_assignee": NOT_A_TAKER_DETAIL})
        if task.assigned_to_id == target.pk:
            raise Conflict(f"the task is already assigned to {new_assignee}", code="no_change")
        log = EventLog(user, process_locked=True)
        _assign(process, task, target, log, EventType.TASK_REASSIGNED)
        log.flush()
    return task


@retry_transaction
def escalate_task(task_id: Any, *, user=None, automatic: bool = False) -> TaskInstance:
    """Move a task to its assignee's manager (or to the role's escalation manager when it
    is unassigned) and raise its priority to high."""
    with transaction.atomic():
        process, task = _lock(task_id, None if automatic else user)
        _require_open(task)
        _require_human(task)
        if process.is_final or process.status == ProcessStatus.SUSPENDED:
            raise Conflict(f"the process is {process.status}", code="invalid_state")
        if not automatic and not (
            user.is_superuser or user.is_staff or can_work_task(user, task)
            or (task.assigned_to and is_manager_of(user, task.assigned_to))
        ):
            raise Forbidden("you may not escalate this task")
        target = _escalation_target(task)
        if target is None:
            raise Conflict("nobody to escalate to: no active manager is set", code="no_escalation_target")
        log = EventLog(None if automatic else user, process_locked=True)
        changes = {"priority": "high", "priority_rank": 0, "escalated": True}
        if task.assigned_to_id == target.pk:
            _mark(task, **changes)
            log.add(process, EventType.TASK_ESCALATED, task=task, assigned_to=target.get_username(),
                    assigned_to_id=target.pk, automatic=automatic)
        else:
            _assign(process, task, target, log, EventType.TASK_ESCALATED, changes=changes, automatic=automatic)
        log.flush()
    return task


def _escalation_target(task: TaskInstance):
    """The person escalation hands the task to: its assignee's manager, or for an unassigned
    task its role's escalation manager (`RoleSettings`). None when there is none, or when
    that account is inactive: an inactive account can never work the task."""
    from .models import RoleSettings

    if task.assigned_to is not None:
        profile = getattr(task.assigned_to, "workflow_profile", None)
        target = profile.manager if profile and profile.manager_id else None
    else:
        settings_row = RoleSettings.objects.filter(group__name=task.role).select_related("escalation_manager").first()
        target = settings_row.escalation_manager if settings_row else None
    return target if target is not None and target.is_active else None


def _may_take(task: TaskInstance, target) -> bool:
    """Whether `target` can work `task` once it holds it: an active member of the task's
    role, or the person its escalation goes to. A task handed to anyone else would sit with
    someone who should not see it, out of sight of whoever handed it over."""
    if not target.is_active:
        return False
    if task.role and task.role in access.roles_of(target):
        return True
    escalation = _escalation_target(task)
    return escalation is not None and escalation.pk == target.pk


def _require_human(task: TaskInstance) -> None:
    if task.kind == "system":
        raise Conflict("system steps are run by workers, never handed to a person", code="system_task")


def _require_open(task: TaskInstance) -> None:
    if task.status not in OPEN_TASK_STATUSES:
        raise Conflict(f"task {task.pk} is {task.status}", details={"status": task.status}, code="invalid_state")
