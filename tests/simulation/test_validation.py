"""Every validation error and warning, each with a minimal journey that triggers it, and a
journey that triggers none."""

from __future__ import annotations

import copy

import pytest

from processes import handlers
from processes.validation import validate_definition, validate_workflow
from processes.versions import publish_journey
from tests.factories import UserFactory

from .journeys import CLEAN, ROLE, enables, human, journey, score_form, system

KNOWN = handlers.names()


def check(data, container_id=None):
    return validate_definition(data, container_id, known_handlers=KNOWN)


def only_message(report, fragment):
    matching = [line for line in report["errors"] + report["warnings"] if fragment in line]
    assert len(matching) == 1, report
    return matching[0]


# --- a journey with nothing to report ----------------------------------------------------------


def test_the_clean_journey_has_no_error_and_no_warning():
    assert check(CLEAN) == {"valid": True, "errors": [], "warnings": []}


def test_the_clean_journey_published_and_staffed_has_no_error_and_no_warning(db):
    UserFactory(username="xavier", roles=[ROLE])
    publish_journey(copy.deepcopy(CLEAN))

    report = validate_workflow("journey-clean")

    assert report == {"valid": True, "errors": [], "warnings": [], "version": 1}


# --- errors ----------------------------------------------------------------------------------------

ERRORS = {
    "cycle": (
        journey([human("atom-a"), human("atom-b")], [enables("atom-a", "atom-b"), enables("atom-b", "atom-a")]),
        "edges: cycle atom-a -> atom-b -> atom-a",
    ),
    "dangling-reference": (
        journey([human("atom-a")], [enables("atom-a", "atom-nowhere")]),
        "edges[0].to: unknown atom 'atom-nowhere'",
    ),
    "unknown-handler": (
        journey([system("atom-a", handler="no-such-handler")]),
        "atoms[0].handler: unknown handler 'no-such-handler'",
    ),
    "human-atom-without-role": (
        journey([{"id": "atom-a", "name": "A", "sla": {"target": "PT1H"}}]),
        "atoms[0].performed_by: required for human atoms",
    ),
    "malformed-rule": (
        journey([human("atom-a"), human("atom-b")], [enables("atom-a", "atom-b", rule="rule-r")],
                [{"rule_id": "rule-r", "conditions": [{"field": "x", "operator": "approx", "value": 1}]}]),
        "rules[0].conditions[0].operator: unknown operator 'approx'",
    ),
}


@pytest.mark.parametrize("data, expected", ERRORS.values(), ids=ERRORS.keys())
def test_each_error(data, expected):
    report = check(data)

    assert report["valid"] is False
    assert expected in report["errors"]
    assert report["warnings"] == []


def test_a_workflow_with_no_atoms_is_an_error():
    data = journey([human("atom-a")], phases=[{"id": "phase-p", "name": "P", "modules": [
        {"id": "module-full", "name": "Full", "atoms": ["atom-a"]}, {"id": "module-empty", "name": "Empty"}]}])

    report = check(data, "module-empty")

    assert report == {"valid": False, "errors": ["module-empty: the workflow has no atoms"], "warnings": []}


def test_a_handler_unregistered_after_publication_is_an_error(db):
    handlers.register("short-lived")(lambda context, params: {})
    try:
        publish_journey(journey([system("atom-a", handler="short-lived")]))
    finally:
        handlers._registry.pop("short-lived")

    report = validate_workflow("journey-t")

    assert report["valid"] is False
    assert report["errors"] == ["atoms[0].handler: unknown handler 'short-lived'"]


# --- warnings from the rules -------------------------------------------------------------------------


def branching(conditions, default=True, form=None):
    """atom-a decides between atom-b, atom-c, ... by these conditions (and a default to atom-z)."""
    targets = [f"atom-{chr(ord('b') + i)}" for i in range(len(conditions))]
    atoms = [human("atom-a", form=form or score_form())] + [human(t) for t in targets]
    edges = [enables("atom-a", t, condition=c) for t, c in zip(targets, conditions)]
    if default:
        atoms.append(human("atom-z"))
        edges.append(enables("atom-a", "atom-z", default=True))
    return journey(atoms, edges)


def test_a_condition_that_can_never_hold():
    data = branching([{"all": [{"field": "score", "operator": "gt", "value": 700},
                               {"field": "score", "operator": "lt", "value": 600}]}])

    message = only_message(check(data), "never hold")

    assert message == "edges[0]: the condition of atom-a -> atom-b can never hold, so the edge never fires"


def test_a_condition_that_always_holds_names_the_default_it_starves():
    data = branching([{"any": [{"field": "score", "operator": "gte", "value": 0},
                               {"field": "score", "operator": "lt", "value": 0}]}])

    message = only_message(check(data), "always holds")

    assert message == ("edges[0]: the condition of atom-a -> atom-b always holds; "
                       "the default edge edges[1] never fires")


def test_a_default_edge_that_never_fires_because_the_branches_cover_everything():
    data = branching([{"field": "score", "operator": "gte", "value": 620},
                      {"field": "score", "operator": "lt", "value": 620}])

    message = only_message(check(data), "never fires")

    assert message.startswith("edges[2]: the default edge atom-a -> atom-z never fires")


