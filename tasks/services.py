"""Task operations: claim, complete, move between people, and the system-step outcomes the
workers report. Each is one step transaction (`steps.transaction.step`): the process row
locked, the task read under it, every change sent with the commit.

Completion is exactly-once: of two people completing the same task, the step that comes
second finds it completed (409), and the one writer's guard on the version read stops a
change made against a stale read (`steps.changes`); the process advances in the same
transaction. A transaction PostgreSQL aborts to break a deadlock runs again
(`retry_transaction`), unless it runs inside an outer one (an Idempotency-Key's), whose
owner runs the whole again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from gndp.db_faults import retry_transaction
from processes import sensitive
from processes.engine import core
from processes.errors import Conflict, Forbidden, InvalidInput, NotFound
from processes.models import EventType, ProcessInstance, ProcessStatus
from steps.advance import close_tasks, enqueue_system_steps
from steps.transaction import Step, step

from . import access, routing
from .models import OPEN_TASK_STATUSES, RoleSettings, TaskInstance, TaskStatus
from .permissions import can_see_task, can_work_task, is_manager_of


@retry_transaction
def start_task(task_id: Any, *, user) -> TaskInstance:
    """Start (claim) a task: an unassigned one becomes the caller's."""
    with step(task=task_id, actor=user) as s:
        task = s.task
        if not can_see_task(user, task):
            if task.role in access.roles_of(user) and task.assigned_to_id is not None:
                # A colleague who saw it in the shared queue lost the race to claim it.
                raise Conflict(f"task {task.pk} was already claimed", code="already_claimed")
            raise NotFound(f"task {task_id} not found")
        _require_running(s.process)
        _require_human(task, "system steps are run by workers")
        _require_status(task, TaskStatus.PENDING)
        if not can_work_task(user, task):
            raise Forbidden("this task is not yours to start")
        now = timezone.now()
        if task.assigned_to_id is None:
            s.change_task(task, move="claim", started_at=now, assigned_to=user)
            s.event(EventType.TASK_ASSIGNED, task=task, assigned_to=user.get_username(), assigned_to_id=user.pk,
                    role=task.role, claimed=True)
            access.grant_task_to_user(task, user)
        else:
            s.change_task(task, move="claim", started_at=now)
        s.event(EventType.TASK_STARTED, task=task, assigned_to_id=user.pk)
    return task


@retry_transaction
def complete_task(task_id: Any, *, user, result: Any = None) -> TaskInstance:
    result = _object(result)
    with step(task=task_id, actor=user, completing=True) as s:
        task = s.task
        _require_visible(user, task, task_id)
        _require_human(task, "system steps are completed by workers")
        _require_status(task, *OPEN_TASK_STATUSES)
        _require_running(s.process)
        if not can_work_task(user, task):
            raise Forbidden("this task is not yours to complete")
        if task.assigned_to_id != user.pk and not user.is_superuser:
            raise Conflict("claim the task (start) before completing it", code="not_claimed")
        if task.status == TaskStatus.PENDING:
            # The implicit start is recorded, and shares the completion's UPDATE.
            task.started_at = timezone.now()
            s.event(EventType.TASK_STARTED, task=task, assigned_to_id=user.pk, implicit=True)
        _finish(s, task, result, by=user)
    return task


def _finish(s: Step, task: TaskInstance, result: dict, *, by=None, **fields: Any) -> None:
    """Let the engine complete the task's atom with `result`, and persist what it decided;
    `fields`: more of the task's, changed with its completion."""
    process = s.process
    paths = sensitive.paths_of(process)
    try:
        outcome = core.complete(s.blueprint, s.runtime(), sensitive.reveal(paths, process.context), task.atom_id,
                                result)
    except core.InvalidResult as exc:
        raise InvalidInput("the result does not match the step's form", details=exc.problems) from exc
    except core.AtomNotActive as exc:
        raise Conflict(str(exc), code="atom_not_active") from exc
    now = timezone.now()
    if outcome.incident is not None:
        _hold_at_loop_limit(s, task, outcome.incident, sensitive.seal(paths, result), by=by, **fields)
        return
    s.change_task(task, move="complete", started_at=task.started_at or now, completed_at=now,
                  result=sensitive.seal(paths, result), completed_by=by, **fields)
    s.event(EventType.TASK_COMPLETED, task=task, result_keys=sorted(result), assigned_to_id=task.assigned_to_id)
    s.advance(outcome, closing=task)


