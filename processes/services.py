"""Process operations. Each is one transaction that locks the process row first.

Every state change follows the same order: lock, check, let the engine core decide,
persist the diff, append events; publishing and background work wait for the commit.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.clocks import restart_clocks, stop_clocks
from tasks.models import OPEN_TASK_STATUSES, TaskInstance, TaskStatus

from . import sensitive, versions
from .engine import core
from .errors import Conflict, InvalidInput, NotFound
from .events import EventLog
from .models import EventType, ProcessInstance, ProcessStatus
from .runtime import apply_step, enqueue_system_tasks


def lock_process(process_id: Any) -> ProcessInstance:
    try:
        return ProcessInstance.objects.select_for_update().get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"process {process_id} not found") from None


def start_process(
    *, workflow_id: str, context: Any = None, user=None, business_key: str | None = None
) -> ProcessInstance:
    """Start the latest version of a journey, phase or module."""
    context = {} if context is None else context
    if not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object", details={"context": "must be a JSON object"})
    version = versions.resolve_workflow(workflow_id)
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    step = core.start(blueprint, context)
    # The row is created by this transaction: nobody else can append to it before the commit.
    log = EventLog(user, process_locked=True)
    try:
        with transaction.atomic():
            process = ProcessInstance.objects.create(
                version=version,
                journey_id=version.journey_id,
                workflow_id=workflow_id,
                status=ProcessStatus.RUNNING,
                # Never written in plaintext, not even in a row version the next UPDATE replaces.
                context=sensitive.seal(sensitive.paths_of_version(version.pk, version.journey_id), step.context),
                business_key=business_key or None,
                started_by=user if user is not None and user.is_authenticated else None,
            )
            log.add(process, EventType.PROCESS_STARTED, workflow_id=workflow_id, version=version.number,
                    business_key=business_key)
            tasks = apply_step(process, blueprint, step, log)
            log.flush()
    except IntegrityError:
        if business_key and ProcessInstance.objects.filter(business_key=business_key).exists():
            raise Conflict(f"an open process already has business key {business_key!r}",
                           code="duplicate_business_key") from None
        raise
    if any(task.kind == "system" for task in tasks):
        # Its system steps were handed to the workers at commit, and may have moved it on
        # already (eagerly, inside this call): the caller gets the process as it is now.
        process.refresh_from_db()
    return process


def suspend_process(process_id: Any, *, user=None) -> ProcessInstance:
    with transaction.atomic():
        process = lock_process(process_id)
        _require(process, {ProcessStatus.RUNNING}, "suspend")
        process.status = ProcessStatus.SUSPENDED
        _save_status(process, EventLog(user), EventType.PROCESS_SUSPENDED)
        stop_clocks(process.pk)  # a suspended process's SLA clocks stand still
    return process


def resume_process(process_id: Any, *, user=None) -> ProcessInstance:
    with transaction.atomic():
        process = lock_process(process_id)
        _require(process, {ProcessStatus.SUSPENDED}, "resume")
        process.status = ProcessStatus.RUNNING
        _save_status(process, EventLog(user), EventType.PROCESS_RESUMED)
        restart_clocks(process.pk)  # due dates move forward by the time it was suspended
        # System steps that came due while suspended were left alone by the worker.
        _requeue_system_tasks(process)
    return process


def abort_process(process_id: Any, *, user=None, reason: str = "") -> ProcessInstance:
    with transaction.atomic():
        process = lock_process(process_id)
        _require(process, {ProcessStatus.PENDING, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED,
                           ProcessStatus.FAILED}, "abort")
        now = timezone.now()
        cancelled = TaskInstance.objects.filter(process=process, status__in=OPEN_TASK_STATUSES + [TaskStatus.FAILED])
        cancelled.update(status=TaskStatus.CANCELLED, completed_at=now)
        process.status = ProcessStatus.ABORTED
        process.completed_at = now
        _save_status(process, EventLog(user), EventType.PROCESS_ABORTED, reason=str(reason)[:1000])
    return process


def _require(process: ProcessInstance, allowed: set[str], action: str) -> None:
    if process.status not in allowed:
        raise Conflict(f"cannot {action} a {process.status} process", details={"status": process.status},
                       code="invalid_state")


def _save_status(process: ProcessInstance, log: EventLog, event: str, **payload: Any) -> None:
    process.lock_version += 1
    process.save(update_fields=["status", "completed_at", "lock_version", "updated_at"])
    log.add(process, event, status=process.status, **payload)
    log.flush()


def _requeue_system_tasks(process: ProcessInstance) -> None:
    ids = list(TaskInstance.objects.filter(process=process, kind="system", status__in=OPEN_TASK_STATUSES)
               .values_list("pk", flat=True))
    if ids:
        transaction.on_commit(lambda: enqueue_system_tasks(ids))
