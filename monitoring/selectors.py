"""Everything the monitoring API and the dashboard read, scoped to the caller.

`scope_for(user)` decides what a caller may see: superusers and administrators with the
`view_all_processes` permission see everything; a manager (a user some profiles name as
their manager) sees the team: itself and its direct reports. Anyone else is refused (403).
For a manager,

- processes are those `tasks.access.visible_processes` gives it (the API's own rule, so
  the dashboard never lists a process the manager could not open; `team_processes`
  computes the same set faster);
- tasks are those assigned to the team, plus the unassigned tasks waiting in the queues of
  the team's roles (the team's work to pick up). They are only ever counted, never listed.

Every function takes the scope and a `Filters` (journey, window, and the clock, so tests
can fix `now`) and returns plain dicts and lists, ready for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Avg,
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from processes import versions
from processes.engine.blueprint import Blueprint, UnknownContainer
from processes.errors import Forbidden, NotFound
from processes.graph import analytics
from processes.models import (
    EventType,
    ProcessEvent,
    ProcessInstance,
    ProcessStatus,
    ProcessUserObjectPermission,
    WorkflowVersion,
)
from tasks.access import PROCESS_VIEW, sees_everything
from tasks.models import OPEN_DUE_DATE, OPEN_TASK_STATUSES, Profile, TaskInstance, TaskStatus

from . import sla, workers
from .stats import DurationSeconds, Seconds, grouped_stats, rounded

DEFAULT_WINDOW = timedelta(days=7)
ACTIVE_STATUSES = [ProcessStatus.PENDING, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED, ProcessStatus.FAILED]
ON_TRACK, DELAYED, BLOCKED = "on-track", "delayed", "blocked"
HEALTH_STATES = (ON_TRACK, DELAYED, BLOCKED)
HEALTH_BY_RANK = (BLOCKED, DELAYED, ON_TRACK)  # most urgent first


# --- who sees what, and the filters ------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    user: Any
    team_ids: frozenset[int] | None = None  # None: everything
    team_roles: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return self.team_ids is None

    def processes(self) -> QuerySet[ProcessInstance]:
        return ProcessInstance.objects.all() if self.everything else team_processes(self.user, self.team_ids)

    def tasks(self) -> QuerySet[TaskInstance]:
        if self.everything:
            return TaskInstance.objects.all()
        return TaskInstance.objects.filter(
            Q(assigned_to_id__in=self.team_ids)
            | Q(assigned_to__isnull=True, kind="human", role__in=self.team_roles)
        )

    def events(self) -> QuerySet[ProcessEvent]:
        events = ProcessEvent.objects.all()
        return events if self.everything else events.filter(process__in=self.processes())


def team_processes(manager, team_ids: Iterable[int]) -> QuerySet[ProcessInstance]:
    """What `tasks.access.visible_processes` gives a manager (started or worked on by the
    manager or a report, held by a report, or granted), written with uncorrelated IN
    subqueries: a report reads the set several times, and PostgreSQL hashes each subquery
    once where the EXISTS form probes the tasks of every process (a test holds the two
    equal)."""
    team_ids = list(team_ids)
    worked = TaskInstance.objects.filter(Q(assigned_to_id__in=team_ids) | Q(completed_by=manager)).values("process_id")
    granted = ProcessUserObjectPermission.objects.filter(
        user=manager, permission__codename=PROCESS_VIEW, permission__content_type__app_label="processes"
    ).values("content_object_id")
    return ProcessInstance.objects.filter(Q(started_by_id__in=team_ids) | Q(pk__in=worked) | Q(pk__in=granted))


def scope_for(user) -> Scope:
    if not user.is_authenticated:
        raise Forbidden("sign in to see the dashboard")
    if sees_everything(user, "processes.view_all_processes"):
        return Scope(user)
    reports = list(Profile.objects.filter(manager=user).values_list("user_id", flat=True))
    if not reports:
        raise Forbidden("the monitoring dashboard is for managers and administrators")
    team = frozenset([user.pk, *reports])
    roles = tuple(sorted(set(Group.objects.filter(user__in=team).values_list("name", flat=True))))
    return Scope(user, team, roles)


@dataclass(frozen=True)
class Filters:
    journey_id: str | None = None
    window: timedelta = DEFAULT_WINDOW
    now: datetime = field(default_factory=timezone.now)

    @property
    def since(self) -> datetime:
        return self.now - self.window

    def processes(self, queryset: QuerySet[ProcessInstance]) -> QuerySet[ProcessInstance]:
        """A journey, phase or module id: the processes started for it or under it."""
        if not self.journey_id:
            return queryset
        return queryset.filter(Q(workflow_id=self.journey_id) | Q(journey_id=self.journey_id))

    def tasks(self, queryset: QuerySet[TaskInstance]) -> QuerySet[TaskInstance]:
        if not self.journey_id:
            return queryset
        return queryset.filter(Q(process__workflow_id=self.journey_id) | Q(process__journey_id=self.journey_id))


def _days(filters: Filters) -> list[date]:
    first, last = filters.since.date(), filters.now.date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --- targets and names ---------------------------------------------------------------------------

class Catalogue:
    """Atom names, roles and SLAs in force, per root journey, read once per request."""

    def __init__(self) -> None:
        self._slas: dict[str, dict[str, sla.AtomSLA]] = {}
        self._blueprints: dict[str, Blueprint | None] = {}

    def blueprint(self, journey_id: str) -> Blueprint | None:
        if journey_id not in self._blueprints:
            version = versions.latest_version(journey_id)
            try:
                self._blueprints[journey_id] = versions.get_blueprint(version.pk, journey_id) if version else None
            except UnknownContainer:
                self._blueprints[journey_id] = None
        return self._blueprints[journey_id]

    def atom(self, journey_id: str, atom_id: str):
        blueprint = self.blueprint(journey_id)
        return blueprint.atoms.get(atom_id) if blueprint else None

    def name(self, journey_id: str, atom_id: str) -> str:
        atom = self.atom(journey_id, atom_id)
        return atom.name if atom else atom_id

    def target(self, journey_id: str, atom_id: str) -> timedelta | None:
        if journey_id not in self._slas:
            self._slas[journey_id] = sla.journey_slas(journey_id)
        found = self._slas[journey_id].get(atom_id)
        return found.target if found else None


_atom_owners: dict[str, Any] = {"key": None, "owners": {}}


def atom_journeys() -> dict[str, frozenset[str]]:
    """atom id -> the root journeys that define it, over every published version. Versions
    never change, so this is rebuilt only when one is published."""
    key = (WorkflowVersion.objects.count(), WorkflowVersion.objects.order_by("-pk").values_list("pk", "hash").first())
    if _atom_owners["key"] != key:
        owners: dict[str, set[str]] = {}
        for journey_id, definition in WorkflowVersion.objects.values_list("journey_id", "definition"):
            for atom in definition.get("atoms", []):
                owners.setdefault(atom["id"], set()).add(journey_id)
        _atom_owners.update(key=key, owners={atom_id: frozenset(ids) for atom_id, ids in owners.items()})
    return _atom_owners["owners"]


def per_atom(tasks: QuerySet[TaskInstance], aggregates: dict, percentiles: dict | None = None,
             *, extra_group: tuple[str, ...] = ()) -> dict[tuple, dict]:
    """(root journey id, atom id, *extra_group values) -> the aggregates over these tasks.

    Tasks do not carry their journey; joining every task to its process only to learn it
    costs more than the aggregate itself. An atom id that only one journey defines names
    its journey, so those tasks are grouped by atom id alone, and only atoms that several
    journeys define (or none) are grouped through the join.
    """
    owners = atom_journeys()
    ambiguous = [atom_id for atom_id, journeys in owners.items() if len(journeys) > 1]
    result: dict[tuple, dict] = {}
    unknown: set[str] = set()
    plain = grouped_stats(tasks.exclude(atom_id__in=ambiguous), ["atom_id", *extra_group], aggregates, percentiles)
    for (atom_id, *rest), stat in plain.items():
        if atom_id in owners:
            result[(next(iter(owners[atom_id])), atom_id, *rest)] = stat
        else:
            unknown.add(atom_id)
    if ambiguous or unknown:
        joined = grouped_stats(tasks.filter(atom_id__in=[*ambiguous, *unknown]),
                               ["process__journey_id", "atom_id", *extra_group], aggregates, percentiles)
        result.update(joined)
    return result


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _ratio(part: float | None, whole: float | None, digits: int = 4) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, digits)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


# --- active processes ----------------------------------------------------------------------------

def _health_conditions(now: datetime) -> tuple[Q, Q]:
    """(blocked, delayed) as conditions on processes: blocked is suspended, failed, with a
    task nobody can be routed to, or with a system step no worker has run for longer than
    `GNDP_SYSTEM_STEP_WAIT_SECONDS`; delayed is not blocked, with a task past its due date.
    Uncorrelated IN subqueries, so PostgreSQL hashes the few overdue and stuck tasks once
    instead of probing the tasks of every process."""
    open_tasks = TaskInstance.objects.filter(status__in=OPEN_TASK_STATUSES)
    stuck = open_tasks.filter(kind="human", assigned_to__isnull=True, data__unroutable=True).values("process_id")
    not_run = open_tasks.filter(kind="system", created_at__lt=now - workers.wait_after()).values("process_id")
    overdue = overdue_tasks(TaskInstance.objects.all(), now).values("process_id")
    blocked = (Q(status__in=[ProcessStatus.SUSPENDED, ProcessStatus.FAILED]) | Q(pk__in=stuck)
               | Q(status=ProcessStatus.RUNNING, pk__in=not_run))
    return blocked, Q(pk__in=overdue) & ~blocked


def _with_health(processes: QuerySet[ProcessInstance], now: datetime) -> QuerySet[ProcessInstance]:
    """Annotate `health_rank`, an index into HEALTH_BY_RANK (most urgent first)."""
    blocked, delayed = _health_conditions(now)
    return processes.annotate(health_rank=Case(
        When(blocked, then=Value(0)), When(delayed, then=Value(1)), default=Value(2), output_field=IntegerField(),
    ))


def active_process_queryset(scope: Scope, filters: Filters, *, health: str | None = None) -> QuerySet:
    processes = filters.processes(scope.processes()).filter(status__in=ACTIVE_STATUSES)
    if health:
        blocked, delayed = _health_conditions(filters.now)
        chosen = {BLOCKED: blocked, DELAYED: delayed, ON_TRACK: ~blocked & ~delayed}[health]
        processes = processes.filter(chosen)
    # Most urgent first: blocked, then delayed, then the oldest.
    return _with_health(processes, filters.now).order_by("health_rank", "started_at", "pk")


def active_processes(scope: Scope, filters: Filters, *, health: str | None = None,
                     limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """A page of open processes with status, progress, current steps and age; and the total."""
    queryset = active_process_queryset(scope, filters, health=health)
    # Rank and sort narrow rows, then read the page's full rows (context, atom states).
    ranked = list(queryset.values_list("pk", "health_rank")[offset:offset + limit])
    rows = ProcessInstance.objects.select_related("started_by").in_bulk([pk for pk, _ in ranked])
    page = []
    for pk, rank in ranked:
        rows[pk].health_rank = rank
        page.append(rows[pk])
    return process_rows(page, filters.now), queryset.count()


def process_rows(processes: list[ProcessInstance], now: datetime) -> list[dict]:
    ids = [process.pk for process in processes]
    context = _RowContext(Catalogue(), paused_seconds(ids, now), overdue_counts(ids, now), now)
    return [_process_row(process, context) for process in processes]


@dataclass(frozen=True)
class _RowContext:
    catalogue: Catalogue
    paused: dict[int, float]
    overdue: dict[int, int]
    now: datetime


def overdue_counts(process_ids: list[int], now: datetime) -> dict[int, int]:
    rows = (overdue_tasks(TaskInstance.objects.filter(process_id__in=process_ids), now)
            .order_by().values_list("process_id").annotate(n=Count("pk")))
    return dict(rows)


def _process_row(process: ProcessInstance, context: _RowContext) -> dict:
    now, paused = context.now, context.paused.get(process.pk, 0.0)
    current = process.steps_in("active")
    blueprint = _process_blueprint(process)
    target = blueprint.sla_target if blueprint else None
    target_at = process.started_at + target + timedelta(seconds=paused) if target else None
    rank = getattr(process, "health_rank", None)
    return {
        "id": process.pk,
        "journey_id": process.workflow_id,
        "root_journey_id": process.journey_id,
        "business_key": process.business_key,
        "status": HEALTH_BY_RANK[rank] if rank is not None else _health_of(process, context),
        "process_status": process.status,
        "percent_complete": round(process.progress * 100, 1),
        "current_steps": current,
        "current_step_names": [context.catalogue.name(process.journey_id, atom_id) for atom_id in current],
        "overdue_tasks": context.overdue.get(process.pk, 0),
        "started_at": process.started_at,
        "started_by": process.started_by.get_username() if process.started_by_id else None,
        "age_seconds": round((now - process.started_at).total_seconds(), 1),
        "paused_seconds": round(paused, 1),
        "target_at": target_at,
        "predicted_finish": process.predicted_finish,
        # The whole-process target is a prediction flag (journey-format.md), not a status: set
        # when the process is already past it, or predicted to finish after it.
        "at_risk": bool(process.status in ACTIVE_STATUSES
                        and ((target_at and now > target_at) or process.at_risk)),
    }


def _health_of(process: ProcessInstance, context: _RowContext) -> str | None:
    """The status of a process read without the annotation (a timeline's header)."""
    if process.status not in ACTIVE_STATUSES:
        return None
    annotated = _with_health(ProcessInstance.objects.filter(pk=process.pk), context.now)
    return HEALTH_BY_RANK[annotated.values_list("health_rank", flat=True).get()]


def _process_blueprint(process: ProcessInstance) -> Blueprint | None:
    try:
        return versions.get_blueprint(process.version_id, process.workflow_id)
    except UnknownContainer:
        return None


def paused_seconds(process_ids: Iterable[int], now: datetime) -> dict[int, float]:
    """process id -> seconds spent suspended, from its suspend/resume events."""
    events = (ProcessEvent.objects.filter(process_id__in=list(process_ids),
                                          type__in=[EventType.PROCESS_SUSPENDED, EventType.PROCESS_RESUMED])
              .order_by("process_id", "id").values_list("process_id", "type", "timestamp"))
    totals: dict[int, float] = {}
    since: dict[int, datetime] = {}
    for process_id, kind, when in events:
        if kind == EventType.PROCESS_SUSPENDED:
            since[process_id] = when
        elif process_id in since:
            totals[process_id] = totals.get(process_id, 0.0) + (when - since.pop(process_id)).total_seconds()
    for process_id, when in since.items():  # still suspended
        totals[process_id] = totals.get(process_id, 0.0) + (now - when).total_seconds()
    return totals


def health_counts(scope: Scope, filters: Filters) -> dict[str, int]:
    """How many open processes are on-track, delayed and blocked."""
    processes = filters.processes(scope.processes()).filter(status__in=ACTIVE_STATUSES)
    blocked, delayed = _health_conditions(filters.now)
    counts = processes.aggregate(active=Count("pk"), blocked=Count("pk", filter=blocked),
                                 delayed=Count("pk", filter=delayed))
    return {"active": counts["active"], "on_track": counts["active"] - counts["blocked"] - counts["delayed"],
            "delayed": counts["delayed"], "blocked": counts["blocked"]}


# --- one process's timeline ----------------------------------------------------------------------

def process_timeline(scope: Scope, process_id: Any, *, now: datetime | None = None) -> dict:
    """The steps of one process for a Gantt chart: each task's actual span next to the span
    its SLA expected, and the atoms that have not run (waiting or skipped)."""
    now = now or timezone.now()
    try:
        process = scope.processes().get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"process {process_id} not found") from None
    blueprint = _process_blueprint(process)
    catalogue = Catalogue()
    tasks = list(TaskInstance.objects.filter(process=process).select_related("assigned_to").order_by("created_at", "pk"))
    steps = [_timeline_step(task, catalogue, process.journey_id, now) for task in tasks]
    ran = {task.atom_id for task in tasks}
    not_run = [
        {"atom_id": atom_id, "name": atom.name, "kind": atom.kind, "state": process.atom_states.get(atom_id, "waiting"),
         "expected_seconds": _seconds(catalogue.target(process.journey_id, atom_id))}
        for atom_id, atom in (blueprint.atoms.items() if blueprint else []) if atom_id not in ran
    ]
    return {"process": process_rows([process], now)[0], "steps": steps, "not_run": not_run}


