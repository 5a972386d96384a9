"""Process operations. Each is one step transaction (`steps.transaction.step`): the process
row locked first, checked, the engine core asked, and what it decided sent with the commit,
events included; publishing and background work wait for the commit. A transaction
PostgreSQL aborts to break a deadlock runs again (`retry_transaction`).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from gndp.db_faults import retry_transaction
from monitoring.clocks import restart_clocks, stop_clocks
from steps.advance import enqueue_system_steps
from steps.transaction import Step, step
from tasks.models import OPEN_TASK_STATUSES, TaskInstance
from tasks.routing import BatchRouter
from tasks.services import cancel_open_tasks

from . import sensitive, start_rights, versions
from .engine import core
from .errors import Conflict, InvalidInput
from .models import OPEN_PROCESS_STATUSES, EventType, ProcessInstance, ProcessStatus


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
        outcome = core.start(blueprint, context)
    except core.InvalidContext as exc:
        raise InvalidInput("the context is out of bounds", details={"context": exc.problems}) from None
    process = ProcessInstance(
        version=version,
        journey_id=version.journey_id,
        workflow_id=workflow_id,
        status=ProcessStatus.RUNNING,
        # Never written in plaintext, not even in a row version the next UPDATE replaces.
        context=sensitive.seal(sensitive.paths_of_version(version.pk, version.journey_id), outcome.context),
        business_key=business_key or None,
        started_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        with step(new=process, outcome=outcome, actor=user) as s:
            s.event(EventType.PROCESS_STARTED, workflow_id=workflow_id, version=version.number,
                    business_key=business_key)
            tasks = s.advance(outcome)
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
    outcomes = [_started(blueprint, context, i) for i, context in enumerate(contexts)]
    starter = user if user is not None and user.is_authenticated else None
    started: list[ProcessInstance] = []
    for first in range(0, len(outcomes), BULK_BATCH):
        batch = range(first, min(first + BULK_BATCH, len(outcomes)))
        try:
            started += _start_batch(version, workflow_id, paths, [outcomes[i] for i in batch],
                                    [keys[i] for i in batch], starter)
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
def _start_batch(version, workflow_id, paths, outcomes, keys, user) -> list[ProcessInstance]:
    """One batch of a bulk start: one step, its first tasks routed in memory across the
    batch (`routing.BatchRouter`, made anew for each attempt)."""
    processes = [
        ProcessInstance(version=version, journey_id=version.journey_id, workflow_id=workflow_id,
                        status=ProcessStatus.RUNNING, context=sensitive.seal(paths, outcome.context),
                        business_key=key or None, started_by=user)
        for outcome, key in zip(outcomes, keys)
    ]
    with step(new=processes, actor=user, router=BatchRouter()) as s:
        for process, outcome, key in zip(processes, outcomes, keys):
            s.event(EventType.PROCESS_STARTED, process=process, workflow_id=workflow_id, version=version.number,
                    business_key=key)
            s.advance(outcome, process=process)
    return processes


@retry_transaction
def suspend_process(process_id: Any, *, user=None) -> ProcessInstance:
    with step(process=process_id, actor=user) as s:
        _change_status(s, "suspend", EventType.PROCESS_SUSPENDED)
        stop_clocks(s.process.pk)  # a suspended process's SLA clocks stand still
    return s.process


@retry_transaction
def resume_process(process_id: Any, *, user=None) -> ProcessInstance:
    with step(process=process_id, actor=user) as s:
        _change_status(s, "resume", EventType.PROCESS_RESUMED)
        restart_clocks(s.process.pk)  # due dates move forward by the time it was suspended
        # System steps that came due while suspended were left alone by the worker.
        ids = list(TaskInstance.objects.filter(process=s.process, kind="system", status__in=OPEN_TASK_STATUSES)
                   .values_list("pk", flat=True))
        if ids:
            s.after_commit(lambda: enqueue_system_steps(ids))
    return s.process


@retry_transaction
def abort_process(process_id: Any, *, user=None, reason: str = "") -> ProcessInstance:
    """Abort: every open task is cancelled as any task change is made (the one writer, its
    grants revoked, a `task.cancelled` each), and every active atom becomes cancelled, a
    final state: an aborted process has no current steps."""
    reason = str(reason)[:1000]
    with step(process=process_id, actor=user) as s:
        now = timezone.now()
        outcome = core.abort(s.runtime(), s.process.context)
        s.move_process("abort", completed_at=now, atom_states=dict(outcome.runtime.states))
        cancel_open_tasks(s, reason=reason, now=now)
        s.event(EventType.PROCESS_ABORTED, status=s.process.status, reason=reason, cancelled_atoms=outcome.changed)
    return s.process


def _change_status(s: Step, move: str, event: str) -> None:
    s.move_process(move)
    s.event(event, status=s.process.status)
