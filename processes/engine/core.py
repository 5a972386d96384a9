"""The engine core: pure functions from (blueprint, runtime, event) to (runtime, effects).

No Django, no I/O. The live engine (processes.services) and the simulator call these same
functions, so a simulation cannot disagree with a real run. The semantics are those of
docs "journey-format.md", section "Execution semantics", numbered the same way below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from . import rules
from .blueprint import CHOOSE_FIRST, Blueprint
from .forms import clean_result, validate_context, validate_result

WAITING = "waiting"
ACTIVE = "active"
COMPLETED = "completed"
SKIPPED = "skipped"
# An active atom of an aborted process: final, never decided (its edges never fire). Only
# `abort` sets it; no event of a running process meets it.
CANCELLED = "cancelled"
DECIDED = frozenset({COMPLETED, SKIPPED})
LOOP_LIMIT = "loop_limit"  # the incident of a back edge that would run its region too often
STATES = (WAITING, ACTIVE, COMPLETED, SKIPPED, CANCELLED)


class EngineError(Exception):
    """An event the process cannot accept in its current state."""


class AtomNotActive(EngineError):
    pass


class InvalidContext(EngineError):
    """A start context outside the blueprint's bounds."""

    def __init__(self, problems: dict[str, str]):
        super().__init__(f"invalid context: {problems}")
        self.problems = problems


class InvalidResult(EngineError):
    def __init__(self, atom_id: str, problems: dict[str, str]):
        super().__init__(f"{atom_id}: invalid result: {problems}")
        self.atom_id = atom_id
        self.problems = problems


def loop_key(source: str, target: str) -> str:
    """A back edge's key in `Runtime.loops` (and the process row's JSON): `X>Y`."""
    return f"{source}>{target}"


def run_of(loops: Mapping[str, Mapping[str, int]], key: str) -> int:
    """The run a loop's region is in: 1 until it first runs again."""
    return loops.get(key, {}).get("iteration", 1)


@dataclass(frozen=True)
class Runtime:
    """A process's atom states; per decided atom, the targets of its fired edges; and per
    loop that has run again, `{iteration, extra}`: the run its region is in (1 when absent)
    and the iterations an administrator allowed beyond `max_iterations`."""

    states: Mapping[str, str]
    fired: Mapping[str, frozenset[str]] = field(default_factory=dict)
    loops: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @classmethod
    def initial(cls, blueprint: Blueprint) -> "Runtime":
        return cls(states={atom_id: WAITING for atom_id in blueprint.atoms}, fired={})

    @classmethod
    def stored(cls, states: Mapping[str, str], fired: Mapping[str, list[str]],
               loops: Mapping[str, Mapping[str, int]] | None = None) -> "Runtime":
        """As a process row keeps it (`atom_states`, `fired_edges`, `loops`: JSON)."""
        return cls(states=states, fired={atom_id: frozenset(targets) for atom_id, targets in fired.items()},
                   loops=loops or {})

    def iteration(self, key: str) -> int:
        return run_of(self.loops, key)

    def edge_fired(self, source: str, target: str) -> bool | None:
        """True or False once the source is decided (False for ever once it is cancelled),
        None while it is not."""
        state = self.states.get(source)
        if state == CANCELLED:
            return False
        if state not in DECIDED:
            return None
        return target in self.fired.get(source, frozenset())


@dataclass
class Step:
    """What one event did: the new runtime and context, and the effects to carry out."""

    runtime: Runtime
    context: dict[str, Any]
    changed: list[str] = field(default_factory=list)  # atoms whose state changed, in order
    activated: list[str] = field(default_factory=list)  # in file order
    skipped: list[str] = field(default_factory=list)
    # Active atoms this event skipped (rivals of a race's winner, a withdrawn step): their
    # open work is withdrawn. Also in `skipped`.
    withdrawn: list[str] = field(default_factory=list)
    completed: bool = False
    fired: frozenset[str] = frozenset()  # the targets the completed atom's edges fired
    repeated: list[dict[str, Any]] = field(default_factory=list)  # `loop.repeated` payloads
    # `{code: "loop_limit", atom, to, iteration}`: the completion was refused, nothing changed.
    incident: dict[str, Any] | None = None