def _timeline_step(task: TaskInstance, catalogue: Catalogue, journey_id: str, now: datetime) -> dict:
    ended = task.completed_at if task.status not in OPEN_TASK_STATUSES else None
    paused = task.sla_paused_for + (now - task.sla_paused_at if task.sla_paused_at else timedelta(0))
    actual = ((ended or now) - task.created_at - paused).total_seconds()
    expected = task.due_date - task.created_at - task.sla_paused_for if task.due_date else None
    return {
        "task_id": task.pk,
        "atom_id": task.atom_id,
        "name": task.name or catalogue.name(journey_id, task.atom_id),
        "kind": task.kind,
        "role": task.role,
        "assigned_to": task.assigned_to.get_username() if task.assigned_to_id else None,
        "status": task.status,
        "start": task.created_at,
        "work_started_at": task.started_at,
        "end": ended,
        "expected_end": task.due_date,
        "actual_seconds": round(actual, 1),
        "expected_seconds": _seconds(expected),
        "late": bool(task.due_date and (ended or now) > task.due_date),
        "escalated": task.escalated,
    }


# --- queues, workload -----------------------------------------------------------------------------

def overdue_tasks(tasks: QuerySet[TaskInstance], now: datetime) -> QuerySet[TaskInstance]:
    """The open ones of these tasks that are past their due date (read through the
    task_open_due_idx expression index)."""
    return tasks.alias(open_due=OPEN_DUE_DATE).filter(open_due__lt=now)


