"""Simulation of a published workflow: the engine core with handlers but no database writes.

Handlers do run (their result is part of the path), with `_simulation: true` in the
context they get, so a handler with an outside effect can tell a dry run from a live one.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import handlers, versions
from .engine import core
from .engine.analysis import coverage
from .engine.blueprint import Atom, Blueprint
from .engine.simulation import SimulationResult, edge_rule_ids, simulate
from .errors import InvalidInput
from .models import WorkflowVersion
from .prediction import predict_workflow, typical_durations
from .selectors import atom_node, dependency_items, edge_item

MAX_COVERAGE_CASES = 100


def _run_handler(atom: Atom, context: Mapping[str, Any]) -> Mapping[str, Any]:
    return handlers.run(atom.handler, {**context, "_simulation": True}, atom.params)


def simulate_workflow(
    workflow_id: str, context: Mapping[str, Any] | None = None, results: Mapping[str, Any] | None = None
) -> SimulationResult:
    """Dry-run the latest version; `predicted_duration` uses the observed durations of
    atoms that have enough history, SLA targets elsewhere."""
    version, blueprint = _workflow(workflow_id)
    return _simulate(version, blueprint, context, results, typical_durations(version.journey_id, blueprint))


def dry_run(workflow_id: str, context: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """POST /api/simulation/test-journey: what the simulate command prints, and the version."""
    version, blueprint = _workflow(workflow_id)
    outcome = _simulate(version, blueprint, context, results, typical_durations(version.journey_id, blueprint))
    return {"journey_id": workflow_id, "version": version.number, **outcome.as_dict()}


def _workflow(workflow_id: str) -> tuple[WorkflowVersion, Blueprint]:
    version = versions.resolve_workflow(workflow_id)
    return version, versions.get_blueprint(version.pk, workflow_id)


def _simulate(version: WorkflowVersion, blueprint: Blueprint, context, results, durations=None) -> SimulationResult:
    return simulate(
        blueprint, context or {}, results or {}, run_handler=_run_handler,
        edge_rules=edge_rule_ids(versions.definition_of(version.pk)), durations=durations,
    )


def coverage_of(workflow_id: str, cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Simulate each case ({name?, context?, results?}); what they exercised together."""
    if len(cases) > MAX_COVERAGE_CASES:
        raise InvalidInput(f"at most {MAX_COVERAGE_CASES} cases", details={"cases": f"at most {MAX_COVERAGE_CASES}"})
    version, blueprint = _workflow(workflow_id)
    outcomes = [_simulate(version, blueprint, case.get("context"), case.get("results")) for case in cases]
    report = coverage(blueprint, outcomes)
    report["cases"] = [
        {"name": case.get("name") or f"case {i + 1}", "success": outcome.success,
         "visited_atoms": outcome.visited_atoms, "errors": outcome.errors}
        for i, (case, outcome) in enumerate(zip(cases, outcomes))
    ]
    return {"journey_id": workflow_id, "version": version.number, **report}


def simulation_page(
    workflow_id: str, context: Mapping[str, Any] | None = None, results: Mapping[str, Any] | None = None,
    *, runs: int | None = None,
) -> dict[str, Any]:
    """Everything the simulation page shows: the workflow's graph with the simulated path
    on it, the simulation itself, and the Monte Carlo prediction.

    Nodes carry `state` (completed: on the path, skipped, waiting: never decided), their
    place in the path (`order`, 1-based, null off the path), phase and module, and how
    often a predicted run visits them; edges carry `fired` (true, false, or null when the
    source was never decided) and the decision record of a conditional or default edge.
    """
    version, blueprint = _workflow(workflow_id)
    definition = versions.definition_of(version.pk)
    outcome = _simulate(version, blueprint, context, results, typical_durations(version.journey_id, blueprint))
    prediction = predict_workflow(workflow_id, runs=runs)
    return {
        "journey": {"id": workflow_id, "root_journey_id": version.journey_id, "name": definition["journey"]["name"],
                    "version": version.number},
        "graph": _graph(blueprint, definition, outcome, prediction["visit_probability"]),
        "simulation": outcome.as_dict(),
        "prediction": prediction,
    }


def _graph(blueprint: Blueprint, definition, outcome: SimulationResult, visits: Mapping[str, float]) -> dict[str, Any]:
    order = {atom_id: i + 1 for i, atom_id in enumerate(outcome.visited_atoms)}
    skipped = set(outcome.skipped_atoms)
    placed = _placement(definition)
    nodes = [
        {**atom_node(atom, core.COMPLETED if atom.id in order else core.SKIPPED if atom.id in skipped else core.WAITING),
         "order": order.get(atom.id), "visit_probability": visits.get(atom.id), **placed.get(atom.id, {})}
        for atom in blueprint.atoms.values()
    ]
    decided = set(order) | skipped
    fired = {(edge["from"], edge["to"]) for edge in outcome.fired_edges}
    decisions = {(d["from"], d["to"]): d for d in outcome.decisions}
    edges = [
        {**edge_item(edge, ((edge.source, edge.target) in fired) if edge.source in decided else None),
         "decision": decisions.get((edge.source, edge.target))}
        for edge in blueprint.edges
    ]
    edges += [{**item, "decision": None} for item in dependency_items(blueprint)]
    return {"nodes": nodes, "edges": edges}


def _placement(definition: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    placed = {}
    for phase in definition.get("phases", []):
        for module in phase.get("modules", []):
            for atom_id in module.get("atoms", []):
                placed[atom_id] = {"phase": phase["id"], "module": module["id"]}
    return placed


SAMPLE_VALUES = {"string": "sample", "number": 0, "integer": 0, "boolean": True, "date": "2000-01-01"}


def with_sample_results(workflow_id: str, results: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`results` completed with placeholder values for the required fields nobody gave, so
    a what-if run follows the rules on what was given instead of stopping at the first form.
    Returns the results and the atoms that got placeholders."""
    _, blueprint = _workflow(workflow_id)
    filled: dict[str, Any] = {atom_id: [dict(item) for item in result] if isinstance(result, list) else dict(result)
                              for atom_id, result in results.items()}
    touched = []
    for atom in blueprint.atoms.values():
        given = filled.setdefault(atom.id, {})
        missing = False
        for one in given if isinstance(given, list) else [given]:
            for field in atom.form:
                if field.required and field.name not in one:
                    one[field.name] = field.choices[0] if field.type == "choice" else SAMPLE_VALUES[field.type]
                    missing = True
        if missing:
            touched.append(atom.id)
    return filled, touched
