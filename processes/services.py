"""Process operations. Each is one transaction that locks the process row first.

Every state change follows the same order: lock, check, let the engine core decide,
persist the diff, append events; publishing and background work wait for the commit. A
transaction PostgreSQL aborts to break a deadlock runs again (`retry_transaction`).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gndp.db_faults import retry_transaction
from monitoring.clocks import restart_clocks, stop_clocks
from steps import lookahead
from tasks.models import OPEN_TASK_STATUSES, TaskInstance

from . import sensitive, start_rights, versions
from .engine import core
from .errors import Conflict, InvalidInput, NotFound
from .events import EventLog
from .models import OPEN_PROCESS_STATUSES, EventType, ProcessInstance, ProcessStatus
from .runtime import apply_step, enqueue_system_tasks, runtime_of
from steps.writes import NEXT_IDS, pipelined


def lock_process(process_id: Any) -> ProcessInstance:
    try:
        return ProcessInstance.objects.select_for_update().get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"process {process_id} not found") from None


@retry_transaction
def start_process(
    *, workflow_id: str, context: Any = None, user=None, business_key: str | None = None
) -> ProcessInstance:
    """Start the latest version of a journey, phase or module, for `user` if it may
    (processes.start_rights: 403 otherwise, before the input is looked at). `user=None` is
    the engine or an operator's own code, started by no one: no person's rights apply."""
    version = versions.resolve_workflow(workflow_id)
    if user is not None:
        start_rights.require_start(user, version.pk, workflow_id)
    context = {} if context is None else context
    if not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object", details={"context": "must be a JSON object"})
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    try:
        step = core.start(blueprint, context)
    except core.InvalidContext as exc:
        raise InvalidInput("the context is out of bounds", details={"context": exc.problems}) from None
    # The row is created by this transaction: nobody else can append to it before the commit.
    log = EventLog(user, process_locked=True)
    process = ProcessInstance(
        version=version,
        journey_id=version.journey_id,
        workflow_id=workflow_id,
        status=ProcessStatus.RUNNING,
        # Never written in plaintext, not even in a row version the next UPDATE replaces.
        context=sensitive.seal(sensitive.paths_of_version(version.pk, version.journey_id), step.context),
        business_key=business_key or None,
        started_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        with transaction.atomic():
            routes = _begin_start(process, blueprint, step)
            log.writes.create([process])  # inserted with the step's writes
            log.add(process, EventType.PROCESS_STARTED, workflow_id=workflow_id, version=version.number,
                    business_key=business_key)
            tasks = apply_step(process, blueprint, step, log, routes=routes)
            log.flush(commit=True)
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


def _begin_start(process: ProcessInstance, blueprint, step: core.Step) -> dict:
    """On PostgreSQL, a start's statements before its writes, in one pipeline: the process
    row's id and the routing of its first tasks (the engine has decided them already).
    Returns the routes by atom id (elsewhere none: the tasks are routed one by one)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        with pipelined(connection):
            cursor.execute(NEXT_IDS, [ProcessInstance._meta.db_table, ProcessInstance._meta.pk.column, 1])
            foreseen = lookahead.send_routes(blueprint, step.activated)
        process.pk = cursor.fetchone()[0]
    return foreseen.routes() if foreseen is not None else {}


BULK_BATCH = 250