def _open_tasks(scope: Scope, filters: Filters) -> QuerySet[TaskInstance]:
    return filters.tasks(scope.tasks()).filter(status__in=OPEN_TASK_STATUSES)


def queue_by_role(scope: Scope, filters: Filters) -> list[dict]:
    """Open tasks per role: depth, unassigned, in progress, overdue; the deepest first."""
    rows = (_open_tasks(scope, filters).filter(kind="human").order_by().values("role").annotate(
        open=Count("pk"),
        unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
        in_progress=Count("pk", filter=Q(status=TaskStatus.IN_PROGRESS)),
        overdue=Count("pk", filter=Q(due_date__lt=filters.now)),
        oldest=Min("created_at"),
    ))
    result = [
        {"role": row["role"], "open": row["open"], "unassigned": row["unassigned"],
         "in_progress": row["in_progress"], "overdue": row["overdue"],
         "oldest_wait_seconds": rounded((filters.now - row["oldest"]).total_seconds()) if row["oldest"] else None}
        for row in rows
    ]
    return sorted(result, key=lambda row: (-row["open"], row["role"]))


def workload_by_user(scope: Scope, filters: Filters) -> list[dict]:
    """Per person: open, in progress and overdue tasks, completed in the window, capacity."""
    open_rows = (_open_tasks(scope, filters).filter(assigned_to__isnull=False).order_by().values("assigned_to")
                 .annotate(open=Count("pk"), in_progress=Count("pk", filter=Q(status=TaskStatus.IN_PROGRESS)),
                           overdue=Count("pk", filter=Q(due_date__lt=filters.now))))
    completed = filters.tasks(scope.tasks() if scope.everything else
                              TaskInstance.objects.filter(completed_by_id__in=scope.team_ids))
    done_rows = (completed.filter(status=TaskStatus.COMPLETED, completed_at__gte=filters.since,
                                  completed_by__isnull=False)
                 .order_by().values("completed_by").annotate(n=Count("pk")))
    load = {row["assigned_to"]: row for row in open_rows}
    done = {row["completed_by"]: row["n"] for row in done_rows}
    user_ids = set(load) | set(done) | (set(scope.team_ids) if scope.team_ids else set())
    people = (get_user_model().objects.filter(pk__in=user_ids).select_related("workflow_profile")
              .order_by(get_user_model().USERNAME_FIELD))
    rows = [_workload_row(person, load.get(person.pk, {}), done.get(person.pk, 0)) for person in people]
    return sorted(rows, key=lambda row: (-row["open"], row["username"]))


