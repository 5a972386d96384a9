"""How long a workflow takes: Monte Carlo over the blueprint, and one path's critical time.

Pure Python (no Django). Time follows the execution semantics of journey-format.md: an
atom becomes active when every incoming ENABLES edge is decided and every DEPENDS_ON
target is decided, and is skipped as soon as its incoming edges are decided and none
fired. So an OR-merge waits for its skipped branch to be decided too, exactly as the
engine does. An active atom then takes its duration: a draw from the observed durations
(task created to task completed) when there are enough of them, else its SLA target.

Which edges an atom fires is a draw from the fired-target sets observed for that atom,
or, with too little history, the prior: each conditional edge fires with even odds (with
`choose: first`, the first to pass its draw alone), the default edge when none of them
did, unconditional edges always.

A rework loop's last atom repeats its loop with the chance observed in the event log
(`loop.repeated` against the times it let the process on), or even odds, each run drawing
its atoms' durations again, up to `max_iterations`.

A race (`then: first_done`) is drawn when its source decides: each racer it reached draws
its duration then, the fastest wins and runs as usual, and the others are skipped when it
completes. A racer's wait for a dependency is left out of who wins.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping, Sequence

from . import core
from .blueprint import CHOOSE_FIRST, FIRST_DONE, Blueprint
from .durations import format_duration

MIN_SAMPLES = 5  # fewer observations than this say too little about an atom
PRIOR_FIRE_PROBABILITY = 0.5
PRIOR_REPEAT_PROBABILITY = 0.5  # a rework loop's back edge, with too little history

HISTORY = "history"
SLA = "sla"
PRIOR = "prior"
NONE = "none"

Sampler = Callable[[Callable[[], float]], float]
Brancher = Callable[[Callable[[], float]], Sequence[int]]

# How the run treats an atom (a running process has some already decided or active).
_OPEN, _COMPLETED, _SKIPPED, _ACTIVE = 0, 1, 2, 3


@dataclass(frozen=True)
class History:
    """What past processes of a workflow did: per atom, its durations and its decisions."""

    durations: Mapping[str, Sequence[float]] = field(default_factory=dict)  # atom -> seconds
    branches: Mapping[str, Mapping[frozenset[str], int]] = field(default_factory=dict)  # atom -> fired set -> count
    # A rework loop's last atom -> (how often its back edge ran the loop again, how often it
    # let the process on).
    repeats: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessState:
    """Where a running process is: its atom states, fired edges, and how long each
    active atom has been active (seconds)."""

    states: Mapping[str, str]
    fired: Mapping[str, frozenset[str]]
    active_for: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Prediction:
    runs: int
    p50: float  # seconds
    p90: float
    mean: float
    source: str  # history | sla | mixed: where the atoms' durations came from
    sla_target: float | None = None
    within_target: float | None = None  # share of runs that end within the journey target
    visit_probability: dict[str, float] = field(default_factory=dict)
    atoms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "p50": _iso(self.p50),
            "p90": _iso(self.p90),
            "mean": _iso(self.mean),
            "p50_seconds": round(self.p50, 3),
            "p90_seconds": round(self.p90, 3),
            "mean_seconds": round(self.mean, 3),
            "source": self.source,
            "sla_target": _iso(self.sla_target) if self.sla_target is not None else None,
            "within_target": self.within_target,
            "visit_probability": self.visit_probability,
            "atoms": self.atoms,
        }


def _iso(seconds: float) -> str:
    # Whole seconds: a prediction is not precise to the microsecond, and short text reads better.
    return format_duration(timedelta(seconds=round(max(seconds, 0.0))))


@dataclass(frozen=True)
class _AtomModel:
    index: int
    preds: tuple[int, ...]  # sources of incoming ENABLES edges, then DEPENDS_ON targets
    sources: tuple[int, ...]  # sources of incoming ENABLES edges only
    is_start: bool
    duration: Sampler
    fixed_duration: float | None  # the same every run (an SLA target, or nothing known)
    samples: tuple[float, ...]  # sorted observed durations, empty when not used
    branch: Brancher
    targets: Mapping[str, int]  # outgoing ENABLES targets -> their indexes (back edges not)
    races: bool = False  # `then: first_done`: the targets it reaches race
    # A rework loop's last atom: the chance its back edge runs the loop again, how often it
    # may, and the loop's atoms (their durations are drawn again for each run).
    repeat: float = 0.0
    max_repeats: int = 0
    region: tuple[int, ...] = ()


@dataclass(frozen=True)
class Model:
    """A blueprint compiled for fast runs: atoms as integers in a topological order."""

    blueprint: Blueprint
    order: tuple[str, ...]  # atom ids, topological (ties in file order)
    atoms: tuple[_AtomModel, ...]  # in `order`
    duration_sources: Mapping[str, str]
    branch_sources: Mapping[str, str]

    @property
    def source(self) -> str:
        kinds = set(self.duration_sources.values())
        if kinds == {HISTORY}:
            return HISTORY
        return "mixed" if HISTORY in kinds else SLA


def topological_order(blueprint: Blueprint) -> list[str]:
    """Atom ids so that every ENABLES source and DEPENDS_ON target comes before its atom.

    Loading rejects cycles; ties go in file order, so the order is deterministic.
    """
    after: dict[str, list[str]] = {atom_id: [] for atom_id in blueprint.atoms}
    waiting = {atom_id: 0 for atom_id in blueprint.atoms}
    for edge in blueprint.edges:
        if edge.loop:  # a back edge runs its loop again: the loop's order stays as drawn
            continue
        after[edge.source].append(edge.target)
        waiting[edge.target] += 1
    for atom_id, deps in blueprint.depends_on.items():
        for dep in deps:
            after[dep].append(atom_id)
            waiting[atom_id] += 1
    position = {atom_id: atom.position for atom_id, atom in blueprint.atoms.items()}
    ready = [(position[a], a) for a, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, atom_id = heapq.heappop(ready)
        order.append(atom_id)
        for nxt in after[atom_id]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (position[nxt], nxt))
    if len(order) != len(blueprint.atoms):
        raise ValueError("the workflow has a cycle")  # loading rejects these; fail loudly
    return order


def build_model(blueprint: Blueprint, history: History | None = None, *, min_samples: int = MIN_SAMPLES) -> Model:
    """Compile a blueprint with its history (None: SLA targets and the prior only)."""
    history = history or History()
    order = topological_order(blueprint)
    index = {atom_id: i for i, atom_id in enumerate(order)}
    atoms = []
    duration_sources: dict[str, str] = {}
    branch_sources: dict[str, str] = {}
    for atom_id in order:
        atom = blueprint.atoms[atom_id]
        samples = tuple(sorted(float(s) for s in history.durations.get(atom_id, ()) if s >= 0))
        if len(samples) >= min_samples:
            duration, fixed, duration_sources[atom_id] = _draw_from(samples), None, HISTORY
        else:
            target = atom.sla_target.total_seconds() if atom.sla_target else 0.0
            duration, fixed, duration_sources[atom_id] = _constant(target), target, (SLA if atom.sla_target else NONE)
            samples = ()
        outgoing = tuple(edge for edge in blueprint.outgoing[atom_id] if not edge.loop)
        targets = {edge.target: index[edge.target] for edge in outgoing}
        observed = _observed_branches(history.branches.get(atom_id, {}), targets)
        if not outgoing:
            branch, branch_sources[atom_id] = _fixed_targets(()), NONE
        elif sum(observed.values()) >= min_samples and any(edge.conditional or edge.default for edge in outgoing):
            branch, branch_sources[atom_id] = _draw_branch(observed), HISTORY
        else:
            branch = _prior_branch(outgoing, targets, exclusive=atom.choose == CHOOSE_FIRST)
            branch_sources[atom_id] = PRIOR if any(edge.conditional for edge in outgoing) else NONE
        incoming = tuple(index[edge.source] for edge in blueprint.incoming[atom_id])
        deps = tuple(index[dep] for dep in blueprint.depends_on[atom_id])
        back = next((edge for edge in blueprint.outgoing[atom_id] if edge.loop), None)
        loop = {}
        if back is not None:
            repeated, went_on = history.repeats.get(atom_id, (0, 0))
            observed_runs = repeated + went_on
            loop = {"repeat": repeated / observed_runs if observed_runs >= min_samples else PRIOR_REPEAT_PROBABILITY,
                    "max_repeats": back.max_iterations - 1,
                    "region": tuple(sorted(index[a] for a in blueprint.regions[(atom_id, back.target)]))}
        atoms.append(_AtomModel(
            index=index[atom_id], preds=incoming + deps, sources=incoming, is_start=not incoming,
            duration=duration, fixed_duration=fixed, samples=samples, branch=branch, targets=targets,
            races=atom.then == FIRST_DONE, **loop,
        ))
    return Model(blueprint, tuple(order), tuple(atoms), duration_sources, branch_sources)


def _constant(seconds: float) -> Sampler:
    return lambda rnd: seconds


def _draw_from(samples: tuple[float, ...]) -> Sampler:
    # The empirical distribution itself (a bootstrap draw): no shape is assumed.
    count = len(samples)
    return lambda rnd: samples[int(rnd() * count)]


def _fixed_targets(targets: Sequence[int]) -> Brancher:
    chosen = tuple(targets)
    return lambda rnd: chosen


def _observed_branches(counts: Mapping[frozenset[str], int], targets: Mapping[str, int]) -> dict[tuple[int, ...], int]:
    """Observed fired sets restricted to today's edges (a newer version may have others)."""
    merged: dict[tuple[int, ...], int] = {}
    for fired, count in counts.items():
        key = tuple(sorted(targets[t] for t in fired if t in targets))
        merged[key] = merged.get(key, 0) + int(count)
    return merged


