"""Anomaly detection from the event log and the step records: stuck processes, unusual
paths and unusual step durations. Nothing here is a fixed limit: each is learned from the
history of the same step (or the same journey version).

- **Stuck**: a running process with no progress (no event but SLA timers and discussion)
  for longer than its open step's learned limit: `STUCK_FACTOR` times the 95th percentile
  of that step's observed durations (time from activation to completion, less time
  suspended), at least `MIN_STUCK_SECONDS`. The next run resolves it once the process
  moves on or closes.
- **Unusual duration**: a recently completed step far outside its atom's distribution:
  beyond Tukey's far-out fences (`FENCE` interquartile ranges past the quartiles) on a
  log scale, where step durations are roughly symmetric, and at least
  `MIN_DEVIATION_SECONDS` from the median.
- **Unusual path**: the steps a process went through (its `task.created` events) compared
  with the completed processes of the same journey version: it went through a step that
  fewer than `RARE_SHARE` of them did; or, once completed, it skipped a step that all but
  `RARE_SHARE` of them went through, or its whole path is that rare.

Every judgment needs enough history (`MIN_SAMPLES` completions of the step,
`MIN_PATH_HISTORY` completed processes); without it nothing is flagged.

One kind is no statistic but an operational fault:

- **System step not run**: a system step of a running process that no worker has run
  within `GNDP_SYSTEM_STEP_WAIT_SECONDS`, with why as far as the workers' heartbeats tell
  (`monitoring.workers`): no worker at all, the last one gone since when, or workers that
  beat but do not take the work. Besides the periodic run in a worker, every web server
  process looks for these itself (`anomalies.watchdog`), since a dead worker runs no
  detection either. The next run that finds the step done (or the process no longer
  running) resolves it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from monitoring.stats import DurationSeconds, Seconds, grouped_stats
from monitoring.workers import waiting_system_steps, worker_health
from processes import versions
from processes.models import DiscussionEventType, EventType, ProcessEvent, ProcessInstance, ProcessStatus
from tasks.models import OPEN_TASK_STATUSES, TaskInstance, TaskStatus

from .models import TRANSIENT_KINDS, Anomaly, AnomalyKind

log = logging.getLogger(__name__)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


HISTORY_DAYS = _setting("GNDP_ANOMALY_HISTORY_DAYS", 90)  # what the limits are learned from
RECENT_DAYS = _setting("GNDP_ANOMALY_RECENT_DAYS", 7)  # completed steps and processes judged
MIN_SAMPLES = int(_setting("GNDP_ANOMALY_MIN_SAMPLES", 10))
STUCK_QUANTILE = 0.95
STUCK_FACTOR = _setting("GNDP_ANOMALY_STUCK_FACTOR", 1.5)
MIN_STUCK_SECONDS = _setting("GNDP_ANOMALY_MIN_STUCK_SECONDS", 60)
FENCE = _setting("GNDP_ANOMALY_FENCE", 3.0)
MIN_LOG_IQR = 0.1  # steps that always take the same time still get a band of about 10%
MIN_DEVIATION_SECONDS = _setting("GNDP_ANOMALY_MIN_DEVIATION_SECONDS", 60)
RARE_SHARE = _setting("GNDP_ANOMALY_RARE_SHARE", 0.05)
MIN_PATH_HISTORY = int(_setting("GNDP_ANOMALY_MIN_PATH_HISTORY", 20))
PATH_HISTORY_LIMIT = 500  # the most recent completed processes of a version compared against

# Events that are not progress: timers firing on their own, and people talking about it.
NOT_PROGRESS = [EventType.SLA_WARNING, EventType.SLA_BREACHED, *DiscussionEventType.values]


def human(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s" if minutes < 10 and secs else f"{minutes}m"
    return f"{secs}s"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


# --- what is learned per step ---------------------------------------------------------------------

@dataclass(frozen=True)
class StepStats:
    """The observed durations (seconds) of one atom's completed steps."""

    samples: int
    p25: float
    p50: float
    p75: float
    p95: float

    @property
    def enough(self) -> bool:
        return self.samples >= MIN_SAMPLES

    @property
    def stuck_after(self) -> float:
        return max(STUCK_FACTOR * self.p95, MIN_STUCK_SECONDS)

    def fences(self) -> tuple[float, float]:
        """(low, high): durations outside are far outside what was seen."""
        low_q, high_q = math.log1p(self.p25), math.log1p(self.p75)
        spread = max(high_q - low_q, MIN_LOG_IQR)
        return max(0.0, math.expm1(low_q - FENCE * spread)), math.expm1(high_q + FENCE * spread)