def _workload_row(person, load: dict, completed: int) -> dict:
    profile = getattr(person, "workflow_profile", None)
    capacity = profile.capacity if profile else None
    open_count = load.get("open", 0)
    return {
        "username": person.get_username(),
        "open": open_count,
        "in_progress": load.get("in_progress", 0),
        "overdue": load.get("overdue", 0),
        "completed_in_window": completed,
        "capacity": capacity,
        "utilisation": _ratio(open_count, capacity, 3),
        "available": profile.available if profile else True,
    }


# --- metrics ----------------------------------------------------------------------------------------

def metrics(scope: Scope, filters: Filters) -> dict:
    """Throughput per day, cycle time, task completion and error rates, queue depth by role."""
    processes = filters.processes(scope.processes())
    completed = processes.filter(status=ProcessStatus.COMPLETED, completed_at__gte=filters.since)
    cycle = grouped_stats(completed, [], {"count": Count("pk")}, {
        "p50": (Seconds(F("completed_at"), F("started_at")), 0.5),
        "p95": (Seconds(F("completed_at"), F("started_at")), 0.95),
    })[()]
    queue = queue_by_role(scope, filters)
    return {
        "window_seconds": filters.window.total_seconds(),
        "since": filters.since,
        "until": filters.now,
        "throughput": throughput_per_day(processes, filters),
        "cycle_time": {"completed": cycle["count"], "p50_seconds": rounded(cycle["p50"]),
                       "p95_seconds": rounded(cycle["p95"])},
        "task_completion": task_completion(scope, filters, open_now=sum(row["open"] for row in queue)),
        "errors": error_rate(scope, filters, completed_count=cycle["count"]),
        "queue_depth": queue,
        "active": health_counts(scope, filters),
    }