def _hold_at_loop_limit(s: Step, task: TaskInstance, incident: dict, sealed_result: dict, *, by=None,
                        **fields: Any) -> None:
    """A back edge would run its loop once more than `max_iterations`: the completion is held
    (its result kept on the task, nothing else changes) and the process fails with the
    incident. An administrator's retry lets it through (`retry_task`)."""
    error = f"{core.LOOP_LIMIT}: {core.describe_incident(incident)}"
    task.attempts = fields.pop("attempts", task.attempts)
    _fail(s, task, error, incident=incident, result=sealed_result, completed_by=by, **fields)


# --- system steps, reported by the worker ------------------------------------------------------

@retry_transaction
def complete_system_task(task_id: int, result: Any, *, attempt: int) -> TaskInstance | None:
    """Record a handler's result. A duplicate delivery finds the task closed: no-op."""
    with step(task=task_id, completing=True) as s:
        task = s.task
        if task.status not in OPEN_TASK_STATUSES or s.process.status != ProcessStatus.RUNNING:
            return None
        task.attempts = max(task.attempts, attempt)
        try:
            _finish(s, task, result if isinstance(result, dict) else {}, attempts=task.attempts)
        except InvalidInput as exc:
            # The handler's output broke the form: a handler bug, not worth retrying.
            _fail(s, task, f"invalid handler result: {exc.details}")
    return task


@retry_transaction
def system_task_failed(task_id: int, error: str, *, attempt: int) -> float | None:
    """Record a failed attempt. Returns the delay before the next try, or None when the
    retries are spent and the task and its process are now `failed` (an incident)."""
    with step(task=task_id) as s:
        task = s.task
        if task.status not in OPEN_TASK_STATUSES or s.process.status != ProcessStatus.RUNNING:
            return None
        attempts = max(task.attempts, attempt)
        if attempts <= s.blueprint.atoms[task.atom_id].retries:
            s.change_task(task, attempts=attempts, last_error=error[:4000])
            return min(settings.GNDP_RETRY_BACKOFF_BASE * 2 ** (attempts - 1), settings.GNDP_RETRY_BACKOFF_MAX)
        task.attempts = attempts
        _fail(s, task, error)
        return None


def _fail(s: Step, task: TaskInstance, error: str, *, incident: dict | None = None, **task_fields: Any) -> None:
    """The task and its process fail: an incident an administrator retries. `incident`: the
    engine's own description, carried by `process.failed`; `task_fields`: more to save."""
    s.change_task(task, move="fail", last_error=error[:4000], attempts=task.attempts, **task_fields)
    s.event(EventType.TASK_FAILED, task=task, error=error[:1000], attempts=task.attempts)
    s.move_process("fail", failure=f"{task.atom_id}: {error}"[:4000])
    s.event(EventType.PROCESS_FAILED, atom_id=task.atom_id, error=error[:1000], **(incident or {}))


@retry_transaction
def retry_task(task_id: Any, *, user) -> TaskInstance:
    """An administrator's retry of a failed step: the process runs again. A system step
    runs again; a completion held at a rework loop's limit goes through (`_release`)."""
    with step(task=task_id, actor=user) as s:
        task = s.task
        _require_visible(user, task, task_id)
        if not (user.is_superuser or user.is_staff):
            raise Forbidden("only administrators may retry failed steps")
        if task.status != TaskStatus.FAILED:
            raise Conflict(f"task {task.pk} is {task.status}, not failed", code="invalid_state")
        if s.process.status != ProcessStatus.FAILED:
            raise Conflict(f"the process is {s.process.status}", code="process_not_failed")
        s.move_process("retry", failure="")
        s.event(EventType.TASK_RETRIED, task=task)
        if task.last_error.startswith(core.LOOP_LIMIT):
            _release(s, task)
        else:
            s.change_task(task, move="retry", attempts=0, last_error="")
            ids = [task.pk]
            s.after_commit(lambda: enqueue_system_steps(ids))
    return task