def _step_seconds():
    return Seconds(F("completed_at"), F("created_at")) - DurationSeconds(F("sla_paused_for"))


def learn_step_stats(now: datetime) -> dict[tuple[str, str], StepStats]:
    """(journey id, atom id) -> the durations of its completed steps over the history window."""
    completed = TaskInstance.objects.filter(
        status=TaskStatus.COMPLETED, completed_at__gte=now - timedelta(days=HISTORY_DAYS), completed_at__lte=now)
    duration = _step_seconds()
    stats = grouped_stats(
        completed, ["process__journey_id", "atom_id"], {"samples": Count("pk")},
        {"p25": (duration, 0.25), "p50": (duration, 0.5), "p75": (duration, 0.75), "p95": (duration, STUCK_QUANTILE)},
    )
    return {
        key: StepStats(int(row["samples"]), *(max(0.0, float(row[q] or 0.0)) for q in ("p25", "p50", "p75", "p95")))
        for key, row in stats.items()
    }


# --- findings --------------------------------------------------------------------------------------

@dataclass
class Finding:
    kind: str
    process: Any  # a dict with pk, journey_id, workflow_id
    key: str
    reason: str
    score: float
    atom_id: str = ""
    task_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def find_stuck(now: datetime, stats: dict[tuple[str, str], StepStats]) -> list[Finding]:
    """Running processes without progress for longer than an open step's learned limit."""
    open_steps = list(TaskInstance.objects.filter(status__in=OPEN_TASK_STATUSES, process__status=ProcessStatus.RUNNING)
                      .values("pk", "process_id", "atom_id", "name", "created_at", "process__journey_id",
                              "process__workflow_id"))
    if not open_steps:
        return []
    last_progress = dict(
        ProcessEvent.objects.filter(process__status=ProcessStatus.RUNNING).exclude(type__in=NOT_PROGRESS)
        .order_by().values("process_id").annotate(last=Max("timestamp")).values_list("process_id", "last"))
    findings = []
    for step in open_steps:
        learned = stats.get((step["process__journey_id"], step["atom_id"]))
        since = last_progress.get(step["process_id"]) or step["created_at"]
        if learned is None or not learned.enough:
            continue
        idle = (now - since).total_seconds()
        limit = learned.stuck_after
        if idle <= limit:
            continue
        findings.append(Finding(
            kind=AnomalyKind.STUCK,
            process={"pk": step["process_id"], "journey_id": step["process__journey_id"],
                     "workflow_id": step["process__workflow_id"]},
            key=f"task:{step['pk']}", atom_id=step["atom_id"], task_id=step["pk"], score=round(idle / limit, 3),
            reason=(f"No progress for {human(idle)} while at “{step['name']}”: that step usually finishes within "
                    f"{human(learned.p95)} (95th percentile of {learned.samples} completions), so after "
                    f"{human(limit)} it counts as stuck."),
            details={"idle_seconds": round(idle, 1), "last_progress_at": since.isoformat(),
                     "limit_seconds": round(limit, 1), "p95_seconds": round(learned.p95, 1),
                     "median_seconds": round(learned.p50, 1), "samples": learned.samples},
        ))
    return findings