def _draw_branch(observed: Mapping[tuple[int, ...], int]) -> Brancher:
    outcomes = list(observed)
    cumulative, total = [], 0
    for outcome in outcomes:
        total += observed[outcome]
        cumulative.append(total)
    return lambda rnd: outcomes[bisect.bisect_right(cumulative, rnd() * total)]


def _prior_branch(outgoing, targets: Mapping[str, int], *, exclusive: bool = False) -> Brancher:
    always = tuple(targets[edge.target] for edge in outgoing if not edge.conditional and not edge.default)
    conditional = tuple(targets[edge.target] for edge in outgoing if edge.conditional)
    default = tuple(targets[edge.target] for edge in outgoing if edge.default)
    if not conditional:
        return _fixed_targets(always + default)

    def draw(rnd: Callable[[], float]) -> Sequence[int]:
        fired = [t for t in conditional if rnd() < PRIOR_FIRE_PROBABILITY]
        if exclusive:
            fired = fired[:1]
        return always + tuple(fired) if fired else always + default

    return draw


def monte_carlo(
    model: Model, runs: int = 10_000, *, seed: int = 0, state: ProcessState | None = None, elapsed: float = 0.0
) -> Prediction:
    """Run the workflow `runs` times and describe how long the runs took.

    With `state`, each run starts where that process is now, `elapsed` seconds after it
    started: the figures are then whole durations (elapsed plus the time still to go).
    The seed makes a prediction repeatable, so a flag computed from it does not flicker.
    """
    rnd = random.Random(seed).random
    modes, known, residual = _starting_point(model, state)
    visits = [0] * len(model.atoms)
    totals = sorted(elapsed + _run_once(model, rnd, modes, known, residual, visits) for _ in range(max(runs, 1)))
    target = model.blueprint.sla_target.total_seconds() if model.blueprint.sla_target else None
    count = len(totals)
    return Prediction(
        runs=count,
        p50=percentile(totals, 0.5),
        p90=percentile(totals, 0.9),
        mean=sum(totals) / count,
        source=model.source,
        sla_target=target,
        within_target=(round(bisect.bisect_right(totals, target) / count, 4) if target is not None else None),
        visit_probability={atom_id: round(visits[i] / count, 4) for i, atom_id in enumerate(model.order)},
        atoms={
            atom_id: {"duration_source": model.duration_sources[atom_id],
                      "branch_source": model.branch_sources[atom_id], "samples": len(model.atoms[i].samples)}
            for i, atom_id in enumerate(model.order)
        },
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank on sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered))))]