def start_processes(
    *, workflow_id: str, contexts: list[Any], user=None, business_keys: list[str | None] | None = None
) -> list[ProcessInstance]:
    """Start many processes of the latest version of a journey: the bulk start path.

    Everything is checked first, and nothing starts when anything is wrong (a context that
    is not an object, a business key given twice or already held by an open process). Then
    each batch of `BULK_BATCH` is one transaction: the processes, their first tasks (routed
    in memory across the batch, `routing.BatchRouter`), the tasks' object permissions and
    the events, in a few statements. Batches commit one by one, so routing never holds the
    people's profile rows for long. Should a batch fail after all (a business key taken
    meanwhile), the batches before it stay started and the error says how many.

    Who may start comes first, as for one start (`user=None`: the engine or an operator's
    own code): a caller who may not start learns nothing about the business keys.
    """
    from tasks.routing import BatchRouter

    version = versions.resolve_workflow(workflow_id)
    if user is not None:
        start_rights.require_start(user, version.pk, workflow_id)
    keys = list(business_keys) if business_keys is not None else [None] * len(contexts)
    if len(keys) != len(contexts):
        raise InvalidInput("one business key per context", details={"business_keys": "as many as contexts"})
    problems = {f"contexts[{i}]": "must be a JSON object" for i, c in enumerate(contexts)
                if c is not None and not isinstance(c, dict)}
    given = [key for key in keys if key]
    if len(set(given)) != len(given):
        problems["business_keys"] = "each business key at most once"
    if problems:
        raise InvalidInput("cannot start these processes", details=problems)
    taken = sorted(ProcessInstance.objects.filter(business_key__in=given, status__in=OPEN_PROCESS_STATUSES)
                   .values_list("business_key", flat=True))
    if taken:
        raise Conflict("open processes already have some of these business keys", code="duplicate_business_key",
                       details={"business_keys": taken[:20]})
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    paths = sensitive.paths_of_version(version.pk, version.journey_id)
    steps = [_started(blueprint, context, i) for i, context in enumerate(contexts)]
    starter = user if user is not None and user.is_authenticated else None
    started: list[ProcessInstance] = []
    for first in range(0, len(steps), BULK_BATCH):
        batch = range(first, min(first + BULK_BATCH, len(steps)))
        try:
            started += _start_batch(version, workflow_id, blueprint, paths, [steps[i] for i in batch],
                                    [keys[i] for i in batch], starter, BatchRouter())
        except IntegrityError:
            raise Conflict(f"a business key was taken meanwhile; {len(started)} processes were started",
                           code="duplicate_business_key", details={"started": len(started)}) from None
    return started


def _started(blueprint, context, index: int) -> core.Step:
    try:
        return core.start(blueprint, context or {})
    except core.InvalidContext as exc:
        raise InvalidInput("a context is out of bounds", details={f"contexts[{index}]": exc.problems}) from None


@retry_transaction
def _start_batch(version, workflow_id, blueprint, paths, steps, keys, user, router) -> list[ProcessInstance]:
    processes = [
        ProcessInstance(version=version, journey_id=version.journey_id, workflow_id=workflow_id,
                        status=ProcessStatus.RUNNING, context=sensitive.seal(paths, step.context),
                        business_key=key or None, started_by=user)
        for step, key in zip(steps, keys)
    ]
    with transaction.atomic():
        # The rows are created by this transaction: nobody else can append to them meanwhile.
        log = EventLog(user, process_locked=True)
        log.writes.create(processes)
        for process, step, key in zip(processes, steps, keys):
            log.add(process, EventType.PROCESS_STARTED, workflow_id=workflow_id, version=version.number,
                    business_key=key)
            apply_step(process, blueprint, step, log, router=router)
        router.stamp()
        log.flush()
    return processes


@retry_transaction
def suspend_process(process_id: Any, *, user=None) -> ProcessInstance:
    with transaction.atomic():
        process = lock_process(process_id)
        _require(process, {ProcessStatus.RUNNING}, "suspend")
        process.status = ProcessStatus.SUSPENDED
        _save_status(process, EventLog(user), EventType.PROCESS_SUSPENDED)
        stop_clocks(process.pk)  # a suspended process's SLA clocks stand still
    return process


@retry_transaction
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


@retry_transaction
def abort_process(process_id: Any, *, user=None, reason: str = "") -> ProcessInstance:
    """Abort: every open task is cancelled as any task change is made (the guarded writer,
    its grants revoked, a `task.cancelled` each), and every active atom becomes cancelled,
    a final state: an aborted process has no current steps. Lock order: the process row,
    then its task rows."""
    from tasks.services import cancel_open_tasks

    reason = str(reason)[:1000]
    with transaction.atomic():
        process = lock_process(process_id)
        _require(process, {ProcessStatus.PENDING, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED,
                           ProcessStatus.FAILED}, "abort")
        now = timezone.now()
        log = EventLog(user, process_locked=True)
        cancel_open_tasks(process, log, reason=reason, now=now)
        step = core.abort(runtime_of(process), process.context)
        process.atom_states = dict(step.runtime.states)
        process.status = ProcessStatus.ABORTED
        process.completed_at = now
        process.lock_version += 1
        process.save(update_fields=["status", "completed_at", "atom_states", "lock_version", "updated_at"])
        log.add(process, EventType.PROCESS_ABORTED, status=process.status, reason=reason,
                cancelled_atoms=step.changed)
        log.flush(commit=True)
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