class _Walk:
    """Mutable scratch state for one event; becomes a Step at the end."""

    def __init__(self, blueprint: Blueprint, runtime: Runtime, context: Mapping[str, Any]):
        self.bp = blueprint
        self.states = dict(runtime.states)
        self.fired = dict(runtime.fired)
        self.loops = {key: dict(value) for key, value in runtime.loops.items()}
        self.repeated: list[dict[str, Any]] = []
        self.context = dict(context)
        self.changed: list[str] = []
        self.activated: list[str] = []
        self.skipped: list[str] = []
        self.withdrawn: list[str] = []

    def set_state(self, atom_id: str, state: str) -> None:
        self.states[atom_id] = state
        if atom_id not in self.changed:
            self.changed.append(atom_id)

    def deps_satisfied(self, atom_id: str) -> bool:
        # 4. A DEPENDS_ON target that was skipped counts as satisfied.
        return all(self.states[dep] in DECIDED for dep in self.bp.depends_on[atom_id])

    def decide_outgoing(self, atom_id: str) -> None:
        # 2. Conditional edges in file order; unconditional ones always; the default edge
        # only when no conditional edge fired. With `choose: first`, only the first
        # conditional edge that holds fires (an exclusive choice).
        fired = set()
        conditional_fired = False
        exclusive = self.bp.atoms[atom_id].choose == CHOOSE_FIRST
        for edge in self.bp.outgoing[atom_id]:
            if edge.conditional:
                if not (exclusive and conditional_fired) and rules.evaluate(edge.condition, self.context):
                    fired.add(edge.target)
                    conditional_fired = True
            elif not edge.default:
                fired.add(edge.target)
        if not conditional_fired:
            fired.update(edge.target for edge in self.bp.outgoing[atom_id] if edge.default)
        self.fired[atom_id] = frozenset(fired)

    def settle(self, queue: list[str]) -> None:
        """Re-check readiness of the queued atoms until nothing more changes."""
        while queue:
            atom_id = queue.pop(0)
            if self.states[atom_id] != WAITING:
                continue
            incoming = self.bp.incoming[atom_id]
            if any(self.states[edge.source] not in DECIDED for edge in incoming):
                continue
            if incoming and not any(atom_id in self.fired.get(edge.source, ()) for edge in incoming):
                # 4 + 3. Every incoming edge is dead: skip, and its edges die with it.
                self.set_state(atom_id, SKIPPED)
                self.skipped.append(atom_id)
                self.fired[atom_id] = frozenset()
                queue.extend(self._downstream(atom_id))
            elif self.deps_satisfied(atom_id):
                self.set_state(atom_id, ACTIVE)
                self.activated.append(atom_id)

    def repeat(self, source: str, target: str) -> None:
        """Rework loops, 2: the region of the back edge (source, target) runs again. Its atoms
        wait again with their edges undecided, the loops nested in it start counting afresh,
        and its first atom is active."""
        key = loop_key(source, target)
        region = self.bp.regions[(source, target)]
        for atom_id in sorted(region, key=lambda a: self.bp.atoms[a].position):
            self.set_state(atom_id, WAITING)
            self.fired.pop(atom_id, None)
        for (inner_source, inner_target), members in self.bp.regions.items():
            if members < region:
                self.loops.pop(loop_key(inner_source, inner_target), None)
        iteration = run_of(self.loops, key) + 1
        self.loops[key] = {**self.loops.get(key, {}), "iteration": iteration}
        self.repeated.append({"from": source, "to": target, "iteration": iteration})
        self.set_state(target, ACTIVE)
        self.activated.append(target)

    def skip(self, atom_id: str) -> None:
        """An atom not yet decided is skipped: its edges are dead, and what they lead to is
        decided again. An active one is also withdrawn (its open work goes)."""
        if atom_id in self.activated:
            self.activated.remove(atom_id)  # activated by this same event: it has no work yet
        elif self.states[atom_id] == ACTIVE:
            self.withdrawn.append(atom_id)
        self.set_state(atom_id, SKIPPED)
        self.skipped.append(atom_id)
        self.fired[atom_id] = frozenset()
        self.settle(self._downstream(atom_id))

    def end_race(self, winner: str) -> None:
        """`then: first_done`: the first racer to complete wins; the rivals still running,
        or waiting on a dependency, are skipped. A rival whose edge did not fire was skipped
        already, when the race's source was decided."""
        for rival in self.bp.rivals[winner]:
            if self.states[rival] in (ACTIVE, WAITING):
                self.skip(rival)

    def _downstream(self, atom_id: str) -> list[str]:
        return [edge.target for edge in self.bp.outgoing[atom_id]] + list(self.bp.dependents[atom_id])

    def finish(self) -> Step:
        self.activated.sort(key=lambda atom_id: self.bp.atoms[atom_id].position)
        return Step(
            runtime=Runtime(states=self.states, fired=self.fired, loops=self.loops),
            context=self.context,
            changed=self.changed,
            activated=self.activated,
            skipped=self.skipped,
            withdrawn=self.withdrawn,
            completed=all(state in DECIDED for state in self.states.values()),
            repeated=self.repeated,
        )