def _starting_point(model: Model, state: ProcessState | None):
    """Per atom: its mode, the targets it is known to have fired, and for an active atom
    how long it has been active."""
    count = len(model.atoms)
    modes = [_OPEN] * count
    known: list[tuple[int, ...]] = [()] * count
    residual = [0.0] * count
    if state is None:
        return modes, known, residual
    for i, atom_id in enumerate(model.order):
        value = state.states.get(atom_id, core.WAITING)
        if value == core.COMPLETED:
            modes[i] = _COMPLETED
            targets = model.atoms[i].targets
            known[i] = tuple(targets[t] for t in state.fired.get(atom_id, ()) if t in targets)
        elif value == core.SKIPPED:
            modes[i] = _SKIPPED
        elif value == core.ACTIVE:
            modes[i] = _ACTIVE
            residual[i] = float(state.active_for.get(atom_id, 0.0))
    return modes, known, residual


def _run_once(model: Model, rnd, modes, known, residual, visits) -> float:
    """One run; returns when the last atom is decided (0 = the start, or now)."""
    decided = [0.0] * len(model.atoms)
    reached = [False] * len(model.atoms)
    drawn: dict[int, float] = {}  # racers: the duration their race drew
    lost: dict[int, float] = {}  # racer that lost -> when the winner completed
    for atom in model.atoms:
        i = atom.index
        mode = modes[i]
        if mode == _COMPLETED or mode == _SKIPPED:
            for k in known[i]:  # decided before now: it takes no more time
                reached[k] = True
            continue
        if mode == _ACTIVE:
            decided[i] = _remaining(atom, residual[i], rnd)
        elif i in lost:
            decided[i] = lost[i]  # skipped when the winner completed: not visited
            continue
        elif atom.is_start or reached[i]:
            start = 0.0
            for p in atom.preds:
                if decided[p] > start:
                    start = decided[p]
            decided[i] = start + (drawn[i] if i in drawn else atom.duration(rnd))
        else:
            # Skipped as soon as its incoming edges are decided: it waits for no dependency.
            start = 0.0
            for p in atom.sources:
                if decided[p] > start:
                    start = decided[p]
            decided[i] = start
            continue
        visits[i] += 1
        if atom.max_repeats:
            # A rework loop runs again with the chance its back edge fires, its atoms taking
            # their time again (one after the other), up to its limit: a run that would pass
            # the limit stops repeating there, as the live process stops at its incident.
            for _ in range(atom.max_repeats):
                if rnd() >= atom.repeat:
                    break
                decided[i] += sum(model.atoms[k].duration(rnd) for k in atom.region)
        fired = atom.branch(rnd)
        for k in fired:
            reached[k] = True
        if atom.races and len(fired) > 1:
            _draw_race(model, fired, decided[i], drawn, lost, rnd)
    return max(decided, default=0.0)


