"""Run a workflow with the engine core alone: no database, no tasks, no side effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping

from . import core
from .blueprint import Atom, Blueprint
from .durations import format_duration

HandlerRunner = Callable[[Atom, Mapping[str, Any]], Mapping[str, Any]]


@dataclass
class SimulationResult:
    success: bool
    visited_atoms: list[str] = field(default_factory=list)
    skipped_atoms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    predicted_duration: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "visited_atoms": self.visited_atoms,
            "skipped_atoms": self.skipped_atoms,
            "errors": self.errors,
            "predicted_duration": self.predicted_duration,
        }


def simulate(
    blueprint: Blueprint,
    context: Mapping[str, Any] | None = None,
    results: Mapping[str, Mapping[str, Any]] | None = None,
    run_handler: HandlerRunner | None = None,
) -> SimulationResult:
    """While any atom is active, complete the one first in file order, then re-evaluate.

    An atom's result is what `results` maps its id to, laid over its handler's result for
    a system atom, and `{}` otherwise.
    """
    results = results or {}
    step = core.start(blueprint, context or {})
    runtime, ctx = step.runtime, step.context
    visited: list[str] = []
    skipped: list[str] = list(step.skipped)
    errors: list[str] = []
    finish_at: dict[str, timedelta] = {}

    while True:
        active = [atom_id for atom_id, state in runtime.states.items() if state == core.ACTIVE]
        if not active:
            break
        atom = blueprint.atoms[min(active, key=lambda atom_id: blueprint.atoms[atom_id].position)]
        result: dict[str, Any] = {}
        if atom.is_system and run_handler is not None:
            try:
                result.update(run_handler(atom, ctx))
            except Exception as exc:  # a handler is user code: report, don't crash
                errors.append(f"{atom.id}: handler {atom.handler!r} failed: {exc}")
                break
        result.update(results.get(atom.id, {}))
        try:
            step = core.complete(blueprint, runtime, ctx, atom.id, result)
        except core.InvalidResult as exc:
            errors.extend(f"{atom.id}.{name}: {message}" for name, message in exc.problems.items())
            break
        finish_at[atom.id] = _started_at(blueprint, runtime, atom.id, finish_at) + (atom.sla_target or timedelta())
        runtime, ctx = step.runtime, step.context
        visited.append(atom.id)
        skipped.extend(step.skipped)

    if not errors and not all(state in core.DECIDED for state in runtime.states.values()):
        stuck = [atom_id for atom_id, state in runtime.states.items() if state not in core.DECIDED]
        errors.append(f"process cannot finish: atoms never decided: {', '.join(stuck)}")
    longest = max(finish_at.values(), default=timedelta())
    return SimulationResult(
        success=not errors,
        visited_atoms=visited,
        skipped_atoms=skipped,
        errors=errors,
        predicted_duration=format_duration(longest),
        context=ctx,
    )


def _started_at(
    blueprint: Blueprint, runtime: core.Runtime, atom_id: str, finish_at: Mapping[str, timedelta]
) -> timedelta:
    """An atom starts when the last of its fired predecessors and dependencies finished:
    the critical path through SLA targets, which is what `predicted_duration` reports."""
    before = [edge.source for edge in blueprint.incoming[atom_id] if runtime.edge_fired(edge.source, atom_id)]
    before += list(blueprint.depends_on[atom_id])
    return max((finish_at.get(atom, timedelta()) for atom in before), default=timedelta())