def test_a_fan_out_without_default_that_can_skip_every_branch_names_a_witness():
    data = branching([{"field": "score", "operator": "gte", "value": 620},
                      {"field": "score", "operator": "lt", "value": 500}], default=False)

    message = only_message(check(data), "no default")

    assert message == ("atoms[0]: atom 'atom-a' has conditional edges and no default: "
                       "every branch is skipped when score = 500")


def test_a_fan_out_without_default_on_a_field_no_form_sets_can_skip_when_it_is_missing():
    data = branching([{"field": "x", "operator": "gte", "value": 5},
                      {"field": "x", "operator": "lt", "value": 5}], default=False)

    message = only_message(check(data), "no default")

    assert message.endswith("every branch is skipped when x missing")


def test_a_fan_out_without_default_whose_branches_cover_every_value_is_fine():
    data = branching([{"field": "decision", "operator": "eq", "value": "approve"},
                      {"field": "decision", "operator": "eq", "value": "decline"}], default=False,
                     form=[{"name": "decision", "type": "choice", "required": True, "choices": ["approve", "decline"]}])

    assert check(data)["warnings"] == []


def test_an_atom_no_context_can_reach():
    data = branching([{"field": "score", "operator": "in", "value": []}])

    message = only_message(check(data), "unreachable")

    assert message == "atoms[1]: atom 'atom-b' is unreachable: no context makes an edge into it fire"


def test_an_atom_behind_an_unreachable_one_is_unreachable_too():
    data = branching([{"field": "score", "operator": "in", "value": []}])
    data["atoms"].append(human("atom-after"))
    data["edges"].append(enables("atom-b", "atom-after"))

    warnings = check(data)["warnings"]

    assert "atoms[3]: atom 'atom-after' is unreachable: no context makes an edge into it fire" in warnings


def test_rule_ids_are_named_in_the_warning():
    data = journey([human("atom-a", form=score_form()), human("atom-b"), human("atom-z")],
                   [enables("atom-a", "atom-b", rules=["rule-high", "rule-low"]), enables("atom-a", "atom-z", default=True)],
                   [{"rule_id": "rule-high", "conditions": [{"field": "score", "operator": "gt", "value": 700}]},
                    {"rule_id": "rule-low", "conditions": [{"field": "score", "operator": "lt", "value": 600}]}])

    message = only_message(check(data), "never hold")

    assert "atom-a -> atom-b (rule 'rule-high', 'rule-low')" in message


# --- warnings from the definition and the people ---------------------------------------------------

OBSERVATIONS = {
    "sla-target-longer-than-escalation": (
        journey([human("atom-a", sla={"target": "PT4H", "escalation": "PT2H"})]),
        "atoms[0]: atom 'atom-a' escalates (PT2H) before its target (PT4H)",
    ),
    "human-atom-without-sla-target": (
        journey([{"id": "atom-a", "name": "A", "performed_by": ROLE}]),
        "atoms[0]: human atom 'atom-a' has no SLA target (its tasks have no due date)",
    ),
    "system-atom-without-retries": (
        journey([system("atom-a", retries=0)], roles=[]),
        "atoms[0]: system atom 'atom-a' has retries 0: one handler failure fails the process",
    ),
    "role-that-performs-nothing": (
        journey([human("atom-a")], roles=[{"id": ROLE, "name": "X"}, {"id": "role-idle", "name": "Idle"}]),
        "roles[1]: role 'role-idle' performs no atom",
    ),
    "rule-that-conditions-no-edge": (
        journey([human("atom-a")], rules=[{"rule_id": "rule-unused", "conditions": [
            {"field": "x", "operator": "exists"}]}]),
        "rules[0]: rule 'rule-unused' conditions no edge",
    ),
    "atom-in-no-module": (
        journey([human("atom-a"), human("atom-b")], [enables("atom-a", "atom-b")],
                phases=[{"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M", "atoms": ["atom-a"]}]}]),
        "atoms[1]: atom 'atom-b' is in no module (only a journey-wide process runs it)",
    ),
    "default-edge-without-conditional-sibling": (
        journey([human("atom-a"), human("atom-b")], [enables("atom-a", "atom-b", default=True)]),
        "edges[0]: default edge from 'atom-a' has no conditional sibling, so it always fires",
    ),
}


@pytest.mark.parametrize("data, expected", OBSERVATIONS.values(), ids=OBSERVATIONS.keys())
def test_each_definition_warning(data, expected):
    report = check(data)

    assert report["valid"] is True
    assert report["warnings"] == [expected]


@pytest.mark.parametrize("members", [[], [{"is_active": False}]], ids=["no-member", "inactive-member"])
def test_a_role_with_no_active_member(db, members):
    for i, member in enumerate(members):
        user = UserFactory(username=f"member{i}", roles=[ROLE])
        user.is_active = member["is_active"]
        user.save()
    publish_journey(journey([human("atom-a"), human("atom-b")], [enables("atom-a", "atom-b")]))

    report = validate_workflow("journey-t")

    assert report["valid"] is True
    assert report["warnings"] == [
        "roles[0]: role 'role-x' has no active member, so the tasks of atom-a, atom-b will wait unassigned",
        # role-x also starts the journey (the default: the roles that perform its atoms)
        "journey.start.by: no role that starts 'journey-t' (role-x) has an active member, "
        "so only administrators can start it"]