def _draw_race(model: Model, racers: Sequence[int], start: float, drawn: dict[int, float],
               lost: dict[int, float], rnd) -> None:
    """Each racer's duration, drawn as the race starts (`start`: its source decided); the
    fastest wins (the first in order on a tie) and the others are skipped when it is done.
    Racers come after their source in the order, so none has run yet."""
    for k in racers:
        drawn[k] = model.atoms[k].duration(rnd)
    winner = min(racers, key=lambda k: (drawn[k], k))
    for k in racers:
        if k != winner:
            lost[k] = start + drawn[winner]


def _remaining(atom: _AtomModel, elapsed: float, rnd) -> float:
    """Time still to go for an atom active for `elapsed` seconds: a draw from the observed
    durations longer than that, less what has passed (0 once it outlasted them all)."""
    if atom.fixed_duration is not None:
        return max(atom.fixed_duration - elapsed, 0.0)
    longer = bisect.bisect_right(atom.samples, elapsed)
    if longer >= len(atom.samples):
        return 0.0
    return atom.samples[longer + int(rnd() * (len(atom.samples) - longer))] - elapsed


def path_duration(
    blueprint: Blueprint, states: Mapping[str, str], durations: Mapping[str, timedelta] | None = None
) -> timedelta:
    """How long one decided path takes: completed atoms take their duration (`durations`,
    else their SLA target, else nothing); the same timing rules as `monte_carlo`."""
    durations = durations or {}
    order = topological_order(blueprint)
    decided: dict[str, timedelta] = {}
    for atom_id in order:
        if states.get(atom_id) == core.COMPLETED:
            before = [edge.source for edge in blueprint.incoming[atom_id]] + list(blueprint.depends_on[atom_id])
            took = durations.get(atom_id, blueprint.atoms[atom_id].sla_target or timedelta())
            decided[atom_id] = max((decided[a] for a in before), default=timedelta()) + took
        else:
            decided[atom_id] = max((decided[e.source] for e in blueprint.incoming[atom_id]), default=timedelta())
    return max(decided.values(), default=timedelta())
