"""Reads for the API and the pages: processes, their history, their drawn graph."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from tasks.access import visible_processes

from . import start_rights, versions
from .engine import core
from .engine.blueprint import Atom, Blueprint, Edge, containers
from .errors import NotFound
from .models import ProcessInstance, WorkflowVersion


def processes_for(user) -> QuerySet[ProcessInstance]:
    return visible_processes(user).select_related("version", "started_by")


def process_for(user, process_id: Any) -> ProcessInstance:
    try:
        return processes_for(user).get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"process {process_id} not found") from None


def atom_node(atom: Atom, state: str, iteration: int = 1) -> dict[str, Any]:
    """An atom as the graphs draw it: `choose` and `then` mark an exclusive choice and a race;
    `iteration`, the run of the rework loop it is in (1 outside loops)."""
    return {"id": atom.id, "name": atom.name, "kind": atom.kind, "role": atom.role, "state": state,
            "choose": atom.choose, "then": atom.then, "iteration": iteration}


def edge_item(edge: Edge, fired: bool | None) -> dict[str, Any]:
    """An ENABLES edge as the graphs draw it; `loop`: a rework loop's back edge."""
    return {"from": edge.source, "to": edge.target, "type": "ENABLES", "fired": fired, "default": edge.default,
            "conditional": edge.conditional, "loop": edge.loop}


def dependency_items(blueprint: Blueprint) -> list[dict[str, Any]]:
    return [{"from": atom_id, "to": target, "type": "DEPENDS_ON", "fired": None, "default": False,
             "conditional": False, "loop": False}
            for atom_id, targets in blueprint.depends_on.items() for target in targets]


def graph_of(process: ProcessInstance) -> dict[str, list[dict[str, Any]]]:
    """Every atom with its state and every edge with whether it fired (null: undecided)."""
    blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
    runtime = core.Runtime.stored(process.atom_states, process.fired_edges, process.loops)
    nodes = [atom_node(atom, runtime.states.get(atom.id, core.WAITING), core.iteration(blueprint, runtime, atom.id))
             for atom in blueprint.atoms.values()]
    edges = [edge_item(edge, runtime.edge_fired(edge.source, edge.target)) for edge in blueprint.edges]
    return {"nodes": nodes, "edges": edges + dependency_items(blueprint)}


def graph_marks(graph: dict[str, list[dict[str, Any]]]) -> dict[str, bool]:
    """Which of the graph's marks the drawing holds (exclusive choice, race, back edge): the
    legend names those only."""
    return {"first": any(node["choose"] == "first" for node in graph["nodes"]),
            "race": any(node["then"] for node in graph["nodes"]),
            "loop": any(edge["loop"] for edge in graph["edges"])}


def _latest_versions() -> list[dict[str, Any]]:
    newest = WorkflowVersion.objects.filter(journey_id=OuterRef("journey_id")).order_by("-number").values("number")[:1]
    return list(WorkflowVersion.objects.filter(number=Subquery(newest)).order_by("journey_id")
                .values("pk", "journey_id", "name", "number"))


def journey_summaries(user) -> list[dict[str, Any]]:
    """Every journey's latest version, and what of it `user` may start (`may_start`: the
    journey itself; `startable`: the journey, phases and modules, in reading order)."""
    summaries = []
    for row in _latest_versions():
        startable = start_rights.startable(user, row["pk"])
        summaries.append({"id": row["journey_id"], "name": row["name"], "latest_version": row["number"],
                          "may_start": row["journey_id"] in startable, "startable": startable})
    return summaries


def all_workflows() -> list[dict[str, Any]]:
    """Every journey, phase and module of the latest versions, in reading order (what the
    simulation page offers: simulating starts nothing)."""
    return _workflow_rows(lambda version_id, found: start_rights.reading_order(versions.definition_of(version_id)))


def startable_workflows(user) -> list[dict[str, Any]]:
    """The journeys, phases and modules of the latest versions that `user` may start, in
    reading order (what the start page offers)."""
    return _workflow_rows(lambda version_id, found: start_rights.startable(user, version_id))


def _workflow_rows(chosen) -> list[dict[str, Any]]:
    rows = []
    for version in _latest_versions():
        found = containers(versions.definition_of(version["pk"]))
        for container_id in chosen(version["pk"], found):
            kind, atoms = found[container_id]
            rows.append({"id": container_id, "kind": kind, "journey": version["name"], "atoms": len(atoms)})
    return rows


def journey_detail(journey_id: str, user) -> dict[str, Any]:
    """A journey's latest definition, its start rule, and what of it `user` may start."""
    version_rows = list(WorkflowVersion.objects.filter(journey_id=journey_id).order_by("-number")
                        .values("pk", "number", "hash", "created_at"))
    if not version_rows:
        raise NotFound(f"no journey named {journey_id!r}")
    latest_id = version_rows[0].pop("pk")
    for row in version_rows[1:]:
        del row["pk"]
    definition = versions.definition_of(latest_id)
    startable = start_rights.startable(user, latest_id)
    return {
        "id": journey_id,
        "name": definition["journey"]["name"],
        "description": definition["journey"].get("description", ""),
        "latest_version": version_rows[0]["number"],
        "versions": version_rows,
        "roles": definition["roles"],
        "phases": definition["phases"],
        "atoms": definition["atoms"],
        "edges": definition["edges"],
        "rules": definition["rules"],
        "start": start_rights.declared_rule(latest_id),
        "may_start": journey_id in startable,
        "startable": startable,
    }


MASK = "••••••"


def masked_context(process: ProcessInstance) -> list[tuple[str, Any]]:
    """The context as pages show it: sensitive fields (PII) masked."""
    return _masked(process, process.context)


def masked_result(task) -> list[tuple[str, Any]]:
    """A task's result as pages show it: sensitive fields (PII) masked."""
    return _masked(task.process, task.result) if isinstance(task.result, dict) else []


def _masked(process: ProcessInstance, data: dict[str, Any]) -> list[tuple[str, Any]]:
    # The whole journey's sensitive keys: a process of a phase may hold keys of other phases.
    hidden = versions.get_blueprint(process.version_id, process.journey_id).sensitive_fields
    return [(key, MASK if key in hidden else value) for key, value in sorted(data.items())]


def timeline(process: ProcessInstance) -> list[dict[str, Any]]:
    """The history as the process page draws it, newest last."""
    return [
        {"type": event.type, "timestamp": event.timestamp, "user": event.username or "engine",
         "atom_id": event.atom_id, "payload": event.payload}
        for event in process.events.order_by("id")
    ]


def version_graph(version_id: int, container_id: str) -> dict[str, list[dict[str, Any]]]:
    """A workflow's graph with nothing decided yet: the journey pages draw it."""
    blueprint = versions.get_blueprint(version_id, container_id)
    nodes = [atom_node(atom, core.WAITING) for atom in blueprint.atoms.values()]
    edges = [edge_item(edge, None) for edge in blueprint.edges]
    return {"nodes": nodes, "edges": edges + dependency_items(blueprint)}
