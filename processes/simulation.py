"""Simulation of a published workflow: the engine core with handlers but no database writes."""

from __future__ import annotations

from typing import Any, Mapping

from . import handlers, versions
from .engine.blueprint import Atom
from .engine.simulation import SimulationResult, simulate


def _run_handler(atom: Atom, context: Mapping[str, Any]) -> Mapping[str, Any]:
    return handlers.run(atom.handler, context, atom.params)


def simulate_workflow(
    workflow_id: str, context: Mapping[str, Any] | None = None, results: Mapping[str, Any] | None = None
) -> SimulationResult:
    version = versions.resolve_workflow(workflow_id)
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    return simulate(blueprint, context or {}, results or {}, run_handler=_run_handler)
