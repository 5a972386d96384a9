"""Prometheus exposition at `/metrics`, computed from the database at scrape time.

Web servers and workers are many processes; in-memory counters would each count a part
and start again at every restart. The database already holds every process and task, so
the counters are totals read from it (monotonic as long as rows are not deleted), the
histograms are built from each completed task's timestamps, and the gauges are the
current state. A scrape is a handful of grouped queries; the result is kept for
`CACHE_SECONDS` so that several scrapers cost one computation.

Access: a bearer token (`GNDP_METRICS_TOKEN`, for Prometheus), or a signed-in administrator
who sees every process (a superuser, or `processes.view_all_processes`; session or API
token). With neither the answer is 403: the figures describe the whole business.
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Iterable

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Min, Q, Sum, Value, When
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from gndp.api.authentication import TokenAuthentication
from gndp.rls import engine_scope
from rest_framework.exceptions import AuthenticationFailed

from processes.models import ProcessInstance, ProcessStatus
from tasks.access import sees_everything
from tasks.models import OPEN_TASK_STATUSES, SLA_BREACH_PENDING, SLA_WARN_PENDING, TaskInstance, TaskStatus

from .selectors import per_atom
from .stats import Seconds, report_transaction
from .workers import worker_health

CACHE_SECONDS = 10.0
# Human steps take minutes to days: buckets from a minute to a week (seconds).
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800)


# --- the collector -------------------------------------------------------------------------------

class DatabaseCollector:
    """A prometheus_client collector whose samples come from the database."""

    def collect(self) -> Iterable:
        yield from process_metrics()
        yield from task_metrics()
        yield from queue_metrics()
        yield from timer_metrics()
        yield from worker_metrics()


def process_metrics() -> Iterable:
    starts = CounterMetricFamily("gndp_process_starts", "Processes started.", labels=["journey"])
    completions = CounterMetricFamily("gndp_process_completions", "Processes completed.", labels=["journey"])
    current = GaugeMetricFamily("gndp_processes", "Processes by current status.", labels=["journey", "status"])
    totals: dict[str, list[int]] = {}
    rows = ProcessInstance.objects.order_by().values_list("journey_id", "status").annotate(n=Count("pk"))
    for journey_id, status, n in rows:
        started_and_completed = totals.setdefault(journey_id, [0, 0])
        started_and_completed[0] += n
        if status == ProcessStatus.COMPLETED:
            started_and_completed[1] += n
        current.add_metric([journey_id, status], n)
    for journey_id, (started, completed) in sorted(totals.items()):
        starts.add_metric([journey_id], started)
        completions.add_metric([journey_id], completed)
    return [starts, completions, current]


def _bucket(seconds: str) -> Case:
    """The index of the first histogram bucket a duration fits (len(DURATION_BUCKETS): +Inf)."""
    whens = [When(**{f"{seconds}__lte": bound}, then=Value(i)) for i, bound in enumerate(DURATION_BUCKETS)]
    return Case(*whens, default=Value(len(DURATION_BUCKETS)), output_field=IntegerField())


def task_metrics() -> Iterable:
    """Completions and SLA firings per atom, and the wait (created to started) and
    handling (started to completed) histograms of completed tasks: one pass over the tasks,
    grouped by atom and by the bucket each duration falls in."""
    labels = ["journey", "atom"]
    completions = CounterMetricFamily("gndp_task_completions", "Tasks completed.", labels=labels)
    warnings = CounterMetricFamily("gndp_sla_warnings", "Tasks that passed their SLA target.", labels=labels)
    breaches = CounterMetricFamily("gndp_sla_breaches", "Tasks that passed their escalation threshold.",
                                   labels=labels)
    wait = HistogramMetricFamily("gndp_task_wait_seconds", "Time from a task's creation to its start.",
                                 labels=labels)
    handling = HistogramMetricFamily("gndp_task_handling_seconds", "Time from a task's start to its completion.",
                                     labels=labels)
    completed = Q(status=TaskStatus.COMPLETED)
    tasks = TaskInstance.objects.alias(
        _wait=Seconds("started_at", "created_at"), _handling=Seconds("completed_at", "started_at"),
    ).annotate(
        wait_bucket=Case(When(completed, then=_bucket("_wait")), output_field=IntegerField()),
        handling_bucket=Case(When(completed, then=_bucket("_handling")), output_field=IntegerField()),
    )
    groups = per_atom(tasks, {
        "n": Count("pk"), "warned": Count("pk", filter=Q(sla_warned_at__isnull=False)),
        "breached": Count("pk", filter=Q(sla_breached_at__isnull=False)),
        "wait_sum": Sum("_wait", filter=completed), "handling_sum": Sum("_handling", filter=completed),
    }, extra_group=("wait_bucket", "handling_bucket"))
    for (journey_id, atom_id), atom in sorted(_fold_buckets(groups).items()):
        key = [journey_id, atom_id]
        completions.add_metric(key, atom["completed"])
        warnings.add_metric(key, atom["warned"])
        breaches.add_metric(key, atom["breached"])
        wait.add_metric(key, _cumulative(atom["wait"]), atom["wait_sum"])
        handling.add_metric(key, _cumulative(atom["handling"]), atom["handling_sum"])
    return [completions, warnings, breaches, wait, handling]


def _fold_buckets(groups: dict[tuple, dict]) -> dict[tuple, dict]:
    """(journey, atom, wait bucket, handling bucket) rows -> per atom: counts per bucket."""
    atoms: dict[tuple, dict] = {}
    size = len(DURATION_BUCKETS) + 1
    for (journey_id, atom_id, wait_bucket, handling_bucket), row in groups.items():
        atom = atoms.setdefault((journey_id, atom_id), {"completed": 0, "warned": 0, "breached": 0, "wait_sum": 0.0,
                                                        "handling_sum": 0.0, "wait": [0] * size,
                                                        "handling": [0] * size})
        atom["warned"] += row["warned"]
        atom["breached"] += row["breached"]
        if wait_bucket is None:  # not completed
            continue
        atom["completed"] += row["n"]
        atom["wait"][wait_bucket] += row["n"]
        atom["handling"][handling_bucket] += row["n"]
        atom["wait_sum"] += row["wait_sum"] or 0.0
        atom["handling_sum"] += row["handling_sum"] or 0.0
    return atoms


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    bounds = [str(float(bound)) for bound in DURATION_BUCKETS] + ["+Inf"]
    running, buckets = 0, []
    for bound, count in zip(bounds, counts):
        running += count
        buckets.append((bound, running))
    return buckets


def queue_metrics() -> Iterable:
    depth = GaugeMetricFamily("gndp_queue_depth", "Open tasks by role.", labels=["role"])
    overdue = GaugeMetricFamily("gndp_queue_overdue", "Open tasks past their due date, by role.", labels=["role"])
    now = timezone.now()
    rows = (TaskInstance.objects.filter(status__in=OPEN_TASK_STATUSES).order_by().values("role")
            .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_date__lt=now))))
    for row in rows:
        role = row["role"] or "(system)"
        depth.add_metric([role], row["open"])
        overdue.add_metric([role], row["overdue"])
    return [depth, overdue]


def timer_metrics() -> Iterable:
    """The lag of the two relays that must keep up: background steps waiting for a worker
    (re-sent by `requeue_stale_system_tasks`) and SLA timers waiting for the sweep."""
    now = timezone.now()
    lag = GaugeMetricFamily(
        "gndp_event_relay_lag_seconds",
        "Age of the oldest open system step of a running process that no worker has finished.")
    oldest = (TaskInstance.objects.filter(kind="system", status__in=OPEN_TASK_STATUSES,
                                          process__status=ProcessStatus.RUNNING)
              .aggregate(oldest=Min("created_at"))["oldest"])
    lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    due = GaugeMetricFamily("gndp_sla_timers_due", "SLA timers due but not fired yet (the sweep's backlog).",
                            labels=["timer"])
    due.add_metric(["warning"], TaskInstance.objects.filter(SLA_WARN_PENDING, due_date__lte=now).count())
    due.add_metric(["escalation"], TaskInstance.objects.filter(SLA_BREACH_PENDING, escalate_at__lte=now).count())
    return [lag, due]


def worker_metrics() -> Iterable:
    """Whether background work is being done (`monitoring.workers`): the workers' heartbeats,
    the steps that have waited for one and the SLA timers that the beat has not fired."""
    health = worker_health()
    seen = GaugeMetricFamily(
        "gndp_worker_last_seen_seconds",
        "Seconds since the newest heartbeat of any worker (+Inf: no worker ever reported).")
    seen.add_metric([], health.seen_ago if health.seen_ago is not None else float("inf"))
    alive = GaugeMetricFamily("gndp_workers_alive",
                              "Workers whose heartbeat is newer than GNDP_WORKER_STALE_SECONDS.")
    alive.add_metric([], health.alive)
    waiting = GaugeMetricFamily(
        "gndp_system_steps_waiting",
        "Open system steps of running processes created longer than GNDP_SYSTEM_STEP_WAIT_SECONDS ago.")
    waiting.add_metric([], health.waiting)
    late = GaugeMetricFamily(
        "gndp_sla_timers_late",
        "SLA timers due longer than GNDP_SYSTEM_STEP_WAIT_SECONDS ago and not fired: the beat is not running.")
    late.add_metric([], health.timers_late)
    return [seen, alive, waiting, late]


# --- the view ------------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, bytes]] = {}


def exposition() -> bytes:
    """The text exposition, recomputed at most every CACHE_SECONDS per process."""
    with _cache_lock:
        cached = _cache.get("body")
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector())
        with report_transaction():
            body = generate_latest(registry)
        _cache["body"] = (time.monotonic(), body)
        return body


def _metrics_token() -> str:
    return settings.GNDP_METRICS_TOKEN


def may_scrape(request: HttpRequest) -> bool:
    token = _metrics_token()
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        try:
            found = TokenAuthentication().authenticate(request)
        except AuthenticationFailed:
            found = None
        user = found[0] if found else None
    # System-wide figures: for an administrator who sees every process, as the dashboard's
    # scope of everything (monitoring.selectors.scope_for); the staff flag alone opens the
    # admin site, not every team's numbers.
    return bool(user and user.is_active and sees_everything(user, "processes.view_all_processes"))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return HttpResponse("forbidden: a metrics token or an administrator's sign-in is needed\n", status=403,
                            content_type="text/plain")
    # System-wide figures for an authorised scraper: the engine's view of the rows (gndp.rls).
    with engine_scope():
        body = exposition()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