def throughput_per_day(processes: QuerySet[ProcessInstance], filters: Filters) -> list[dict]:
    started = dict(processes.filter(started_at__gte=filters.since).annotate(day=TruncDate("started_at"))
                   .order_by().values_list("day").annotate(n=Count("pk")))
    completed = dict(processes.filter(status=ProcessStatus.COMPLETED, completed_at__gte=filters.since)
                     .annotate(day=TruncDate("completed_at")).order_by().values_list("day").annotate(n=Count("pk")))
    return [{"date": day, "started": started.get(day, 0), "completed": completed.get(day, 0)}
            for day in _days(filters)]


def task_completion(scope: Scope, filters: Filters, *, open_now: int | None = None) -> dict:
    """Human tasks completed in the window (per day, and on time), and the completion
    ratio: completed in the window over that plus what is still open (`open_now`, when
    the caller has counted it already: every human task has a role, so the role queues
    hold them all)."""
    done = filters.tasks(scope.tasks()).filter(status=TaskStatus.COMPLETED, completed_at__gte=filters.since,
                                               kind="human")
    counts = done.aggregate(completed=Count("pk"),
                            on_time=Count("pk", filter=Q(completed_at__lte=F("due_date"))),
                            with_target=Count("pk", filter=Q(due_date__isnull=False)))
    still_open = open_now if open_now is not None else _open_tasks(scope, filters).filter(kind="human").count()
    days = filters.window.total_seconds() / 86400
    return {"completed": counts["completed"], "open": still_open,
            "completed_per_day": round(counts["completed"] / days, 1),
            "completion_rate": _ratio(counts["completed"], counts["completed"] + still_open),
            "on_time_rate": _ratio(counts["on_time"], counts["with_target"])}


