"""Whether system steps are being run: the workers' heartbeats and the steps waiting for one.

Two signs, read together by the dashboard's banner, `/metrics` and the anomaly detector:

- **no worker seen**: no heartbeat row (`monitoring.heartbeat`) newer than
  `GNDP_WORKER_STALE_SECONDS`, from a worker that has not stopped cleanly;
- **system steps waiting**: open system steps of running processes created longer than
  `GNDP_SYSTEM_STEP_WAIT_SECONDS` ago. This also catches workers that beat but do not take
  work (a lost message, a stuck consumer, all of them busy);
- **SLA timers late**: warnings and escalations due longer than that same time ago and not
  fired: the beat that runs the SLA sweep every 5 s is not running (`make run` runs it
  inside its worker; in production it is a process of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from processes.models import ProcessInstance, ProcessStatus
from tasks.models import OPEN_TASK_STATUSES, SLA_BREACH_PENDING, SLA_WARN_PENDING, TaskInstance

from .models import WorkerHeartbeat

OK, DOWN, LAGGING = "ok", "down", "lagging"


def stale_after() -> timedelta:
    return timedelta(seconds=settings.GNDP_WORKER_STALE_SECONDS)


def wait_after() -> timedelta:
    return timedelta(seconds=settings.GNDP_SYSTEM_STEP_WAIT_SECONDS)


@dataclass(frozen=True)
class WorkerHealth:
    alive: int  # workers seen within the stale time
    last_seen_at: datetime | None  # the newest heartbeat of any worker, stopped or not
    last_node: str
    last_pid: int | None
    last_stopped: bool  # the newest heartbeat is a clean shutdown's
    waiting: int  # system steps waiting longer than the wait time
    oldest_waiting_at: datetime | None
    timers_late: int  # SLA timers due longer than the wait time ago, not fired
    now: datetime

    @property
    def seen_ago(self) -> float | None:
        return None if self.last_seen_at is None else max(0.0, (self.now - self.last_seen_at).total_seconds())

    @property
    def oldest_waiting_for(self) -> float | None:
        return None if self.oldest_waiting_at is None else max(0.0, (self.now - self.oldest_waiting_at).total_seconds())

    @property
    def state(self) -> str:
        """`down`: no worker; `lagging`: workers, but steps wait; `ok`."""
        if not self.alive:
            return DOWN
        return LAGGING if self.waiting or self.timers_late else OK

    def as_dict(self) -> dict:
        return {
            "state": self.state, "workers_alive": self.alive, "last_seen_at": self.last_seen_at,
            "last_seen_seconds_ago": None if self.seen_ago is None else round(self.seen_ago, 1),
            "last_node": self.last_node, "last_pid": self.last_pid, "last_stopped": self.last_stopped,
            "system_steps_waiting": self.waiting,
            "oldest_waiting_seconds": None if self.oldest_waiting_for is None else round(self.oldest_waiting_for, 1),
            "sla_timers_late": self.timers_late,
            "stale_after_seconds": stale_after().total_seconds(), "wait_after_seconds": wait_after().total_seconds(),
        }


def waiting_system_steps(now: datetime, processes: QuerySet[ProcessInstance] | None = None) -> QuerySet[TaskInstance]:
    """Open system steps of running processes that have waited longer than the wait time
    (among `processes`, when given)."""
    steps = TaskInstance.objects.filter(kind="system", status__in=OPEN_TASK_STATUSES, created_at__lt=now - wait_after(),
                                        process__status=ProcessStatus.RUNNING)
    return steps if processes is None else steps.filter(process__in=processes)


def late_sla_timers(now: datetime, processes: QuerySet[ProcessInstance] | None = None) -> int:
    """SLA warnings and escalations of running processes due longer than the wait time ago
    that no sweep has fired (among `processes`, when given)."""
    late = now - wait_after()
    tasks = TaskInstance.objects.filter(process__status=ProcessStatus.RUNNING)
    if processes is not None:
        tasks = tasks.filter(process__in=processes)
    return (tasks.filter(SLA_WARN_PENDING, due_date__lt=late).count()
            + tasks.filter(SLA_BREACH_PENDING, escalate_at__lt=late).count())


def worker_health(*, now: datetime | None = None, processes: QuerySet[ProcessInstance] | None = None) -> WorkerHealth:
    """The workers' heartbeats, the system steps waiting and the SLA timers late (among
    `processes`, when given)."""
    now = now or timezone.now()
    last = WorkerHeartbeat.objects.order_by("-last_seen_at", "-id").values(
        "last_seen_at", "node", "pid", "stopped_at").first()
    alive = WorkerHeartbeat.objects.filter(last_seen_at__gte=now - stale_after(), stopped_at__isnull=True).count()
    waiting = waiting_system_steps(now, processes).aggregate(n=Count("pk"), oldest=Min("created_at"))
    return WorkerHealth(
        alive=alive, last_seen_at=last["last_seen_at"] if last else None, last_node=last["node"] if last else "",
        last_pid=last["pid"] if last else None, last_stopped=bool(last and last["stopped_at"]),
        waiting=waiting["n"], oldest_waiting_at=waiting["oldest"], timers_late=late_sla_timers(now, processes),
        now=now,
    )
