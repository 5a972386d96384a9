"""The SLA tracker: effective targets, re-timing after an override, and the timer sweep.

Each open human task carries two durable timers (reliability.md, "Timers"): `due_date`
(target) and `escalate_at` (escalation threshold). A Celery beat task runs `sweep` every
few seconds; it fires whatever is due, however late, so it catches up after downtime.

Exactly once. A timer fires through a conditional UPDATE (`... WHERE sla_warned_at IS
NULL`) in the same transaction as its events (and, for a breach, its escalation), with the
process row locked first and the task rows second, the order every service uses. Process
rows are taken with `FOR UPDATE SKIP LOCKED`, so two sweeps running at once (two beats by
mistake) split the work instead of waiting on each other, and a process somebody is working
on is simply left for the next sweep.

Warnings are fired in batches (one transaction per batch of processes). Breaches are fired
one task per transaction: an escalation updates the target manager's profile row, and two
sweeps escalating to two managers in opposite orders inside long transactions could
deadlock; one short transaction per escalation also keeps user-facing locks brief.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.utils import timezone

from gndp.db_faults import retry_transaction
from processes import versions
from processes.engine.blueprint import UnknownContainer
from processes.errors import Conflict
from steps.changes import change_tasks
from steps.events import EventLog
from processes.models import EventType, ProcessInstance, ProcessStatus, WorkflowVersion
from tasks.models import OPEN_TASK_STATUSES, SLA_BREACH_PENDING, SLA_WARN_PENDING, TaskInstance
from tasks.services import escalate_task

from .models import AtomSLAOverride

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_BATCHES = 200  # one sweep handles at most BATCH_SIZE * MAX_BATCHES firings per timer kind


@dataclass(frozen=True)
class AtomSLA:
    target: timedelta | None
    escalation: timedelta | None


@dataclass
class SweepResult:
    retimed: int = 0
    warned: int = 0
    breached: int = 0
    escalated: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"retimed": self.retimed, "warned": self.warned, "breached": self.breached,
                "escalated": self.escalated, "seconds": round(self.seconds, 4)}


# --- effective targets ------------------------------------------------------------------------

def journey_slas(journey_id: str, version_id: int | None = None) -> dict[str, AtomSLA]:
    """atom id -> the SLA in force: the admin's override where set, else the journey file's
    (of `version_id`, or of the latest version)."""
    if version_id is None:
        version_id = (WorkflowVersion.objects.filter(journey_id=journey_id).order_by("-number")
                      .values_list("pk", flat=True).first())
    slas = {}
    if version_id is not None:
        try:
            atoms = versions.get_blueprint(version_id, journey_id).atoms
        except UnknownContainer:
            atoms = {}
        slas = {atom_id: AtomSLA(atom.sla_target, atom.sla_escalation) for atom_id, atom in atoms.items()}
    for override in AtomSLAOverride.objects.filter(journey_id=journey_id):
        journey = slas.get(override.atom_id, AtomSLA(None, None))
        slas[override.atom_id] = AtomSLA(override.target or journey.target, override.escalation or journey.escalation)
    return slas


def _deadline(duration: timedelta | None):
    """created_at + the time the task was paused + duration, as an SQL expression."""
    if duration is None:
        return Value(None, output_field=DateTimeField())
    return ExpressionWrapper(F("created_at") + F("sla_paused_for") + Value(duration), output_field=DateTimeField())


# A task's created_at is stamped a moment after the clock its due date was computed from;
# a difference below this is the same deadline, not one to re-time.
RETIME_TOLERANCE = timedelta(seconds=1)


def _differs(field: str, duration: timedelta | None) -> Q:
    if duration is None:
        return Q(**{f"{field}__isnull": False})
    return (Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": _deadline(duration - RETIME_TOLERANCE)})
            | Q(**{f"{field}__gt": _deadline(duration + RETIME_TOLERANCE)}))


def retime_atom(journey_id: str, atom_id: str) -> int:
    """Re-compute due and escalation times of the atom's open tasks from the SLA in force
    (after an override was saved or deleted); returns how many deadlines moved. A timer that
    already fired stays fired."""
    open_tasks = TaskInstance.objects.filter(atom_id=atom_id, status__in=OPEN_TASK_STATUSES,
                                             process__journey_id=journey_id)
    version_ids = open_tasks.order_by().values_list("process__version_id", flat=True).distinct()
    changed = 0
    for version_id in list(version_ids):
        sla = journey_slas(journey_id, version_id).get(atom_id, AtomSLA(None, None))
        stale = open_tasks.filter(process__version_id=version_id)
        changed += _retime(stale.filter(_differs("due_date", sla.target)), "due_date", sla.target)
        changed += _retime(stale.filter(_differs("escalate_at", sla.escalation)), "escalate_at", sla.escalation)
    return changed


@retry_transaction
def _retime(tasks, field: str, duration: timedelta | None) -> int:
    """Move one deadline of these tasks. Their processes' rows are locked first, in id
    order, then the task rows in id order: the order every transaction takes them in (a
    step locks its process before it writes its tasks), so this cannot deadlock with a step
    or a sweep. A paused task follows the same formula: on resume its clock moves by the pause."""
    with transaction.atomic():
        process_ids = sorted(set(tasks.order_by().values_list("process_id", flat=True)))
        list(ProcessInstance.objects.filter(pk__in=process_ids).order_by("pk").select_for_update(of=("self",))
             .values_list("pk", flat=True))
        ids = list(tasks.order_by("pk").select_for_update(of=("self",)).values_list("pk", flat=True))
        return change_tasks(TaskInstance.objects.filter(pk__in=ids), **{field: _deadline(duration)}) if ids else 0


def apply_overrides() -> int:
    """Tasks are created with the journey file's times; give the ones created since the
    last sweep their override's times before anything fires."""
    pairs = AtomSLAOverride.objects.values_list("journey_id", "atom_id")
    return sum(retime_atom(journey_id, atom_id) for journey_id, atom_id in pairs)