def _release(s: Step, task: TaskInstance) -> None:
    """A completion held at a loop's limit goes through, its loop allowed one more run."""
    process = s.process
    paths = sensitive.paths_of(process)
    runtime = core.allow_one_more(s.blueprint, s.runtime(), task.atom_id)
    result = sensitive.reveal(paths, task.result or {})
    outcome = core.complete(s.blueprint, runtime, sensitive.reveal(paths, process.context), task.atom_id, result)
    s.change_task(task, move="release", completed_at=timezone.now(), last_error="")
    s.event(EventType.TASK_COMPLETED, task=task, result_keys=sorted(result), assigned_to_id=task.assigned_to_id)
    s.advance(outcome, closing=task)


@retry_transaction
def cancel_task(task_id: Any, *, user, reason: str = "") -> TaskInstance:
    """Withdraw an open task (its manager's or an administrator's decision): the task is
    cancelled, its atom skipped, and the flow goes on as for any skip."""
    with step(task=task_id, actor=user) as s:
        task = s.task
        _require_visible(user, task, task_id)
        _require_status(task, *OPEN_TASK_STATUSES)
        _require_running(s.process)
        if not may_cancel(user, task):
            raise Forbidden("only the task's manager or an administrator may cancel it")
        context = sensitive.reveal(sensitive.paths_of(s.process), s.process.context)
        try:
            outcome = core.withdraw(s.blueprint, s.runtime(), context, task.atom_id)
        except core.AtomNotActive as exc:
            raise Conflict(str(exc), code="atom_not_active") from exc
        close_tasks(s.process, [task], s.log, EventType.TASK_CANCELLED, timezone.now(), reason=reason, withdrawn=True)
        s.advance(outcome, closing=task)
    return task


def may_cancel(user, task: TaskInstance) -> bool:
    """An administrator, or the task's manager: the person its escalation goes to."""
    if user.is_superuser or user.is_staff:
        return True
    target = _escalation_target(task)
    return target is not None and target.pk == user.pk


def cancel_open_tasks(s: Step, *, reason: str, now) -> list[TaskInstance]:
    """Cancel every open (or failed) task of the step's process (an abort), each with a
    `task.cancelled` event with the reason. The task rows are read after the process row
    was locked: the lock order every step keeps."""
    tasks = list(TaskInstance.objects.filter(process=s.process, status__in=[*OPEN_TASK_STATUSES, TaskStatus.FAILED])
                 .select_related("assigned_to").order_by("pk"))
    close_tasks(s.process, tasks, s.log, EventType.TASK_CANCELLED, now, reason=reason)
    return tasks


# --- moving work between people ----------------------------------------------------------------

NOT_A_TAKER = "the new assignee must be an active member of the task's role or the person it escalates to"
NOT_A_TAKER_DETAIL = "no active user of this name may work this task"


@retry_transaction
def reassign_task(task_id: Any, *, user, new_assignee: str) -> TaskInstance:
    """Hand a task to someone who can work it: an active member of its role, or its
    escalation manager (`_escalation_target`). Anyone else, and a name nobody active holds,
    get the same 400: a refusal never tells whether a user exists."""
    with step(task=task_id, actor=user) as s:
        task = s.task
        _require_visible(user, task, task_id)
        _require_status(task, *OPEN_TASK_STATUSES)
        _require_human(task, "system steps are run by workers, never handed to a person")
        if s.process.is_final:
            raise Conflict(f"the process is {s.process.status}", code="process_closed")
        if not (user.is_superuser or user.is_staff or can_work_task(user, task)
                or (task.assigned_to and is_manager_of(user, task.assigned_to))):
            raise Forbidden("you may not reassign this task")
        target = get_user_model().objects.filter(username=new_assignee, is_active=True).first()
        if target is None or not _may_take(task, target):
            raise InvalidInput(NOT_A_TAKER, details={"new_assignee": NOT_A_TAKER_DETAIL})
        if task.assigned_to_id == target.pk:
            raise Conflict(f"the task is already assigned to {new_assignee}", code="no_change")
        _assign(s, task, target, EventType.TASK_REASSIGNED)
    return task