def start(blueprint: Blueprint, context: Mapping[str, Any] | None = None) -> Step:
    """1. Start: start atoms whose dependencies are met become active; the rest wait."""
    problems = validate_context(context or {}, blueprint.bounds)
    if problems:
        raise InvalidContext(problems)
    walk = _Walk(blueprint, Runtime.initial(blueprint), context or {})
    walk.settle(list(blueprint.start_atoms))
    return walk.finish()


def complete(
    blueprint: Blueprint,
    runtime: Runtime,
    context: Mapping[str, Any],
    atom_id: str,
    result: Mapping[str, Any] | None = None,
) -> Step:
    """2. Completion of an active atom with its result."""
    if runtime.states.get(atom_id) != ACTIVE:
        raise AtomNotActive(f"{atom_id} is {runtime.states.get(atom_id, 'not in this workflow')}, not active")
    atom = blueprint.atoms[atom_id]
    result = result if result is not None else {}
    problems = validate_result(atom, result, blueprint.bounds)
    if problems:
        raise InvalidResult(atom_id, problems)
    walk = _Walk(blueprint, runtime, context)
    walk.context.update(clean_result(atom, result))
    walk.set_state(atom_id, COMPLETED)
    walk.decide_outgoing(atom_id)
    fired = walk.fired[atom_id]
    back = next((edge for edge in blueprint.outgoing[atom_id] if edge.loop and edge.target in fired), None)
    if back is not None:
        # Rework loops: the back edge alone is decided; 3. past its limit, nothing changes.
        key = loop_key(atom_id, back.target)
        iteration = runtime.iteration(key)
        if iteration >= back.max_iterations + runtime.loops.get(key, {}).get("extra", 0):
            incident = {"code": LOOP_LIMIT, "atom": atom_id, "to": back.target, "iteration": iteration}
            return Step(runtime=runtime, context=dict(context), incident=incident)
        walk.repeat(atom_id, back.target)
        return _finished(walk, frozenset({back.target}))
    if atom_id in blueprint.rivals:
        walk.end_race(atom_id)  # first: a rival waiting on the winner must not activate
    walk.settle(walk._downstream(atom_id))
    return _finished(walk, fired)


def _finished(walk: _Walk, fired: frozenset[str]) -> Step:
    step = walk.finish()
    step.fired = fired
    return step


def describe_incident(incident: Mapping[str, Any]) -> str:
    runs = incident["iteration"]
    return (f"the loop {incident['atom']} -> {incident['to']} reached its limit "
            f"({runs} {'run' if runs == 1 else 'runs'})")


def allow_one_more(blueprint: Blueprint, runtime: Runtime, atom_id: str) -> Runtime:
    """An administrator's retry of a `loop_limit` incident at `atom_id`: each of its back
    edges whose region ran its allowed iterations may run once more."""
    loops = {key: dict(value) for key, value in runtime.loops.items()}
    for edge in blueprint.outgoing[atom_id]:
        key = loop_key(atom_id, edge.target)
        extra = loops.get(key, {}).get("extra", 0)
        if edge.loop and runtime.iteration(key) >= edge.max_iterations + extra:
            loops[key] = {**loops.get(key, {}), "extra": extra + 1}
    return Runtime(states=runtime.states, fired=runtime.fired, loops=loops)


def iteration(blueprint: Blueprint, runtime: Runtime, atom_id: str) -> int:
    """The run of the innermost loop region `atom_id` is in (1 outside loops): its task's
    `iteration`."""
    region = blueprint.region_of.get(atom_id)
    return runtime.iteration(loop_key(*region)) if region else 1


def withdraw(blueprint: Blueprint, runtime: Runtime, context: Mapping[str, Any], atom_id: str) -> Step:
    """An active atom's step is withdrawn (a task cancelled by a manager): the atom is
    skipped and the flow goes on as for any skip (journey-format, "Withdrawing")."""
    if runtime.states.get(atom_id) != ACTIVE:
        raise AtomNotActive(f"{atom_id} is {runtime.states.get(atom_id, 'not in this workflow')}, not active")
    walk = _Walk(blueprint, runtime, context)
    walk.skip(atom_id)
    return walk.finish()


def abort(runtime: Runtime, context: Mapping[str, Any]) -> Step:
    """Abort: every active atom becomes cancelled, and nothing else changes; an aborted
    process has no current steps (journey-format, "Withdrawing, cancelling and aborting")."""
    states = dict(runtime.states)
    cancelled = [atom_id for atom_id, state in states.items() if state == ACTIVE]
    for atom_id in cancelled:
        states[atom_id] = CANCELLED
    return Step(runtime=Runtime(states=states, fired=dict(runtime.fired), loops=runtime.loops), context=dict(context),
                changed=cancelled)


def progress(runtime: Runtime) -> float:
    """Share of atoms decided, 0..1."""
    if not runtime.states:
        return 1.0
    decided = sum(1 for state in runtime.states.values() if state in DECIDED)
    return decided / len(runtime.states)
