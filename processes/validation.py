"""Checks of a published workflow beyond what loading already guarantees."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group

from . import handlers, versions
from .journey import warnings as journey_warnings


def validate_workflow(workflow_id: str) -> dict[str, Any]:
    version = versions.resolve_workflow(workflow_id)
    blueprint = versions.get_blueprint(version.pk, workflow_id)
    errors: list[str] = []
    warnings = list(journey_warnings(version.definition))
    known = handlers.names()
    groups = set(Group.objects.filter(name__in=list(blueprint.roles)).values_list("name", flat=True))
    for atom in blueprint.atoms.values():
        if atom.is_system and atom.handler not in known:
            errors.append(f"{atom.id}: handler {atom.handler!r} is not registered in this installation")
        if not atom.is_system and atom.role and atom.role not in groups:
            warnings.append(f"{atom.id}: role {atom.role!r} has no members yet (its tasks will wait unassigned)")
    if not blueprint.atoms:
        errors.append(f"{workflow_id}: the workflow has no atoms")
    elif not blueprint.start_atoms:
        errors.append(f"{workflow_id}: the workflow has no start atom")
    return {"valid": not errors, "errors": errors, "warnings": warnings, "version": version.number}