def find_unusual_durations(now: datetime, stats: dict[tuple[str, str], StepStats]) -> list[Finding]:
    """Steps completed recently that took far longer, or far less, than their atom's usual."""
    recent = (TaskInstance.objects.filter(status=TaskStatus.COMPLETED,
                                          completed_at__gte=now - timedelta(days=RECENT_DAYS), completed_at__lte=now)
              .annotate(seconds=_step_seconds())
              .values("pk", "process_id", "atom_id", "name", "seconds", "process__journey_id", "process__workflow_id"))
    findings = []
    for step in recent:
        learned = stats.get((step["process__journey_id"], step["atom_id"]))
        if learned is None or not learned.enough or step["seconds"] is None:
            continue
        seconds = max(0.0, float(step["seconds"]))
        low, high = learned.fences()
        if seconds > high and seconds - learned.p50 >= MIN_DEVIATION_SECONDS:
            direction, limit = "longer", high
            reason = (f"“{step['name']}” took {human(seconds)}; it usually takes {human(learned.p50)} (median of "
                      f"{learned.samples} completions), and anything past {human(high)} is far outside what was seen.")
            score = math.log1p(seconds) / max(math.log1p(high), 1e-9)
        elif seconds < low and learned.p50 - seconds >= MIN_DEVIATION_SECONDS:
            direction, limit = "shorter", low
            reason = (f"“{step['name']}” took only {human(seconds)}; it usually takes {human(learned.p50)} (median of "
                      f"{learned.samples} completions), and anything under {human(low)} is far outside what was seen.")
            score = math.log1p(low) / max(math.log1p(seconds), 1e-9)
        else:
            continue
        findings.append(Finding(
            kind=AnomalyKind.UNUSUAL_DURATION,
            process={"pk": step["process_id"], "journey_id": step["process__journey_id"],
                     "workflow_id": step["process__workflow_id"]},
            key=f"task:{step['pk']}", atom_id=step["atom_id"], task_id=step["pk"], score=round(score, 3), reason=reason,
            details={"seconds": round(seconds, 1), "direction": direction, "limit_seconds": round(limit, 1),
                     "median_seconds": round(learned.p50, 1), "p25_seconds": round(learned.p25, 1),
                     "p75_seconds": round(learned.p75, 1), "samples": learned.samples},
        ))
    return findings


WAITING_LIMIT = 1000  # system steps judged per run: the oldest first


def find_waiting_system_steps(now: datetime) -> list[Finding]:
    """System steps of running processes that no worker has run within the wait time."""
    steps = list(waiting_system_steps(now).order_by("created_at", "pk").values(
        "pk", "process_id", "atom_id", "name", "created_at", "attempts", "last_error", "process__journey_id",
        "process__workflow_id")[:WAITING_LIMIT])
    if not steps:
        return []
    health = worker_health(now=now)
    why = _why_not_run(health)
    limit = max(float(settings.GNDP_SYSTEM_STEP_WAIT_SECONDS), 1.0)
    findings = []
    for step in steps:
        waited = (now - step["created_at"]).total_seconds()
        tried = ""
        if step["attempts"]:
            tried = (f" after {step['attempts']} failed attempt{'s' if step['attempts'] > 1 else ''}"
                     f" (the last: {step['last_error'][:200]})")
        findings.append(Finding(
            kind=AnomalyKind.SYSTEM_STEP_WAITING,
            process={"pk": step["process_id"], "journey_id": step["process__journey_id"],
                     "workflow_id": step["process__workflow_id"]},
            key=f"task:{step['pk']}", atom_id=step["atom_id"], task_id=step["pk"], score=round(waited / limit, 3),
            reason=f"System step “{step['name']}” has waited {human(waited)} for a worker{tried}: {why}",
            details={"waited_seconds": round(waited, 1), "wait_after_seconds": limit, "attempts": step["attempts"],
                     "workers_alive": health.alive,
                     "last_seen_seconds_ago": None if health.seen_ago is None else round(health.seen_ago, 1),
                     "last_node": health.last_node, "last_pid": health.last_pid},
        ))
    return findings


def _why_not_run(health) -> str:
    if health.alive:
        workers = "1 worker reports" if health.alive == 1 else f"{health.alive} workers report"
        return (f"{workers} (the last {human(health.seen_ago)} ago) but none has run it: its message may have been "
                f"lost (open steps are sent again every 30 s) or the workers are busy.")
    if health.last_seen_at is None:
        return "no worker has ever reported, so system steps are not being run. Start one: celery -A gndp worker --beat."
    last = f"{health.last_node}, pid {health.last_pid}"
    if health.last_stopped:
        return (f"the last worker ({last}) stopped {human(health.seen_ago)} ago and none has reported since, so system "
                f"steps are not being run.")
    return (f"no worker has reported for {human(health.seen_ago)} (the last: {last}), so system steps are not "
            f"being run.")


