"""Predictions from history: how long a workflow takes, and when a running process ends.

History is what the database already holds: each completed task's duration (created to
completed, so waiting in a queue counts, as it does for the customer) and each process's
fired edges (which branch every atom took). The Monte Carlo itself is
processes.engine.prediction; this module gathers its inputs and stores its answers.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.db.models import F
from django.utils import timezone

from tasks.models import OPEN_TASK_STATUSES, TaskInstance, TaskStatus

from . import versions
from .engine import core
from .engine.blueprint import Blueprint
from .engine.prediction import MIN_SAMPLES, History, Model, ProcessState, build_model, monte_carlo
from .errors import InvalidInput
from .models import EventType, ProcessEvent, ProcessInstance, ProcessStatus

RECENT_TASKS = 20_000  # completed tasks read per journey, newest first
SAMPLES_PER_ATOM = 1_000  # the newest durations kept per atom: today's pace, not last year's
RECENT_PROCESSES = 2_000  # processes whose branch decisions are read
WORKFLOW_RUNS = 2_000
PROCESS_RUNS = 300  # per running process in the periodic job
MAX_RUNS = 10_000
# Runs times atoms: a bound on one prediction's work (about a second), so a huge journey
# gets fewer runs rather than a request that takes minutes.
MAX_ATOM_RUNS = 1_000_000
REFRESH_BATCH = 500


# --- history --------------------------------------------------------------------------------


def observed_durations(journey_id: str, blueprint: Blueprint) -> dict[str, list[float]]:
    """Atom id -> seconds from task creation to completion, newest first."""
    rows = (
        TaskInstance.objects.filter(process__journey_id=journey_id, status=TaskStatus.COMPLETED,
                                    completed_at__isnull=False)
        .order_by("-completed_at").values_list("atom_id", "created_at", "completed_at")[:RECENT_TASKS]
    )
    found: dict[str, list[float]] = {}
    for atom_id, created, completed in rows:
        if atom_id not in blueprint.atoms:  # filtered here: a 500-id IN list costs more than it saves
            continue
        samples = found.setdefault(atom_id, [])
        if len(samples) < SAMPLES_PER_ATOM:
            samples.append(max((completed - created).total_seconds(), 0.0))
    return found


def observed_branches(journey_id: str, blueprint: Blueprint) -> dict[str, dict[frozenset[str], int]]:
    """Atom id -> the sets of targets it fired when completed -> how often."""
    deciding = [atom_id for atom_id, edges in blueprint.outgoing.items()
                if any(edge.conditional or edge.default for edge in edges)]
    found: dict[str, dict[frozenset[str], int]] = {atom_id: {} for atom_id in deciding}
    if not deciding:
        return found
    rows = (ProcessInstance.objects.filter(journey_id=journey_id).order_by("-pk")
            .values_list("atom_states", "fired_edges")[:RECENT_PROCESSES])
    for states, fired in rows:
        for atom_id in deciding:
            if states.get(atom_id) == core.COMPLETED and atom_id in fired:
                key = frozenset(fired[atom_id])
                found[atom_id][key] = found[atom_id].get(key, 0) + 1
    return found


def observed_repeats(journey_id: str, blueprint: Blueprint) -> dict[str, tuple[int, int]]:
    """A rework loop's last atom -> (times its back edge ran the loop again, times it let
    the process on), over the recent processes."""
    closing = {source for source, _ in blueprint.regions}
    if not closing:
        return {}
    recent = list(ProcessInstance.objects.filter(journey_id=journey_id).order_by("-pk")
                  .values_list("pk", "atom_states")[:RECENT_PROCESSES])
    went_on = {atom_id: sum(states.get(atom_id) == core.COMPLETED for _, states in recent) for atom_id in closing}
    repeated = Counter(ProcessEvent.objects.filter(process_id__in=[pk for pk, _ in recent],
                                                   type=EventType.LOOP_REPEATED)
                       .values_list("payload__from", flat=True))
    return {atom_id: (repeated.get(atom_id, 0), went_on[atom_id]) for atom_id in closing}


def gather_history(journey_id: str, blueprint: Blueprint) -> History:
    return History(durations=observed_durations(journey_id, blueprint),
                   branches=observed_branches(journey_id, blueprint),
                   repeats=observed_repeats(journey_id, blueprint))


def typical_durations(journey_id: str, blueprint: Blueprint) -> dict[str, timedelta]:
    """The median observed duration of every atom with enough history."""
    return {
        atom_id: timedelta(seconds=statistics.median(samples))
        for atom_id, samples in observed_durations(journey_id, blueprint).items() if len(samples) >= MIN_SAMPLES
    }


# --- predictions ----------------------------------------------------------------------------


def predict_workflow(workflow_id: str, runs: int | None = None) -> dict[str, Any]:
    """p50 / p90 cycle time of a new process of the latest version."""
    version = versions.resolve_workflow(workflow_id)
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    model = build_model(blueprint, gather_history(version.journey_id, blueprint))
    prediction = monte_carlo(model, _runs(runs, WORKFLOW_RUNS, len(blueprint.atoms)))
    return {"journey_id": workflow_id, "version": version.number, **prediction.as_dict()}


def predict_process(process: ProcessInstance, runs: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """When this process is likely to finish, from where it is now; computes, stores nothing."""
    now = now or timezone.now()
    blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
    base = {"process_id": process.pk, "journey_id": process.workflow_id, "status": process.status,
            "deadline": _deadline(process, blueprint)}
    if process.status in (ProcessStatus.COMPLETED, ProcessStatus.ABORTED):
        return {**base, "predicted_finish": process.completed_at, "predicted_finish_p90": process.completed_at,
                "at_risk": False, "prediction": None}
    model = build_model(blueprint, gather_history(process.journey_id, blueprint))
    runs = _runs(runs, WORKFLOW_RUNS, len(blueprint.atoms))
    return {**base, **_forecast(process, model, _active_since(process.pk), now, runs)}


def _forecast(process: ProcessInstance, model: Model, active_since: dict[str, datetime], now: datetime,
              runs: int) -> dict[str, Any]:
    state = ProcessState(
        states=process.atom_states,
        fired={atom_id: frozenset(targets) for atom_id, targets in process.fired_edges.items()},
        active_for={atom_id: max((now - since).total_seconds(), 0.0) for atom_id, since in active_since.items()},
    )
    elapsed = max((now - process.started_at).total_seconds(), 0.0)
    prediction = monte_carlo(model, runs, seed=process.pk, state=state, elapsed=elapsed)
    finish = process.started_at + timedelta(seconds=prediction.p50)
    deadline = _deadline(process, model.blueprint)
    return {
        "predicted_finish": finish,
        "predicted_finish_p90": process.started_at + timedelta(seconds=prediction.p90),
        "at_risk": deadline is not None and finish > deadline,
        "prediction": prediction.as_dict(),
    }


def _deadline(process: ProcessInstance, blueprint: Blueprint) -> datetime | None:
    return process.started_at + blueprint.sla_target if blueprint.sla_target else None


def _active_since(process_id: int) -> dict[str, datetime]:
    """Atom id -> when its open task was created, i.e. when the atom became active."""
    return {atom_id: created for _, atom_id, created in _open_tasks([process_id])}


def _open_tasks(process_ids: Iterable[int]):
    return (TaskInstance.objects.filter(process_id__in=list(process_ids), status__in=OPEN_TASK_STATUSES)
            .values_list("process_id", "atom_id", "created_at"))


def _runs(runs: int | None, default: int, atoms: int) -> int:
    if runs is None:
        runs = default
    elif not 1 <= runs <= MAX_RUNS:
        raise InvalidInput(f"runs must be from 1 to {MAX_RUNS}", details={"runs": f"from 1 to {MAX_RUNS}"})
    return min(runs, max(100, MAX_ATOM_RUNS // max(atoms, 1)))


# --- the periodic job -------------------------------------------------------------------------


def refresh_predictions(limit: int = REFRESH_BATCH, runs: int = PROCESS_RUNS, now: datetime | None = None) -> int:
    """Predict the running processes predicted longest ago (never first) and store
    `predicted_finish` and `at_risk`; clear the flag of processes that ended. Returns how
    many processes were predicted. Safe to run again at any time."""
    now = now or timezone.now()
    ProcessInstance.objects.filter(at_risk=True, status__in=[ProcessStatus.COMPLETED, ProcessStatus.ABORTED]).update(
        at_risk=False
    )
    batch = list(
        ProcessInstance.objects.filter(status=ProcessStatus.RUNNING)
        .order_by(F("predicted_at").asc(nulls_first=True), "pk")
        .only("pk", "version_id", "journey_id", "workflow_id", "started_at", "atom_states", "fired_edges")[:limit]
    )
    active: dict[int, dict[str, datetime]] = {}
    for process_id, atom_id, created in _open_tasks(p.pk for p in batch):
        active.setdefault(process_id, {})[atom_id] = created
    models: dict[tuple[int, str], Model] = {}
    for process in batch:
        key = (process.version_id, process.workflow_id)
        if key not in models:
            blueprint = versions.get_blueprint(*key)
            models[key] = build_model(blueprint, gather_history(process.journey_id, blueprint))
        forecast = _forecast(process, models[key], active.get(process.pk, {}), now,
                             _runs(runs, PROCESS_RUNS, len(models[key].order)))
        process.predicted_finish, process.at_risk = forecast["predicted_finish"], forecast["at_risk"]
        process.predicted_at = now
    # Only these columns: state changes write the others, never these. A process that
    # ended meanwhile keeps no flag (the filter is part of the UPDATE).
    ProcessInstance.objects.filter(status=ProcessStatus.RUNNING).bulk_update(
        batch, ["predicted_finish", "at_risk", "predicted_at"], batch_size=200
    )
    return len(batch)