# --- the sweep --------------------------------------------------------------------------------

def sweep(now: datetime | None = None, *, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> SweepResult:
    """Fire every SLA timer due at `now`: warnings first, then breaches with escalation."""
    began = time.perf_counter()
    now = now or timezone.now()
    result = SweepResult(retimed=apply_overrides())
    result.warned = warn_due_tasks(now, batch_size=batch_size, max_batches=max_batches)
    result.breached, result.escalated = breach_due_tasks(now, batch_size=batch_size, max_batches=max_batches)
    result.seconds = time.perf_counter() - began
    return result


def _lock_running_processes(process_ids, limit: int) -> list[int]:
    """Lock up to `limit` of these processes that are running, skipping any row another
    transaction holds (a user's step, another sweep). A no-op lock on SQLite, whose
    IMMEDIATE transactions already run one writer at a time."""
    locked = (ProcessInstance.objects.select_for_update(skip_locked=True, of=("self",))
              .filter(pk__in=process_ids, status=ProcessStatus.RUNNING).order_by("pk")
              .values_list("pk", flat=True)[:limit])
    return list(locked)


def warn_due_tasks(now: datetime, *, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> int:
    warned = 0
    for _ in range(max_batches):
        fired, claimed = _warn_batch(now, batch_size)
        warned += fired
        if claimed < batch_size:
            break
    return warned


@retry_transaction
def _warn_batch(now: datetime, batch_size: int) -> tuple[int, int]:
    """One transaction: lock a batch of processes with due warnings, then their due tasks,
    stamp them (conditional UPDATE) and append the events. Returns (fired, processes)."""
    due = TaskInstance.objects.filter(SLA_WARN_PENDING, due_date__lte=now)
    # The LIMIT keeps the planner on the timer's partial index: it cannot know that only
    # a few of the open tasks are due, and would otherwise walk every task of every process.
    earliest = (due.filter(process__status=ProcessStatus.RUNNING).order_by("due_date")
                .values("process_id")[:batch_size * 4])
    with transaction.atomic():
        process_ids = _lock_running_processes(earliest, batch_size)
        if not process_ids:
            return 0, 0
        tasks = list(due.filter(process_id__in=process_ids).select_for_update(of=("self",))
                     .select_related("assigned_to").order_by("pk"))
        stamped = change_tasks(TaskInstance.objects.filter(pk__in=[t.pk for t in tasks], sla_warned_at__isnull=True),
                               sla_warned_at=now)
        if stamped != len(tasks):
            # Cannot happen while every writer locks the process row first; refuse to
            # record events for stamps we did not make.
            raise RuntimeError(f"SLA warning stamped {stamped} of {len(tasks)} locked tasks")
        log = EventLog()
        for task in tasks:
            _add_sla_event(log, task, EventType.SLA_WARNING, now, deadline=task.due_date)
        log.flush()
    return len(tasks), len(process_ids)


def breach_due_tasks(now: datetime, *, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> tuple[int, int]:
    """Fire due escalation timers; returns (breached, escalated)."""
    due = TaskInstance.objects.filter(SLA_BREACH_PENDING, escalate_at__lte=now, process__status=ProcessStatus.RUNNING)
    breached = escalated = 0
    passed_over: set[int] = set()  # locked by someone else: theirs to finish, or the next sweep's
    for _ in range(max_batches):
        candidates = list(due.exclude(pk__in=passed_over).order_by("escalate_at", "pk")
                          .values_list("pk", "process_id")[:batch_size])
        for task_id, process_id in candidates:
            fired, moved = _breach_one(task_id, process_id, now)
            breached += fired
            escalated += moved
            if not fired:
                passed_over.add(task_id)
        if len(candidates) < batch_size:
            break
    return breached, escalated


@retry_transaction
def _breach_one(task_id: int, process_id: int, now: datetime) -> tuple[bool, bool]:
    """One transaction: lock the process (skip it if busy), then the task; stamp the breach
    with a conditional UPDATE; record `sla.breached` and escalate. Returns (breached, escalated)."""
    with transaction.atomic():
        if not _lock_running_processes([process_id], 1):
            return False, False
        task = (TaskInstance.objects.filter(SLA_BREACH_PENDING, pk=task_id, escalate_at__lte=now)
                .select_for_update(of=("self",)).select_related("assigned_to").first())
        if task is None:
            return False, False  # completed, paused, or fired by another sweep meanwhile
        warn_too = task.due_date is not None and task.due_date <= now and task.sla_warned_at is None
        stamps = {"sla_breached_at": now, **({"sla_warned_at": now} if warn_too else {})}
        if change_tasks(TaskInstance.objects.filter(pk=task.pk, sla_breached_at__isnull=True), **stamps) != 1:
            return False, False
        log = EventLog()
        if warn_too:
            _add_sla_event(log, task, EventType.SLA_WARNING, now, deadline=task.due_date)
        _add_sla_event(log, task, EventType.SLA_BREACHED, now, deadline=task.escalate_at)
        log.flush()
        return True, _escalate(task)


def _escalate(task: TaskInstance) -> bool:
    """Escalate inside a savepoint: a refusal (nobody to escalate to) leaves the recorded
    breach in place."""
    try:
        escalate_task(task.pk, automatic=True)
    except Conflict as exc:
        logger.info("SLA breach of task %s recorded without escalation: %s", task.pk, exc.message)
        return False
    return True


def _add_sla_event(log: EventLog, task: TaskInstance, event: str, now: datetime, *, deadline: datetime) -> None:
    assignee = task.assigned_to
    log.add(
        ProcessInstance(pk=task.process_id), event, task=task,
        deadline=deadline.isoformat(), late_by_seconds=round((now - deadline).total_seconds(), 3),
        role=task.role, assigned_to=assignee.get_username() if assignee else None,
        assigned_to_id=assignee.pk if assignee else None,
    )

