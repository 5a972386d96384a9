"""Checks of a journey: errors that stop it from running, warnings a reviewer should read.

Errors are what loading rejects (cycles, dangling references, unknown handlers, human
atoms without roles, malformed rules) plus a workflow with nothing to start. A published
version passed them when it was loaded, but it is checked again: the handlers registered
in this installation may have changed since. Warnings come from processes.engine.analysis
(reasoning over the rules) and from the people who are, or are not, in the roles.
"""

from __future__ import annotations

from typing import Any, Collection

from django.contrib.auth.models import Group

from . import handlers, versions
from .engine.analysis import rule_warnings, workflow_errors
from .engine.blueprint import Blueprint, StartRule, UnknownContainer, compile_blueprint
from .journey import JourneyError, normalize
from .journey import warnings as observations


def validate_definition(
    data: Any, container_id: str | None = None, known_handlers: Collection[str] | None = None
) -> dict[str, Any]:
    """{valid, errors, warnings} of a journey file's data (warnings only when it has no errors).
    A system atom must name one of `known_handlers`, by default the registered handlers."""
    try:
        definition = normalize(data, known_handlers=handlers.names() if known_handlers is None else known_handlers)
    except JourneyError as exc:
        return _report(list(exc.problems), [])
    container_id = container_id or definition["journey"]["id"]
    try:
        blueprint = compile_blueprint(definition, container_id)
    except UnknownContainer:
        return _report([f"{container_id}: no journey, phase or module of this name"], [])
    errors = workflow_errors(blueprint)
    if errors:
        return _report(errors, [])
    return _report([], list(observations(definition)) + rule_warnings(blueprint, definition))


def validate_workflow(workflow_id: str) -> dict[str, Any]:
    """The report of the latest published version of a journey, phase or module."""
    version = versions.resolve_workflow(workflow_id)
    definition = versions.definition_of(version.pk)
    report = validate_definition(definition, workflow_id)
    if report["valid"]:
        report["warnings"] += roles_without_active_members(versions.get_blueprint(version.pk, workflow_id), definition)
        report["warnings"] += start_warnings(versions.start_rule_of(version.pk), workflow_id)
    return {**report, "version": version.number}


def start_warnings(rule: StartRule, workflow_id: str) -> list[str]:
    """Who can start this workflow, when the answer is: only administrators."""
    if not rule.allows_part(workflow_id):
        return [f"journey.start.parts: {workflow_id!r} is not listed, so only administrators can start it on its own"]
    if rule.everyone or not rule.roles:
        return []  # an empty `by` is an observation of the file itself
    if Group.objects.filter(name__in=list(rule.roles), user__is_active=True).exists():
        return []
    return [f"journey.start.by: no role that starts {rule.journey_id!r} ({', '.join(sorted(rule.roles))}) "
            f"has an active member, so only administrators can start it"]


def roles_without_active_members(blueprint: Blueprint, definition: dict[str, Any]) -> list[str]:
    used: dict[str, list[str]] = {}
    for atom in blueprint.atoms.values():
        if not atom.is_system and atom.role:
            used.setdefault(atom.role, []).append(atom.id)
    staffed = set(
        Group.objects.filter(name__in=list(used), user__is_active=True).values_list("name", flat=True).distinct()
    )
    places = {role["id"]: f"roles[{i}]" for i, role in enumerate(definition.get("roles", []))}
    return [
        f"{places.get(role, 'roles')}: role {role!r} has no active member, so the tasks of "
        f"{_some(atom_ids)} will wait unassigned"
        for role, atom_ids in used.items() if role not in staffed
    ]


def _some(atom_ids: list[str], shown: int = 5) -> str:
    more = f" and {len(atom_ids) - shown} more" if len(atom_ids) > shown else ""
    return ", ".join(atom_ids[:shown]) + more


def _report(errors: list[str], warnings: list[str]) -> dict[str, Any]:
    return {"valid": not errors, "errors": errors, "warnings": warnings}