@retry_transaction
def escalate_task(task_id: Any, *, user=None, automatic: bool = False) -> TaskInstance:
    """Move a task to its assignee's manager (or to the role's escalation manager when it
    is unassigned) and raise its priority to high."""
    actor = None if automatic else user
    with step(task=task_id, actor=actor) as s:
        task = s.task
        if actor is not None:
            _require_visible(actor, task, task_id)
        _require_status(task, *OPEN_TASK_STATUSES)
        _require_human(task, "system steps are run by workers, never handed to a person")
        if s.process.is_final or s.process.status == ProcessStatus.SUSPENDED:
            raise Conflict(f"the process is {s.process.status}", code="invalid_state")
        if not automatic and not (
            user.is_superuser or user.is_staff or can_work_task(user, task)
            or (task.assigned_to and is_manager_of(user, task.assigned_to))
        ):
            raise Forbidden("you may not escalate this task")
        target = _escalation_target(task)
        if target is None:
            raise Conflict("nobody to escalate to: no active manager is set", code="no_escalation_target")
        changes = {"priority": "high", "priority_rank": 0, "escalated": True}
        if task.assigned_to_id == target.pk:
            s.change_task(task, **changes)
            s.event(EventType.TASK_ESCALATED, task=task, assigned_to=target.get_username(), assigned_to_id=target.pk,
                    automatic=automatic)
        else:
            _assign(s, task, target, EventType.TASK_ESCALATED, changes=changes, automatic=automatic)
    return task


def _assign(s: Step, task: TaskInstance, new_user, event: str, *, changes: dict | None = None,
            **payload: Any) -> None:
    previous = task.assigned_to
    s.change_task(task, assigned_to=new_user, **(changes or {}))
    if previous is not None:
        access.revoke_task_from_user(task, previous)
    access.grant_task_to_user(task, new_user)
    routing.stamp_assignments({new_user.pk: timezone.now()}, s.log.writes)
    s.event(event, task=task, assigned_to=new_user.get_username(), assigned_to_id=new_user.pk,
            previous_assignee=previous.get_username() if previous else None,
            previous_assignee_id=previous.pk if previous else None, **payload)


def _escalation_target(task: TaskInstance):
    """The person escalation hands the task to: its assignee's manager, or for an unassigned
    task its role's escalation manager (`RoleSettings`). None when there is none, or when
    that account is inactive: an inactive account can never work the task."""
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


# --- checks ------------------------------------------------------------------------------------

def _object(result: Any) -> dict:
    result = {} if result is None else result
    if not isinstance(result, dict):
        raise InvalidInput("result must be a JSON object", details={"result": "must be a JSON object"})
    return result


def _require_visible(user, task: TaskInstance, task_id: Any) -> None:
    """404 for a task the caller may not see: it must not learn that the task exists."""
    if not can_see_task(user, task):
        raise NotFound(f"task {task_id} not found")


def _require_running(process: ProcessInstance) -> None:
    if process.status != ProcessStatus.RUNNING:
        raise Conflict(f"the process is {process.status}", details={"process_status": process.status},
                       code="process_not_running")


def _require_human(task: TaskInstance, message: str) -> None:
    if task.kind == "system":
        raise Conflict(message, code="system_task")


def _require_status(task: TaskInstance, *allowed: str) -> None:
    if task.status not in allowed:
        raise Conflict(f"task {task.pk} is {task.status}", details={"status": task.status}, code="invalid_state")
