"""Reads for the API and the pages: processes, their history, their drawn graph."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from tasks.access import visible_processes

from . import versions
from .engine import core
from .errors import NotFound
from .models import ProcessInstance, WorkflowVersion
from .runtime import runtime_of


def processes_for(user) -> QuerySet[ProcessInstance]:
    return visible_processes(user).select_related("version", "started_by")


def process_for(user, process_id: Any) -> ProcessInstance:
    try:
        return processes_for(user).get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"process {process_id} not found") from None


def graph_of(process: ProcessInstance) -> dict[str, list[dict[str, Any]]]:
    """Every atom with its state and every edge with whether it fired (null: undecided)."""
    blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
    runtime = runtime_of(process)
    nodes = [
        {"id": atom.id, "name": atom.name, "kind": atom.kind, "role": atom.role,
         "state": runtime.states.get(atom.id, core.WAITING)}
        for atom in blueprint.atoms.values()
    ]
    edges = [
        {"from": edge.source, "to": edge.target, "type": "ENABLES", "fired": runtime.edge_fired(edge.source, edge.target),
         "default": edge.default, "conditional": edge.conditional}
        for edge in blueprint.edges
    ]
    edges += [
        {"from": atom_id, "to": target, "type": "DEPENDS_ON", "fired": None, "default": False, "conditional": False}
        for atom_id, targets in blueprint.depends_on.items() for target in targets
    ]
    return {"nodes": nodes, "edges": edges}


def journey_summaries() -> list[dict[str, Any]]:
    newest = WorkflowVersion.objects.filter(journey_id=OuterRef("journey_id")).order_by("-number").values("number")[:1]
    rows = (WorkflowVersion.objects.filter(number=Subquery(newest)).order_by("journey_id")
            .values("journey_id", "name", "number"))
    return [{"id": row["journey_id"], "name": row["name"], "latest_version": row["number"]} for row in rows]


def journey_detail(journey_id: str) -> dict[str, Any]:
    version_rows = list(WorkflowVersion.objects.filter(journey_id=journey_id).order_by("-number")
                        .values("number", "hash", "created_at"))
    if not version_rows:
        raise NotFound(f"no journey named {journey_id!r}")
    definition = versions.definition_of(
        WorkflowVersion.objects.only("pk").get(journey_id=journey_id, number=version_rows[0]["number"]).pk
    )
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
    nodes = [{"id": a.id, "name": a.name, "kind": a.kind, "role": a.role, "state": "waiting"}
             for a in blueprint.atoms.values()]
    edges = [{"from": e.source, "to": e.target, "type": "ENABLES", "fired": None, "default": e.default,
              "conditional": e.conditional} for e in blueprint.edges]
    edges += [{"from": a, "to": t, "type": "DEPENDS_ON", "fired": None, "default": False, "conditional": False}
              for a, targets in blueprint.depends_on.items() for t in targets]
    return {"nodes": nodes, "edges": edges}
