"""Who may start what: a journey's start rule (`journey.start` of its file), for people.

Superusers, and users holding `processes.start_any_journey` (granted in the admin), may
start any journey and any phase or module of one. Everybody else must be an active member
of one of the roles `start.by` names (by default the roles that perform the journey's
atoms), or the journey must say `by: everyone`; and a phase or module starts on its own
only when `start.parts` lists it. The services call `require_start` on every start made
for a person, so the API, the start page, the bulk start and the command cannot differ.
"""

from __future__ import annotations

from typing import Any

from tasks.access import roles_of

from . import versions
from .engine.blueprint import StartRule, containers
from .errors import Forbidden

START_ANY_JOURNEY = "processes.start_any_journey"


class StartNotAllowed(Forbidden):
    code = "start_not_allowed"


class PartNotStartable(Forbidden):
    code = "part_not_startable"


def starts_anything(user: Any) -> bool:
    """Superusers and holders of `processes.start_any_journey`: every journey, every part."""
    if not _active(user):
        return False
    return user.is_superuser or user.has_perm(START_ANY_JOURNEY)


def _active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _in_rule(user: Any, rule: StartRule) -> bool:
    if not _active(user):
        return False
    return rule.everyone or not rule.roles.isdisjoint(roles_of(user))


def refusal(user: Any, version_id: int, workflow_id: str) -> Forbidden | None:
    """Why `user` may not start `workflow_id` (the journey of the version, or one of its
    phases or modules), or None when it may. The cheap answers come first: a superuser
    costs no query, a role member one (none when the request loaded its roles)."""
    if _active(user) and user.is_superuser:
        return None
    rule = versions.start_rule_of(version_id)
    details = {"journey_id": rule.journey_id, "workflow_id": workflow_id}
    if not rule.allows_part(workflow_id):
        if starts_anything(user):
            return None
        kind = containers(versions.definition_of(version_id))[workflow_id][0]
        return PartNotStartable(
            f"{workflow_id} is a {kind} of {rule.journey_id} that is not started on its own "
            f"(the journey's start.parts does not list it)", details=details)
    if _in_rule(user, rule) or starts_anything(user):
        return None
    return StartNotAllowed(f"you may not start {workflow_id}: {_who(rule)} may", details=details)


def require_start(user: Any, version_id: int, workflow_id: str) -> None:
    """Raise the 403 of `refusal` unless `user` may start `workflow_id` of the version."""
    problem = refusal(user, version_id, workflow_id)
    if problem is not None:
        raise problem


def startable(user: Any, version_id: int) -> list[str]:
    """The journey, phases and modules of the version that `user` may start, in reading order."""
    ids = reading_order(versions.definition_of(version_id))
    if starts_anything(user):
        return ids
    rule = versions.start_rule_of(version_id)
    if not _in_rule(user, rule):
        return []
    return [container_id for container_id in ids if rule.allows_part(container_id)]


def reading_order(definition: dict[str, Any]) -> list[str]:
    """The journey, then each phase followed by its modules, as the file reads."""
    ids = [definition["journey"]["id"]]
    for phase in definition.get("phases", []):
        ids += [phase["id"], *(module["id"] for module in phase.get("modules", []))]
    return ids


def _who(rule: StartRule) -> str:
    if rule.everyone:
        return "every active user"
    if rule.roles:
        return "members of " + ", ".join(sorted(rule.roles))
    return "only administrators"


def declared_rule(version_id: int) -> dict[str, Any]:
    """The version's start rule as the journeys API shows it, defaults resolved: `by` is
    `everyone` or role ids (in the file's order), `parts` the phase and module ids."""
    definition = versions.definition_of(version_id)
    rule = versions.start_rule_of(version_id)
    by: Any = "everyone" if rule.everyone else [role["id"] for role in definition["roles"] if role["id"] in rule.roles]
    parts = [container_id for container_id in reading_order(definition) if container_id in rule.parts]
    return {"by": by, "parts": parts, "by_default": not rule.declared}