def _paths(process_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    steps: dict[int, set[str]] = defaultdict(set)
    rows = (ProcessEvent.objects.filter(process_id__in=list(process_ids), type=EventType.TASK_CREATED)
            .order_by().values_list("process_id", "atom_id"))
    for process_id, atom_id in rows:
        steps[process_id].add(atom_id)
    return {process_id: frozenset(atoms) for process_id, atoms in steps.items()}


def _atom_names(version_id: int, workflow_id: str) -> dict[str, str]:
    try:
        return {atom_id: atom.name for atom_id, atom in versions.get_blueprint(version_id, workflow_id).atoms.items()}
    except Exception:  # noqa: BLE001 - an unreadable version: show the ids
        return {}


def find_unusual_paths(now: datetime) -> list[Finding]:
    """Processes whose way through the journey is rare next to the completed ones of the
    same version: running ones, and those completed in the recent window."""
    recent = now - timedelta(days=RECENT_DAYS)
    candidates = list(ProcessInstance.objects.filter(status=ProcessStatus.RUNNING).values(
        "pk", "version_id", "journey_id", "workflow_id", "status"))
    candidates += list(ProcessInstance.objects.filter(status=ProcessStatus.COMPLETED, completed_at__gte=recent,
                                                      completed_at__lte=now)
                       .values("pk", "version_id", "journey_id", "workflow_id", "status"))
    by_version: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for process in candidates:
        by_version[(process["version_id"], process["workflow_id"])].append(process)
    findings = []
    for (version_id, workflow_id), processes in by_version.items():
        history_ids = list(ProcessInstance.objects.filter(
            version_id=version_id, workflow_id=workflow_id, status=ProcessStatus.COMPLETED, completed_at__lte=now,
        ).order_by("-completed_at").values_list("pk", flat=True)[:PATH_HISTORY_LIMIT + 1])
        if len(history_ids) < MIN_PATH_HISTORY:
            continue
        paths = _paths({*history_ids, *(p["pk"] for p in processes)})
        names = _atom_names(version_id, workflow_id)
        for process in processes:
            finding = _judge_path(process, [pid for pid in history_ids if pid != process["pk"]][:PATH_HISTORY_LIMIT],
                                  paths, names)
            if finding is not None:
                findings.append(finding)
    return findings


def _judge_path(process: dict, history_ids: list[int], paths: dict[int, frozenset[str]],
                names: dict[str, str]) -> Finding | None:
    history = [paths.get(pid, frozenset()) for pid in history_ids]
    total = len(history)
    if total < MIN_PATH_HISTORY:
        return None
    path = paths.get(process["pk"], frozenset())
    seen = Counter(atom for steps in history for atom in steps)
    name = lambda atom: f"“{names.get(atom, atom)}”"  # noqa: E731
    reasons: list[tuple[float, str, dict]] = []  # (share, sentence, details)
    for atom in sorted(path):
        share = seen[atom] / total
        if share < RARE_SHARE:
            reasons.append((share, f"went through {name(atom)}, which {seen[atom]} of the last {total} completed "
                                   f"processes of this journey version did ({_percent(share)})",
                            {"rare_step": atom, "count": seen[atom]}))
    if process["status"] == ProcessStatus.COMPLETED:
        for atom, count in sorted(seen.items()):
            if atom not in path and 1 - count / total < RARE_SHARE:
                missed = (total - count) / total
                reasons.append((missed, f"skipped {name(atom)}, which {count} of the last {total} completed "
                                        f"processes of this journey version went through",
                                {"skipped_step": atom, "count": count}))
        same = sum(1 for steps in history if steps == path)
        if same / total < RARE_SHARE and not reasons:
            reasons.append((same / total, f"took a way through the journey that {same} of the last {total} "
                                          f"completed processes of this journey version took ({_percent(same / total)})",
                            {"same_path": same}))
    if not reasons:
        return None
    reasons.sort(key=lambda item: item[0])
    rarest = reasons[0][0]
    sentence = "; ".join(text for _, text, _ in reasons)
    return Finding(
        kind=AnomalyKind.UNUSUAL_PATH, process=process, key="path",
        atom_id=reasons[0][2].get("rare_step") or reasons[0][2].get("skipped_step") or "",
        score=round(1 / max(rarest, 1 / (total + 1)), 3),
        reason=f"Rare path: it {sentence}.",
        details={"history": total, "path": sorted(path), "rarest_share": round(rarest, 4),
                 "findings": [dict(details, share=round(share, 4)) for share, _, details in reasons]},
    )


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class DetectionResult:
    found: dict[str, int] = field(default_factory=dict)
    opened: int = 0
    resolved: int = 0

    def as_dict(self) -> dict:
        return {"found": {str(kind): n for kind, n in self.found.items()}, "opened": self.opened,
                "resolved": self.resolved}


def detect(*, now: datetime | None = None) -> DetectionResult:
    """One detection run: find, record (insert new, refresh known, reopen what came back),
    and resolve the stuck ones that are not stuck any more. Safe to repeat."""
    now = now or timezone.now()
    stats = learn_step_stats(now)
    findings = (find_stuck(now, stats) + find_unusual_durations(now, stats) + find_unusual_paths(now)
                + find_waiting_system_steps(now))
    return _settle(findings, now, TRANSIENT_KINDS)


def detect_waiting_system_steps(*, now: datetime | None = None) -> DetectionResult:
    """Only the system steps no worker has run: what a web server's watchdog runs often,
    without the statistics of a full run. Safe to repeat, and to run beside `detect`."""
    now = now or timezone.now()
    return _settle(find_waiting_system_steps(now), now, (AnomalyKind.SYSTEM_STEP_WAITING,))


def _settle(findings: list[Finding], now: datetime, transient: Iterable[str]) -> DetectionResult:
    """Record the findings; resolve the open anomalies of the `transient` kinds not found again."""
    result = DetectionResult(found=dict(Counter(f.kind for f in findings)))
    transient = tuple(transient)
    with transaction.atomic():
        result.opened, seen_ids = _record(findings, now, transient)
        result.resolved = (Anomaly.objects.filter(kind__in=transient, resolved_at__isnull=True)
                           .exclude(pk__in=seen_ids).update(resolved_at=now))
    return result


def _record(findings: list[Finding], now: datetime, transient: tuple[str, ...]) -> tuple[int, list[int]]:
    """Insert the new findings, refresh the known ones; returns (how many are new, the ids of
    the `transient` kinds' anomalies found)."""
    if not findings:
        return 0, []
    keyed = {(f.process["pk"], f.kind, f.key): f for f in findings}
    existing = {(a.process_id, a.kind, a.key): a for a in Anomaly.objects.select_for_update().filter(
        process_id__in={pid for pid, _, _ in keyed}, kind__in={kind for _, kind, _ in keyed})}
    new, changed = [], []
    for triple, finding in keyed.items():
        anomaly = existing.get(triple)
        if anomaly is None:
            new.append(Anomaly(
                kind=finding.kind, process_id=finding.process["pk"], key=finding.key,
                journey_id=finding.process["journey_id"], workflow_id=finding.process["workflow_id"],
                atom_id=finding.atom_id, task_id=finding.task_id, reason=finding.reason, details=finding.details,
                score=finding.score, detected_at=now, last_seen_at=now,
            ))
            continue
        if anomaly.resolved_at is not None:  # it came back: a new occurrence, to be looked at again
            anomaly.resolved_at = anomaly.acknowledged_at = anomaly.acknowledged_by = None
            anomaly.note = ""
            anomaly.detected_at = now
        anomaly.reason, anomaly.details, anomaly.score = finding.reason, finding.details, finding.score
        anomaly.atom_id, anomaly.task_id, anomaly.last_seen_at = finding.atom_id, finding.task_id, now
        changed.append(anomaly)
    Anomaly.objects.bulk_create(new, ignore_conflicts=True)
    Anomaly.objects.bulk_update(changed, ["reason", "details", "score", "atom_id", "task_id", "last_seen_at",
                                          "resolved_at", "acknowledged_at", "acknowledged_by", "note", "detected_at"])
    seen_ids = [anomaly.pk for anomaly in Anomaly.objects.filter(
        process_id__in={pid for pid, _, _ in keyed}, kind__in=transient,
        key__in={key for _, kind, key in keyed if kind in transient}).only("pk", "process_id", "kind", "key")
        if (anomaly.process_id, anomaly.kind, anomaly.key) in keyed]
    return len(new), seen_ids