def error_rate(scope: Scope, filters: Filters, *, completed_count: int) -> dict:
    """Processes that failed in the window, as a share of those that finished in it."""
    failures = scope.events().filter(type=EventType.PROCESS_FAILED, timestamp__gte=filters.since)
    if filters.journey_id:
        failures = failures.filter(Q(process__workflow_id=filters.journey_id) | Q(process__journey_id=filters.journey_id))
    failed = failures.values("process_id").distinct().count()
    return {"failed": failed, "finished": failed + completed_count,
            "error_rate": _ratio(failed, failed + completed_count)}


# --- SLA compliance ---------------------------------------------------------------------------------

def _completed_tasks(scope: Scope, filters: Filters) -> QuerySet[TaskInstance]:
    return filters.tasks(scope.tasks()).filter(status=TaskStatus.COMPLETED, kind="human",
                                               completed_at__gte=filters.since)


def _time_in_step():
    """Created to completed, less the time the process was suspended."""
    return Seconds(F("completed_at"), F("created_at")) - DurationSeconds(F("sla_paused_for"))


def sla_compliance(scope: Scope, filters: Filters) -> list[dict]:
    """Per atom, over the window: the target in force, the actual p50/p95 time in step,
    and the share of completions within target; plus what is overdue now."""
    stats = per_atom(
        _completed_tasks(scope, filters),
        {"completed": Count("pk"), "with_target": Count("pk", filter=Q(due_date__isnull=False)),
         "within": Count("pk", filter=Q(completed_at__lte=F("due_date"))),
         "warned": Count("pk", filter=Q(sla_warned_at__isnull=False)),
         "breached": Count("pk", filter=Q(sla_breached_at__isnull=False))},
        {"p50": (_time_in_step(), 0.5), "p95": (_time_in_step(), 0.95)},
    )
    overdue = {key: stat["n"] for key, stat in
               per_atom(overdue_tasks(filters.tasks(scope.tasks()), filters.now), {"n": Count("pk")}).items()}
    catalogue = Catalogue()
    rows = [_compliance_row(key, stats.get(key, {}), overdue.get(key, 0), catalogue)
            for key in sorted(set(stats) | set(overdue))]
    return rows


def _compliance_row(key: tuple[str, str], stat: dict, overdue_now: int, catalogue: Catalogue) -> dict:
    journey_id, atom_id = key
    target = _seconds(catalogue.target(journey_id, atom_id))
    completed = stat.get("completed", 0)
    return {
        "journey_id": journey_id,
        "atom_id": atom_id,
        "name": catalogue.name(journey_id, atom_id),
        "target_seconds": target,
        "completed": completed,
        "p50_seconds": rounded(stat.get("p50")),
        "p95_seconds": rounded(stat.get("p95")),
        "within_target": stat.get("within", 0),
        "percent_within_target": _percent(stat.get("within", 0), stat.get("with_target", 0)),
        "warned": stat.get("warned", 0),
        "breached": stat.get("breached", 0),
        "overdue_now": overdue_now,
    }


def sla_compliance_series(scope: Scope, filters: Filters) -> list[dict]:
    """Per day of the window: completions with a target, and the share within it."""
    rows = (_completed_tasks(scope, filters).filter(due_date__isnull=False).annotate(day=TruncDate("completed_at"))
            .order_by().values("day").annotate(n=Count("pk"), within=Count("pk", filter=Q(completed_at__lte=F("due_date")))))
    by_day = {row["day"]: row for row in rows}
    return [{"date": day, "completed": by_day.get(day, {}).get("n", 0),
             "within_target": by_day.get(day, {}).get("within", 0),
             "percent_within_target": _percent(by_day.get(day, {}).get("within", 0), by_day.get(day, {}).get("n", 0))}
            for day in _days(filters)]


def sla_summary(scope: Scope, filters: Filters) -> dict:
    counts = _completed_tasks(scope, filters).filter(due_date__isnull=False).aggregate(
        n=Count("pk"), within=Count("pk", filter=Q(completed_at__lte=F("due_date"))))
    return {"completed": counts["n"], "within_target": counts["within"],
            "percent_within_target": _percent(counts["within"], counts["n"])}


# --- bottlenecks ------------------------------------------------------------------------------------

def bottlenecks(scope: Scope, filters: Filters, *, limit: int = 20) -> list[dict]:
    """Atoms ranked by the waiting time piled up in their queues (the sum of the ages of
    their open tasks), with queue depth, and the time in step against the target: of the
    open tasks so far (avg_wait_vs_target) and of those completed in the window."""
    now = Value(filters.now, output_field=DateTimeField())
    waiting = per_atom(
        _open_tasks(scope, filters),
        {"queue_depth": Count("pk"), "unassigned": Count("pk", filter=Q(assigned_to__isnull=True)),
         "overdue": Count("pk", filter=Q(due_date__lt=filters.now)),
         "total_wait": Sum(Seconds(now, F("created_at"))), "oldest": Min("created_at")},
    )
    done = per_atom(
        _completed_tasks(scope, filters),
        {"completed": Count("pk"), "avg_pickup": Avg(Seconds(F("started_at"), F("created_at"))),
         "avg_handling": Avg(Seconds(F("completed_at"), F("started_at"))), "avg_in_step": Avg(_time_in_step())},
    )
    catalogue = Catalogue()
    rows = [_bottleneck_row(key, waiting.get(key, {}), done.get(key, {}), catalogue, filters.now)
            for key in set(waiting) | set(done)]
    rows.sort(key=lambda row: (-row["total_wait_seconds"], -(row["avg_time_vs_target"] or 0), row["atom_id"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows[:limit]


def _bottleneck_row(key: tuple[str, str], waiting: dict, done: dict, catalogue: Catalogue, now: datetime) -> dict:
    journey_id, atom_id = key
    atom = catalogue.atom(journey_id, atom_id)
    target = _seconds(catalogue.target(journey_id, atom_id))
    depth = waiting.get("queue_depth", 0)
    total_wait = waiting.get("total_wait") or 0.0
    avg_wait = total_wait / depth if depth else None
    return {
        "journey_id": journey_id,
        "atom_id": atom_id,
        "name": atom.name if atom else atom_id,
        "role": atom.role if atom else None,
        "queue_depth": depth,
        "unassigned": waiting.get("unassigned", 0),
        "overdue": waiting.get("overdue", 0),
        "total_wait_seconds": rounded(total_wait),
        "avg_wait_seconds": rounded(avg_wait),
        "max_wait_seconds": rounded((now - waiting["oldest"]).total_seconds()) if waiting.get("oldest") else None,
        "completed": done.get("completed", 0),
        "avg_pickup_seconds": rounded(done.get("avg_pickup")),
        "avg_handling_seconds": rounded(done.get("avg_handling")),
        "avg_time_in_step_seconds": rounded(done.get("avg_in_step")),
        "target_seconds": target,
        "avg_wait_vs_target": _ratio(avg_wait, target, 3),
        "avg_time_vs_target": _ratio(done.get("avg_in_step"), target, 3),
    }


# --- the dashboard in one read ------------------------------------------------------------------------

def metric_cards(scope: Scope, filters: Filters) -> dict:
    health = health_counts(scope, filters)
    completed = filters.processes(scope.processes()).filter(status=ProcessStatus.COMPLETED,
                                                           completed_at__gte=filters.since).count()
    overdue = overdue_tasks(filters.tasks(scope.tasks()), filters.now).count()
    return {**health, "completed_in_window": completed, "overdue_tasks": overdue,
            "sla_percent_within_target": sla_summary(scope, filters)["percent_within_target"]}


DASHBOARD_PARTS = ("workers", "cards", "processes", "timeline", "queues", "workload", "trend", "sla", "bottlenecks",
                   "graph")


def sees_dashboard(user) -> bool:
    """Whether `scope_for` lets this user in (superusers, administrators with
    `view_all_processes`, managers); remembered on the user object for the request."""
    if not user.is_authenticated:
        return False
    cached = getattr(user, "_sees_dashboard", None)
    if cached is None:
        cached = (sees_everything(user, "processes.view_all_processes")
                  or Profile.objects.filter(manager=user).exists())
        user._sees_dashboard = cached
    return cached


def journey_choices() -> list[dict]:
    """The journeys of the latest published versions and their phases, for the journey
    filter: [{"id", "name", "phases": [{"id", "name"}]}], in id order."""
    latest: dict[str, WorkflowVersion] = {}
    for version in WorkflowVersion.objects.only("pk", "journey_id", "number", "name").order_by("journey_id", "number"):
        latest[version.journey_id] = version
    return [{"id": journey_id, "name": version.name,
             "phases": [{"id": phase["id"], "name": phase.get("name") or phase["id"]}
                        for phase in versions.definition_of(version.pk).get("phases", [])]}
            for journey_id, version in latest.items()]


def _default_timeline_process(scope: Scope, filters: Filters, health: str | None,
                              page: list[dict] | None) -> int | None:
    """The most urgent open process (the first row of the table), when none is chosen."""
    if page is not None:
        return page[0]["id"] if page else None
    return active_process_queryset(scope, filters, health=health).values_list("pk", flat=True).first()


def dashboard(scope: Scope, filters: Filters, *, parts: Iterable[str] | None = None, health: str | None = None,
              process_id: Any = None, processes_limit: int = 50) -> dict:
    """What the dashboard page shows, for one caller, filter and window: every part, or
    only `parts` (a live refresh asks for those an event touched). The timeline is that of
    `process_id`, or of the most urgent open process; a process outside the caller's scope
    is NotFound. `health` narrows the processes table only."""
    wanted = set(DASHBOARD_PARTS if parts is None else parts) & set(DASHBOARD_PARTS)
    result: dict[str, Any] = {
        "parts": [part for part in DASHBOARD_PARTS if part in wanted],
        "scope": "all" if scope.everything else "team",
        "journey_id": filters.journey_id,
        "window_seconds": filters.window.total_seconds(),
        "health": health,
        "now": filters.now,
    }
    page = None
    if "workers" in wanted:
        # The workers are everybody's; the steps waiting for one, the caller's.
        result["workers"] = workers.worker_health(
            now=filters.now, processes=None if scope.everything else scope.processes()).as_dict()
    if "cards" in wanted:
        result["cards"] = metric_cards(scope, filters)
    if "processes" in wanted:
        page, result["active_total"] = active_processes(scope, filters, health=health, limit=processes_limit)
        result["active_processes"] = page
    if "timeline" in wanted:
        chosen = process_id if process_id not in (None, "") else _default_timeline_process(scope, filters, health, page)
        result["timeline"] = process_timeline(scope, chosen, now=filters.now) if chosen is not None else None
    if "queues" in wanted:
        result["queue_by_role"] = queue_by_role(scope, filters)
    if "workload" in wanted:
        result["workload"] = workload_by_user(scope, filters)
    if "trend" in wanted:
        throughput = result["throughput"] = throughput_per_day(filters.processes(scope.processes()), filters)
        series = result["sla_series"] = sla_compliance_series(scope, filters)
        # Both are per day of the same window, in the same order.
        result["trend"] = [{**day, "steps_with_target": sla_day["completed"],
                            "percent_within_target": sla_day["percent_within_target"]}
                           for day, sla_day in zip(throughput, series)]
    if "sla" in wanted:
        result["sla_compliance"] = sla_compliance(scope, filters)
    if "bottlenecks" in wanted:
        result["bottlenecks"] = bottlenecks(scope, filters, limit=10)
    if "graph" in wanted:
        result["graph"] = graph_analytics(scope, filters)
    return result


def graph_analytics(scope: Scope, filters: Filters, *, limit: int = 8) -> dict:
    """Where running processes wait now and the most travelled step pairs of the window:
    answered by the graph store (Cypher over the runtime mirror) when Neo4j is configured,
    by SQL otherwise, with the same rows."""
    processes = None if scope.everything and not filters.journey_id else filters.processes(scope.processes())
    hotspots = analytics.waiting_hotspots(limit, processes=processes)
    paths = analytics.travelled_paths(filters.since, filters.now, limit, processes=processes)
    most_waiting = max((row["processes"] for row in hotspots.rows), default=0)
    most_travelled = max((row["travelled"] for row in paths.rows), default=0)
    return {
        "computed_in": hotspots.computed_in,
        "hotspots": [{**row, "share": row["processes"] / most_waiting if most_waiting else 0}
                     for row in hotspots.rows],
        "paths": [{**row, "share": row["travelled"] / most_travelled if most_travelled else 0} for row in paths.rows],
    }
