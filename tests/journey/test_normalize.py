"""Journey files: every problem reported with its place, the canonical form, round trips."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processes.engine import blueprint, rules
from processes.journey import JourneyError, definition_hash, dump, normalize, parse_text, warnings

HANDLERS = {"noop", "set_context"}

# The contract's example, completed so that it is valid on its own.
EXAMPLE = """
format: gndp-journey/1
journey:
  id: journey-purchase-fha
  name: FHA purchase loan
  description: optional text
  sensitive: [borrower.ssn]
  sla: {target: P30D}
roles:
  - id: role-loan-officer
    name: Loan officer
    assignment: least_busy
  - {id: role-underwriter, name: Underwriter, assignment: queue}
phases:
  - id: phase-application
    name: Application
    modules:
      - id: module-intake
        name: Intake
        atoms: [atom-cust-application-submit, atom-sys-credit-pull]
atoms:
  - id: atom-cust-application-submit
    name: Submit application
    kind: human
    performed_by: role-loan-officer
    priority: medium
    sla: {target: PT4H, escalation: PT6H}
    form:
      - {name: loan_amount, type: number, required: true}
      - {name: notes, type: string}
      - {name: ssn, type: string, sensitive: true}
  - id: atom-sys-credit-pull
    name: Pull credit report
    kind: system
    handler: set_context
    params: {credit_pulled: true}
    retries: 3
  - {id: atom-bo-underwriting-review, name: Underwriting review, performed_by: role-underwriter, sla: {target: P2D}}
  - {id: atom-bo-manual-review, name: Manual review, performed_by: role-underwriter, sla: {target: P1D}}
  - {id: atom-bo-income-verification, name: Income verification, performed_by: role-loan-officer, sla: {target: P1D}}
edges:
  - {type: ENABLES, from: atom-cust-application-submit, to: atom-sys-credit-pull}
  - {type: ENABLES, from: atom-sys-credit-pull, to: atom-bo-underwriting-review,
     rule: rule-credit-score-threshold}
  - {type: ENABLES, from: atom-sys-credit-pull, to: atom-bo-manual-review, default: true}
  - {type: ENABLES, from: atom-bo-manual-review, to: atom-bo-underwriting-review}
  - {type: DEPENDS_ON, from: atom-bo-underwriting-review, to: atom-bo-income-verification}
rules:
  - rule_id: rule-credit-score-threshold
    description: Only proceed to underwriting if credit score >= 620
    conditions:
      - {field: credit_score, operator: gte, value: 620}
"""


def example() -> dict:
    return yaml.safe_load(EXAMPLE)


def minimal(**sections) -> dict:
    data = {
        "format": "gndp-journey/1",
        "journey": {"id": "journey-t", "name": "T"},
        "roles": [{"id": "role-x", "name": "X"}],
        "atoms": [
            {"id": "atom-a", "name": "A", "performed_by": "role-x"},
            {"id": "atom-b", "name": "B", "performed_by": "role-x"},
            {"id": "atom-c", "name": "C", "performed_by": "role-x"},
        ],
        "edges": [],
        "rules": [{"rule_id": "rule-r", "conditions": [{"field": "x", "operator": "eq", "value": 1}]}],
    }
    data.update(sections)
    return data


def problems(data, known_handlers=None) -> list[str]:
    with pytest.raises(JourneyError) as exc:
        normalize(data, known_handlers=known_handlers)
    assert str(exc.value).startswith("invalid journey: ")
    return exc.value.problems


def edge(source, target, kind="ENABLES", **extra):
    return {"type": kind, "from": source, "to": target, **extra}


# --- the example and the canonical form ------------------------------------------------------

def test_example_is_valid_and_canonical():
    defn = normalize(example(), known_handlers=HANDLERS)

    assert list(defn) == ["format", "journey", "roles", "phases", "atoms", "edges", "rules"]
    assert defn["journey"] == {
        "id": "journey-purchase-fha",
        "name": "FHA purchase loan",
        "description": "optional text",
        "sensitive": ["borrower.ssn"],
        "sla": {"target": "P30D"},
    }
    # Defaults are omitted: assignment least_busy, kind human, priority medium, retries 3.
    assert defn["roles"] == [
        {"id": "role-loan-officer", "name": "Loan officer"},
        {"id": "role-underwriter", "name": "Underwriter", "assignment": "queue"},
    ]
    assert defn["atoms"][0] == {
        "id": "atom-cust-application-submit",
        "name": "Submit application",
        "performed_by": "role-loan-officer",
        "sla": {"target": "PT4H", "escalation": "PT6H"},
        "form": [
            {"name": "loan_amount", "type": "number", "required": True},
            {"name": "notes", "type": "string"},
            {"name": "ssn", "type": "string", "sensitive": True},
        ],
    }
    assert defn["atoms"][1] == {
        "id": "atom-sys-credit-pull",
        "name": "Pull credit report",
        "kind": "system",
        "handler": "set_context",
        "params": {"credit_pulled": True},
    }
    assert defn["edges"][1] == {
        "type": "ENABLES",
        "from": "atom-sys-credit-pull",
        "to": "atom-bo-underwriting-review",
        "rules": ["rule-credit-score-threshold"],
    }
    assert defn["edges"][2]["default"] is True
    assert defn["rules"] == [
        {
            "rule_id": "rule-credit-score-threshold",
            "description": "Only proceed to underwriting if credit score >= 620",
            "conditions": [{"field": "credit_score", "operator": "gte", "value": 620}],
        }
    ]


def test_five_lists_are_always_present():
    data = minimal()
    del data["edges"], data["rules"], data["roles"]
    data["atoms"] = [{"id": "atom-a", "name": "A", "kind": "system", "handler": "noop"}]

    defn = normalize(data)

    assert defn["roles"] == defn["phases"] == defn["edges"] == defn["rules"] == []
    assert defn["atoms"] == [{"id": "atom-a", "name": "A", "kind": "system", "handler": "noop"}]


def test_explicit_defaults_and_nulls_are_dropped():
    data = minimal(phases=[{"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M", "atoms": []}]}])
    data["journey"].update(description="", sensitive=[], sla=None)
    data["roles"][0]["assignment"] = "least_busy"
    data["atoms"][0].update(kind="human", priority="medium", sla={}, form=[])
    data["atoms"].append({"id": "atom-s", "name": "S", "kind": "system", "handler": "noop", "params": {}, "retries": 3})
    data["edges"] = [edge("atom-a", "atom-b", default=False, rules=[], condition=None)]

    defn = normalize(data)

    assert defn["journey"] == {"id": "journey-t", "name": "T"}
    assert defn["roles"] == [{"id": "role-x", "name": "X"}]
    assert defn["phases"] == [{"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M"}]}]
    assert defn["atoms"][0] == {"id": "atom-a", "name": "A", "performed_by": "role-x"}
    assert defn["atoms"][3] == {"id": "atom-s", "name": "S", "kind": "system", "handler": "noop"}
    assert defn["edges"] == [edge("atom-a", "atom-b")]


def test_retries_other_than_the_default_are_kept():
    data = minimal()
    data["atoms"] += [
        {"id": "atom-s0", "name": "S", "kind": "system", "handler": "noop", "retries": 0},
        {"id": "atom-s5", "name": "S", "kind": "system", "handler": "noop", "retries": 5},
    ]

    atoms = normalize(data)["atoms"]

    assert atoms[3]["retries"] == 0
    assert atoms[4]["retries"] == 5


def test_durations_are_rewritten_canonically():
    data = minimal()
    data["journey"]["sla"] = {"target": "P2W"}
    data["atoms"][0]["sla"] = {"target": "PT90M", "escalation": "pt36h"}

    defn = normalize(data)

    assert defn["journey"]["sla"] == {"target": "P14D"}
    assert defn["atoms"][0]["sla"] == {"target": "PT1H30M", "escalation": "P1DT12H"}


def test_rule_and_rules_become_one_rules_list():
    data = minimal(rules=[
        {"rule_id": "rule-r", "conditions": [{"field": "x", "operator": "eq", "value": 1}]},
        {"rule_id": "rule-s", "conditions": {"not": {"field": "y", "operator": "exists", "value": 1}}},
    ])
    data["edges"] = [edge("atom-a", "atom-b", rule="rule-r", rules=["rule-s"])]

    defn = normalize(data)

    assert defn["edges"] == [edge("atom-a", "atom-b", rules=["rule-r", "rule-s"])]
    # `exists` takes no value: the canonical form drops the ignored one.
    assert defn["rules"][1]["conditions"] == {"not": {"field": "y", "operator": "exists"}}


def test_inline_condition_is_kept():
    cond = {"any": [{"field": "a.b", "operator": "in", "value": [1, 2]}, {"field": "c", "operator": "exists"}]}
    data = minimal(edges=[edge("atom-a", "atom-b", condition=cond)])

    assert normalize(data)["edges"] == [edge("atom-a", "atom-b", condition=cond)]


def test_performed_by_edges_are_folded_into_atoms():
    data = minimal()
    del data["atoms"][1]["performed_by"]
    data["atoms"][2]["performed_by"] = "role-x"
    data["edges"] = [
        edge("atom-a", "atom-b"),
        edge("atom-b", "role-x", "PERFORMED_BY"),
        edge("atom-c", "role-x", "PERFORMED_BY"),  # agrees with the atom: fine
    ]

    defn = normalize(data)

    assert defn["atoms"][1] == {"id": "atom-b", "name": "B", "performed_by": "role-x"}
    assert defn["edges"] == [edge("atom-a", "atom-b")]


def test_edge_order_is_preserved():
    data = minimal(edges=[edge("atom-a", "atom-c", rule="rule-r"), edge("atom-a", "atom-b"), edge("atom-b", "atom-c")])

    assert [(e["from"], e["to"]) for e in normalize(data)["edges"]] == [
        ("atom-a", "atom-c"), ("atom-a", "atom-b"), ("atom-b", "atom-c"),
    ]


# --- seed-style rules (actions + atoms[].rules) ----------------------------------------------

def seed(**changes) -> dict:
    data = minimal(
        rules=[
            {"rule_id": "rule-go", "conditions": [{"field": "ok", "operator": "eq", "value": True}],
             "actions": [{"type": "transition", "target": "atom-b"}]},
            {"rule_id": "rule-big", "description": "big loans",
             "conditions": [{"field": "amount", "operator": "gt", "value": 100}],
             "actions": [{"type": "transition", "target": "atom-b"}, {"type": "transition", "target": "atom-c"}]},
        ],
        edges=[edge("atom-a", "atom-b"), edge("atom-b", "atom-c")],
    )
    data["atoms"][0]["rules"] = ["rule-go", "rule-big"]
    data.update(changes)
    return data


def test_seed_rules_condition_existing_edges_and_create_missing_ones():
    defn = normalize(seed())

    assert defn["edges"] == [
        edge("atom-a", "atom-b", rules=["rule-go", "rule-big"]),
        edge("atom-b", "atom-c"),
        edge("atom-a", "atom-c", rules=["rule-big"]),  # created, at the end
    ]
    assert "rules" not in defn["atoms"][0]
    assert defn["rules"] == [
        {"rule_id": "rule-go", "conditions": [{"field": "ok", "operator": "eq", "value": True}]},
        {"rule_id": "rule-big", "description": "big loans",
         "conditions": [{"field": "amount", "operator": "gt", "value": 100}]},
    ]


def test_seed_rule_merges_with_an_edge_rule_without_duplicating():
    data = seed()
    data["edges"][0]["rules"] = ["rule-go"]
    data["edges"][0]["condition"] = {"field": "z", "operator": "exists"}

    first = normalize(data)["edges"][0]

    assert first == edge("atom-a", "atom-b", rules=["rule-go", "rule-big"], condition={"field": "z", "operator": "exists"})
    assert list(first) == ["type", "from", "to", "rules", "condition"]


def test_seed_style_normalizes_to_the_same_hash_as_its_canonical_form():
    defn = normalize(seed())

    assert definition_hash(normalize(defn)) == definition_hash(defn)


def test_seed_rule_problems():
    data = seed()
    data["rules"].append({"rule_id": "rule-noop", "conditions": [{"field": "x", "operator": "exists"}]})
    data["rules"].append({"rule_id": "rule-self", "conditions": [{"field": "x", "operator": "exists"}],
                          "actions": [{"type": "transition", "target": "atom-a"}]})
    data["rules"].append({"rule_id": "rule-bad", "conditions": [{"field": "x", "operator": "exists"}],
                          "actions": [{"type": "email", "target": "atom-a"}, {"type": "transition", "target": "atom-q"},
                                      {"type": "transition"}, {"type": "transition", "target": "atom-b", "when": 1}]})
    data["atoms"][0]["rules"] += ["rule-noop", "rule-self", "rule-missing", "rule-go"]
    data["edges"][0]["default"] = True

    assert problems(data) == [
        "atoms[0].rules[4]: unknown rule 'rule-missing'",
        "atoms[0].rules[5]: duplicate rule 'rule-go'",
        "rules[4].actions[0].type: unknown action 'email' (only 'transition')",
        "rules[4].actions[1].target: unknown atom 'atom-q'",
        "rules[4].actions[2].target: required",
        "rules[4].actions[3].when: unknown key",
        "atoms[0].rules[0]: rule 'rule-go' would condition the default edge edges[0]",
        "atoms[0].rules[1]: rule 'rule-big' would condition the default edge edges[0]",
        "atoms[0].rules[2]: rule 'rule-noop' has no transition action",
        "atoms[0].rules[3]: rule 'rule-self' moves 'atom-a' to itself",
    ]


# --- one problem of each kind ------------------------------------------------------------------

def add_role_y(data: dict, edges: list, unassign: bool = False) -> None:
    data["roles"].append({"id": "role-y", "name": "Y"})
    data["edges"].extend(edges)
    if unassign:
        del data["atoms"][0]["performed_by"]


def with_change(change) -> dict:
    data = minimal()
    change(data)
    return data


CASES = [
    ("format missing", lambda d: d.pop("format"), ["format: required ('gndp-journey/1')"]),
    ("format wrong", lambda d: d.update(format="gndp-journey/2"), ["format: expected 'gndp-journey/1', got 'gndp-journey/2'"]),
    ("top-level unknown key", lambda d: d.update(colour="red"), ["colour: unknown key"]),
    ("journey missing", lambda d: d.pop("journey"), ["journey: required"]),
    ("journey not a mapping", lambda d: d.update(journey="j"), ["journey: must be a mapping, got 'j'"]),
    ("journey bad id", lambda d: d["journey"].update(id="Bad Id"),
     ["journey.id: invalid id 'Bad Id' (lower-case letters, digits, '.', '_', '-')"]),
    ("journey no id", lambda d: d["journey"].pop("id"), ["journey.id: required"]),
    ("journey no name", lambda d: d["journey"].pop("name"), ["journey.name: required"]),
    ("journey blank name", lambda d: d["journey"].update(name="  "), ["journey.name: must be a non-empty string, got '  '"]),
    ("journey name not text", lambda d: d["journey"].update(name=12), ["journey.name: must be a non-empty string, got 12"]),
    ("journey unknown key", lambda d: d["journey"].update(owner="me"), ["journey.owner: unknown key"]),
    ("journey description", lambda d: d["journey"].update(description=["x"]), ["journey.description: must be a string, got a list"]),
    ("sensitive path", lambda d: d["journey"].update(sensitive=["borrower.ssn", "__class__", "borrower.ssn", 3]),
     ["journey.sensitive[1]: invalid field path '__class__'", "journey.sensitive[2]: duplicate path 'borrower.ssn'",
      "journey.sensitive[3]: invalid field path 3"]),
    ("sensitive not a list", lambda d: d["journey"].update(sensitive="a.b"), ["journey.sensitive: must be a list, got 'a.b'"]),
    ("journey sla", lambda d: d["journey"].update(sla={"target": "30 days"}),
     ["journey.sla.target: invalid ISO 8601 duration '30 days' (e.g. PT4H, P2D, P1DT12H, PT0.5S)"]),
    ("journey sla escalation", lambda d: d["journey"].update(sla={"target": "P1D", "escalation": "P2D"}),
     ["journey.sla.escalation: unknown key"]),
    ("zero duration", lambda d: d["journey"].update(sla={"target": "PT0S"}), ["journey.sla.target: must be longer than zero"]),
    ("sla not a mapping", lambda d: d["atoms"][0].update(sla="PT4H"), ["atoms[0].sla: must be a mapping, got 'PT4H'"]),
    ("role unknown key", lambda d: d["roles"][0].update(manager="m"), ["roles[0].manager: unknown key"]),
    ("role no name", lambda d: d["roles"][0].pop("name"), ["roles[0].name: required"]),
    ("role assignment", lambda d: d["roles"][0].update(assignment="random"),
     ["roles[0].assignment: must be one of least_busy, round_robin, queue, got 'random'"]),
    ("roles not a list", lambda d: d.update(roles={"id": "role-x"}),
     ["roles: must be a list, got a mapping", "atoms[0].performed_by: unknown role 'role-x'",
      "atoms[1].performed_by: unknown role 'role-x'", "atoms[2].performed_by: unknown role 'role-x'"]),
    ("role item not a mapping", lambda d: d["roles"].append("role-y"), ["roles[1]: must be a mapping, got 'role-y'"]),
    ("duplicate id across sections", lambda d: d["roles"].append({"id": "atom-a", "name": "Y"}),
     ["atoms[0].id: duplicate id 'atom-a' (also roles[1].id)"]),
    ("duplicate atom id", lambda d: d["atoms"].append({"id": "atom-a", "name": "A2", "performed_by": "role-x"}),
     ["atoms[3].id: duplicate id 'atom-a' (also atoms[0].id)"]),
    ("duplicate rule id", lambda d: d["rules"].append({"rule_id": "journey-t", "conditions": [{"field": "a", "operator": "exists"}]}),
     ["rules[1].rule_id: duplicate id 'journey-t' (also journey.id)"]),
    ("id too long", lambda d: d["roles"][0].update(id="r" * 101),
     [f"roles[0].id: invalid id {rules.show('r' * 101)} (lower-case letters, digits, '.', '_', '-')"] + [
         f"atoms[{i}].performed_by: unknown role 'role-x'" for i in range(3)]),
    ("atom unknown key", lambda d: d["atoms"][2].update(colour="red"), ["atoms[2].colour: unknown key"]),
    ("atom not a mapping", lambda d: d["atoms"].append(["atom-q"]), ["atoms[3]: must be a mapping, got a list"]),
    ("no atoms", lambda d: d.update(atoms=[]), ["atoms: a journey needs at least one atom"]),
    ("atom no name", lambda d: d["atoms"][0].pop("name"), ["atoms[0].name: required"]),
    ("atom kind", lambda d: d["atoms"][0].update(kind="robot"), ["atoms[0].kind: must be one of human, system, got 'robot'"]),
    ("human without performer", lambda d: d["atoms"][2].pop("performed_by"), ["atoms[2].performed_by: required for human atoms"]),
    ("performer unknown", lambda d: d["atoms"][2].update(performed_by="role-q"), ["atoms[2].performed_by: unknown role 'role-q'"]),
    ("performer is an atom", lambda d: d["atoms"][2].update(performed_by="atom-a"),
     ["atoms[2].performed_by: 'atom-a' is an atom, not a role"]),
    ("human with handler", lambda d: d["atoms"][0].update(handler="noop", params={"a": 1}, retries=1),
     ["atoms[0].handler: only system atoms have this", "atoms[0].params: only system atoms have this",
      "atoms[0].retries: only system atoms have this"]),
    ("priority", lambda d: d["atoms"][0].update(priority="urgent"),
     ["atoms[0].priority: must be one of low, medium, high, got 'urgent'"]),
    ("atom sla", lambda d: d["atoms"][0].update(sla={"target": "PT4H", "escalation": "soon", "warn": "PT1H"}),
     ["atoms[0].sla.warn: unknown key", "atoms[0].sla.escalation: invalid ISO 8601 duration 'soon' (e.g. PT4H, P2D, P1DT12H, PT0.5S)"]),
    ("phase unknown atom", lambda d: d.update(phases=[{"id": "phase-p", "name": "P", "modules": [
        {"id": "module-m", "name": "M", "atoms": ["atom-a", "atom-q", "role-x"]}]}]),
     ["phases[0].modules[0].atoms[1]: unknown atom 'atom-q'", "phases[0].modules[0].atoms[2]: 'role-x' is a role, not an atom"]),
    ("atom in two modules", lambda d: d.update(phases=[
        {"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M", "atoms": ["atom-a", "atom-b"]}]},
        {"id": "phase-q", "name": "Q", "modules": [{"id": "module-n", "name": "N", "atoms": ["atom-c", "atom-a"]}]}]),
     ["phases[1].modules[0].atoms[1]: atom 'atom-a' is already in module 'module-m'"]),
    ("phase problems", lambda d: d.update(phases=[{"id": "phase-p", "modules": "module-m", "atoms": []},
                                                  {"id": "Phase", "name": "Q", "modules": [{"id": "module-n"}]}]),
     ["phases[1].id: invalid id 'Phase' (lower-case letters, digits, '.', '_', '-')", "phases[0].atoms: unknown key",
      "phases[0].name: required", "phases[0].modules: must be a list, got 'module-m'", "phases[1].modules[0].name: required"]),
    ("edge type", lambda d: d["edges"].append(edge("atom-a", "atom-b", "NEXT")),
     ["edges[0].type: unknown edge type 'NEXT' (ENABLES, DEPENDS_ON, PERFORMED_BY)"]),
    ("edge without type", lambda d: d["edges"].append({"from": "atom-a", "to": "atom-b"}), ["edges[0].type: required"]),
    ("edge unknown atom", lambda d: d["edges"].extend([edge("atom-a", "atom-b"), edge("atom-b", "atom-c"),
                                                       edge("atom-a", "atom-c"), edge("atom-c", "x")]),
     ["edges[3].to: unknown atom 'x'"]),
    ("edge to a role", lambda d: d["edges"].append(edge("role-x", "atom-b", "DEPENDS_ON")),
     ["edges[0].from: 'role-x' is a role, not an atom"]),
    ("edge endpoints missing", lambda d: d["edges"].append({"type": "ENABLES"}), ["edges[0].from: required", "edges[0].to: required"]),
    ("edge unknown key", lambda d: d["edges"].append(edge("atom-a", "atom-b", weight=3)), ["edges[0].weight: unknown key"]),
    ("self loop", lambda d: d["edges"].append(edge("atom-a", "atom-a")), ["edges[0]: self loop on 'atom-a' (a rework loop says loop: true)"]),
    ("duplicate edge", lambda d: d["edges"].extend(
        [edge("atom-a", "atom-b"), edge("atom-b", "atom-c"), edge("atom-a", "atom-b", rule="rule-r")]),
     ["edges[2]: duplicate of edges[0] (ENABLES atom-a -> atom-b)"]),
    ("depends_on with a rule", lambda d: d["edges"].append(edge("atom-a", "atom-b", "DEPENDS_ON", rule="rule-r", default=True)),
     ["edges[0].rule: only ENABLES edges carry rule", "edges[0].default: only ENABLES edges carry default"]),
    ("unknown edge rule", lambda d: d["edges"].append(edge("atom-a", "atom-b", rule="rule-q", rules=["rule-r", "rule-r", "atom-c"])),
     ["edges[0].rule: unknown rule 'rule-q'", "edges[0].rules[1]: duplicate rule 'rule-r'",
      "edges[0].rules[2]: 'atom-c' is an atom, not a rule"]),
    ("default with condition", lambda d: d["edges"].append(edge("atom-a", "atom-b", rule="rule-r", default=True)),
     ["edges[0].default: a default edge carries no condition"]),
    ("default not a flag", lambda d: d["edges"].append(edge("atom-a", "atom-b", default="yes")),
     ["edges[0].default: must be true or false, got 'yes'"]),
    ("inline condition", lambda d: d["edges"].append(
        edge("atom-a", "atom-b", condition={"all": [{"field": "__class__", "operator": "eq", "value": 1}]})),
     ["edges[0].condition.all[0].field: invalid field path '__class__'"]),
    ("performed_by conflict", lambda d: add_role_y(d, [edge("atom-a", "role-y", "PERFORMED_BY")]),
     ["edges[0]: conflicting performed_by: atoms[0].performed_by is 'role-x'"]),
    ("performed_by edges conflict", lambda d: add_role_y(d, [edge("atom-a", "role-x", "PERFORMED_BY"),
                                                             edge("atom-a", "role-y", "PERFORMED_BY")], unassign=True),
     ["edges[1]: conflicting performed_by: edges[0] already gives atom 'atom-a' role 'role-x'"]),
    ("performed_by to an atom", lambda d: d["edges"].append(edge("atom-a", "atom-b", "PERFORMED_BY", rule="rule-r")),
     ["edges[0].to: 'atom-b' is an atom, not a role", "edges[0].rule: only ENABLES edges carry rule"]),
    ("rule unknown key", lambda d: d["rules"][0].update(priority=1), ["rules[0].priority: unknown key"]),
    ("rule conditions missing", lambda d: d["rules"][0].pop("conditions"), ["rules[0].conditions: required"]),
    ("rule bad id", lambda d: d["rules"][0].update(rule_id="Rule 1"),
     ["rules[0].rule_id: invalid id 'Rule 1' (lower-case letters, digits, '.', '_', '-')"]),
    ("rule conditions", lambda d: d["rules"][0].update(conditions=[{"field": "x", "operator": "eq", "value": 1},
                                                                    {"field": "x", "operator": "regex", "value": "."}]),
     ["rules[0].conditions[1].operator: unknown operator 'regex'"]),
    ("cycle", lambda d: d["edges"].extend([edge("atom-a", "atom-b"), edge("atom-b", "atom-a")]),
     ["edges: cycle atom-a -> atom-b -> atom-a"]),
    ("cycle through depends_on", lambda d: d["edges"].extend([edge("atom-a", "atom-b"), edge("atom-b", "atom-c"),
                                                              edge("atom-a", "atom-c", "DEPENDS_ON")]),
     ["edges: cycle atom-a -> atom-b -> atom-c -> atom-a"]),
]


@pytest.mark.parametrize(("change", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_problem_is_reported_with_its_place(change, expected):
    assert problems(with_change(change)) == expected


def test_at_most_one_default_edge_per_source():
    data = minimal(edges=[
        edge("atom-a", "atom-b", rule="rule-r"),
        edge("atom-a", "atom-c", default=True),
        edge("atom-b", "atom-c"),
        edge("atom-a", "atom-d", default=True),
    ])
    data["atoms"].append({"id": "atom-d", "name": "D", "performed_by": "role-x"})

    assert problems(data) == ["edges[3].default: atom 'atom-a' already has a default edge (edges[1])"]


def test_system_atom_problems():
    data = minimal()
    data["atoms"] += [
        {"id": "atom-s1", "name": "S1", "kind": "system"},
        {"id": "atom-s2", "name": "S2", "kind": "system", "handler": "mystery", "performed_by": "role-x"},
        {"id": "atom-s3", "name": "S3", "kind": "system", "handler": "noop", "params": ["a"], "retries": 21},
        {"id": "atom-s4", "name": "S4", "kind": "system", "handler": "noop",
         "params": {"a": float("nan"), 1: "x"}, "retries": True},
        {"id": "atom-s5", "name": "S5", "kind": "system", "handler": ""},
    ]

    assert problems(data, known_handlers=HANDLERS) == [
        "atoms[3].handler: required for system atoms",
        "atoms[4].performed_by: system atoms are run by a handler, not performed by a role",
        "atoms[4].handler: unknown handler 'mystery'",
        "atoms[5].params: must be a mapping, got a list",
        "atoms[5].retries: must be a whole number from 0 to 20, got 21",
        "atoms[6].params.a: not a finite number",
        "atoms[6].params: keys must be strings, got 1",
        "atoms[6].retries: must be a whole number from 0 to 20, got True",
        "atoms[7].handler: must be a handler name, got ''",
    ]


def test_any_handler_name_is_accepted_without_known_handlers():
    data = minimal()
    data["atoms"].append({"id": "atom-s", "name": "S", "kind": "system", "handler": "mystery"})

    assert normalize(data)["atoms"][3]["handler"] == "mystery"


def test_performed_by_edge_from_a_system_atom():
    data = minimal(edges=[edge("atom-s", "role-x", "PERFORMED_BY")])
    data["atoms"].append({"id": "atom-s", "name": "S", "kind": "system", "handler": "noop"})

    assert problems(data) == ["edges[0]: system atom 'atom-s' is run by a handler, not performed by a role"]


def test_form_problems():
    data = minimal()
    data["atoms"][0]["form"] = [
        {"name": "amount", "type": "number"},
        {"name": "amount", "type": "string"},
        {"name": "Bad Name", "type": "string"},
        {"name": "__dict__", "type": "string"},
        {"name": "kind", "type": "choice"},
        {"name": "colour", "type": "choice", "choices": ["red", "red", 1, True, None, 1.5]},
        {"name": "notes", "type": "text", "choices": ["a"]},
        {"name": "city", "type": "string", "choices": ["a"], "required": "yes", "sensitive": 1, "label": 3},
        {"type": "string", "width": 20},
        "amount",
    ]

    assert problems(data) == [
        "atoms[0].form[1].name: duplicate field name 'amount'",
        "atoms[0].form[2].name: invalid field name 'Bad Name' (lower-case letters, digits, '_')",
        "atoms[0].form[3].name: invalid field name '__dict__' (lower-case letters, digits, '_')",
        "atoms[0].form[4].choices: a choice field needs a non-empty list of choices",
        "atoms[0].form[5].choices[1]: duplicate choice 'red'",
        "atoms[0].form[5].choices[4]: must be a string, number or boolean, got None",
        "atoms[0].form[6].type: must be one of string, number, integer, boolean, date, choice, got 'text'",
        "atoms[0].form[7].label: must be a string, got 3",
        "atoms[0].form[7].required: must be true or false, got 'yes'",
        "atoms[0].form[7].sensitive: must be true or false, got 1",
        "atoms[0].form[7].choices: only choice fields have choices",
        "atoms[0].form[8].width: unknown key",
        "atoms[0].form[8].name: required",
        "atoms[0].form[9]: must be a mapping, got 'amount'",
    ]


def test_form_choices_are_strictly_distinct():
    data = minimal()
    data["atoms"][0]["form"] = [{"name": "pick", "type": "choice", "choices": [1, True, "1", 1.5], "label": "Pick"}]

    assert normalize(data)["atoms"][0]["form"] == [
        {"name": "pick", "type": "choice", "label": "Pick", "choices": [1, True, "1", 1.5]}
    ]


def test_several_problems_are_all_reported():
    data = example()
    data["journey"]["id"] = "Bad Id"
    data["atoms"][2]["colour"] = "blue"
    del data["atoms"][3]["performed_by"]
    data["atoms"][1]["handler"] = "mystery"
    data["edges"][3]["to"] = "x"
    data["rules"][0]["conditions"][0]["operator"] = "regex"
    data["edges"].append(edge("atom-bo-underwriting-review", "atom-cust-application-submit"))

    assert problems(data, known_handlers=HANDLERS) == [
        "journey.id: invalid id 'Bad Id' (lower-case letters, digits, '.', '_', '-')",
        "atoms[1].handler: unknown handler 'mystery'",
        "atoms[2].colour: unknown key",
        "rules[0].conditions[0].operator: unknown operator 'regex'",
        "edges[3].to: unknown atom 'x'",
        "atoms[3].performed_by: required for human atoms",
        "edges: cycle atom-cust-application-submit -> atom-sys-credit-pull -> atom-bo-underwriting-review"
        " -> atom-cust-application-submit",
    ]


def test_one_cycle_is_named_per_tangle():
    data = minimal(edges=[
        edge("atom-a", "atom-b"), edge("atom-b", "atom-c"), edge("atom-c", "atom-a"), edge("atom-c", "atom-b"),
    ])
    data["atoms"] += [
        {"id": "atom-d", "name": "D", "performed_by": "role-x"},
        {"id": "atom-e", "name": "E", "performed_by": "role-x"},
    ]
    data["edges"] += [edge("atom-d", "atom-e"), edge("atom-d", "atom-e", "DEPENDS_ON")]

    assert problems(data) == [
        "edges: cycle atom-a -> atom-b -> atom-c -> atom-a",
        "edges: cycle atom-d -> atom-e -> atom-d",
    ]


def test_a_long_chain_is_no_problem_for_cycle_detection():
    atoms = [{"id": f"atom-{i}", "name": str(i), "kind": "system", "handler": "noop"} for i in range(3000)]
    edges = [edge(f"atom-{i}", f"atom-{i + 1}") for i in range(2999)]

    assert len(normalize(minimal(atoms=atoms, edges=edges, roles=[], rules=[]))["edges"]) == 2999
    assert problems(minimal(atoms=atoms, edges=[*edges, edge("atom-2999", "atom-0")], roles=[], rules=[])) == [
        "edges: cycle " + " -> ".join(f"atom-{i}" for i in [*range(3000), 0])
    ]


@pytest.mark.parametrize("data", [None, [], "journey", 3])
def test_top_level_must_be_a_mapping(data):
    assert problems(data) == [f"journey file: the top level must be a mapping, got {rules.show(data)}"]


def test_non_json_values_are_rejected():
    import datetime

    data = minimal()
    data["atoms"].append({"id": "atom-s", "name": "S", "kind": "system", "handler": "noop",
                          "params": {"when": datetime.date(2024, 1, 31), "raw": b"x"}})

    assert problems(data) == [
        "atoms[3].params.when: a date is not JSON data",
        "atoms[3].params.raw: a bytes is not JSON data",
    ]


def test_lone_surrogates_are_rejected():
    data = minimal()
    data["journey"]["name"] = "bad \ud800 text"

    assert problems(data) == ["journey file: contains text that is not valid Unicode"]


def test_deeply_nested_rule_is_a_problem_not_a_crash():
    cond: dict = {"field": "a", "operator": "exists"}
    for _ in range(10_000):
        cond = {"not": cond}
    data = minimal(rules=[{"rule_id": "rule-r", "conditions": cond}])

    [problem] = problems(data)

    assert problem.startswith("rules[0].conditions.not.not.")
    assert problem.endswith("nested deeper than 32 levels")


def test_input_is_not_modified():
    data = seed()
    before = copy.deepcopy(data)

    normalize(data)

    assert data == before


# --- idempotence, hashing, round trips ----------------------------------------------------------

@pytest.mark.parametrize("make", [example, seed, minimal])
def test_normalize_is_idempotent(make):
    once = normalize(make())

    assert normalize(once) == once
    assert definition_hash(normalize(once)) == definition_hash(once)


def test_hash_ignores_key_order_and_is_sha256_hex():
    defn = normalize(example())
    reordered = json.loads(json.dumps(defn, sort_keys=True))

    assert definition_hash(reordered) == definition_hash(defn)
    assert len(definition_hash(defn)) == 64
    assert int(definition_hash(defn), 16) >= 0


def test_hash_changes_with_edge_order():
    defn = normalize(example())
    swapped = copy.deepcopy(defn)
    swapped["edges"][1], swapped["edges"][2] = swapped["edges"][2], swapped["edges"][1]

    assert definition_hash(normalize(swapped)) != definition_hash(defn)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("make", [example, seed, minimal])
def test_dump_loads_back_to_the_same_hash(fmt, make):
    defn = normalize(make())

    text = dump(defn, fmt)

    assert definition_hash(normalize(parse_text(text, f"exported.{fmt}"))) == definition_hash(defn)
    assert definition_hash(normalize(parse_text(text))) == definition_hash(defn)


def test_yaml_dump_is_in_reading_order():
    text = dump(normalize(example()))

    tops = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert tops == ["format", "journey", "roles", "phases", "atoms", "edges", "rules"]
    assert "- {type: ENABLES, from: atom-cust-application-submit, to: atom-sys-credit-pull}" in text


def test_dump_reorders_a_definition_whose_keys_were_shuffled():
    defn = normalize(example())
    shuffled = json.loads(json.dumps(defn, sort_keys=True))  # as jsonb gives it back

    assert dump(shuffled) == dump(defn)


def test_dump_refuses_an_unknown_format():
    with pytest.raises(ValueError):
        dump(normalize(example()), "toml")


tricky_text = st.sampled_from(
    ["yes", "no", "on", "null", "~", "1.0", "2024-01-31", "0x1f", "1e3", "", " lead", "trail ", "a: b", "- x", "#", "'",
     '"', "\n", "multi\nline", "tab\there", "ünïcødé", "emoji 🎉", "{x}", "[x]", "&a", "*a", "!tag", "%", "@", "`"]
) | st.text(max_size=8).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.dictionaries(tricky_text, json_values, max_size=4), name=tricky_text.filter(str.strip),
       value=json_values, fmt=st.sampled_from(["yaml", "json"]))
def test_any_json_content_round_trips(params, name, value, fmt):
    data = minimal(edges=[edge("atom-a", "atom-b", condition={"field": "x", "operator": "eq", "value": value})])
    data["atoms"].append({"id": "atom-s", "name": name, "kind": "system", "handler": "noop", "params": params})
    data["journey"]["description"] = name
    defn = normalize(data)

    loaded = normalize(parse_text(dump(defn, fmt)))

    assert loaded == defn
    assert definition_hash(loaded) == definition_hash(defn)


# --- parse_text ---------------------------------------------------------------------------------

def test_parse_text_reads_yaml_and_json():
    data = example()

    assert parse_text(EXAMPLE, "fha.yaml") == data
    assert parse_text(json.dumps(data), "fha.json") == data
    assert parse_text(json.dumps(data)) == data  # starts with `{`
    assert parse_text("  \n" + json.dumps(data, indent=2), "fha.txt") == data


def test_invalid_yaml_names_the_file_and_place():
    with pytest.raises(JourneyError) as exc:
        parse_text("format: x\njourney: {id: [\n", "bad.yaml")

    [problem] = exc.value.problems
    assert problem.startswith("bad.yaml: invalid YAML: ")
    assert "line" in problem and "\n" not in problem


def test_yaml_flow_mapping_is_not_mistaken_for_broken_json():
    assert parse_text("{format: gndp-journey/1, n: 1e3}") == {"format": "gndp-journey/1", "n": "1e3"}
    assert parse_text('{"n": 1e3}') == {"n": 1000.0}  # real JSON keeps JSON's numbers

    with pytest.raises(JourneyError) as exc:
        parse_text("{format: [}")

    assert exc.value.problems[0].startswith("<text>: invalid YAML: ")


def test_invalid_json_names_the_file_and_place():
    with pytest.raises(JourneyError) as exc:
        parse_text('{"format": }', "bad.json")

    assert exc.value.problems == ["bad.json: invalid JSON: Expecting value (line 1, column 12)"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "", "42"])
def test_top_level_of_a_file_must_be_a_mapping(text):
    with pytest.raises(JourneyError) as exc:
        parse_text(text, "f.yaml")

    assert exc.value.problems == ["f.yaml: the top level must be a mapping"]


def test_unnamed_text_is_labelled():
    with pytest.raises(JourneyError) as exc:
        parse_text("[1]")

    assert exc.value.problems == ["<text>: the top level must be a mapping"]


def test_duplicate_keys_are_refused_in_yaml_and_json():
    with pytest.raises(JourneyError) as yaml_exc:
        parse_text("format: a\nformat: b\n", "d.yaml")
    with pytest.raises(JourneyError) as json_exc:
        parse_text('{"format": "a", "format": "b"}', "d.json")

    assert "duplicate key 'format'" in yaml_exc.value.problems[0]
    assert json_exc.value.problems == ["d.json: invalid JSON: duplicate key 'format'"]


def test_yaml_merge_keys_are_not_duplicates():
    data = parse_text("base: &b {a: 1, b: 2}\nitem:\n  <<: *b\n  b: 3\n")

    assert data["item"] == {"a": 1, "b": 3}


def test_yaml_dates_stay_strings():
    data = parse_text("format: gndp-journey/1\nwhen: 2024-01-31\nat: 2024-01-31T10:00:00Z\n")

    assert data["when"] == "2024-01-31"
    assert data["at"] == "2024-01-31T10:00:00Z"


def test_yaml_python_tags_are_refused():
    with pytest.raises(JourneyError) as exc:
        parse_text("x: !!python/object/apply:os.system ['echo hi']\n", "evil.yaml")

    assert exc.value.problems[0].startswith("evil.yaml: invalid YAML: ")


def test_deeply_nested_text_is_a_journey_error():
    with pytest.raises(JourneyError):
        parse_text("{\"a\": " + "[" * 100_000 + "]" * 100_000 + "}", "deep.json")
    with pytest.raises(JourneyError):
        parse_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml")


# --- warnings -------------------------------------------------------------------------------------

def test_warnings_on_a_clean_journey():
    data = minimal(
        edges=[edge("atom-a", "atom-b", rule="rule-r"), edge("atom-a", "atom-c", default=True)],
        phases=[{"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M", "atoms": ["atom-a", "atom-b", "atom-c"]}]}],
    )
    for atom in data["atoms"]:
        atom["sla"] = {"target": "PT4H"}

    assert warnings(normalize(data)) == []


def test_warnings_name_what_a_reviewer_should_look_at():
    data = minimal(
        edges=[edge("atom-a", "atom-b", default=True)],
        phases=[{"id": "phase-p", "name": "P", "modules": [{"id": "module-m", "name": "M", "atoms": ["atom-a", "atom-b"]}]}],
    )
    data["roles"].append({"id": "role-idle", "name": "Idle"})
    data["atoms"][0]["sla"] = {"target": "PT4H", "escalation": "PT2H"}
    data["atoms"][1]["sla"] = {"target": "PT4H"}
    data["atoms"][2]["sla"] = {"escalation": "PT4H"}
    data["atoms"].append({"id": "atom-s", "name": "S", "kind": "system", "handler": "noop", "retries": 0})

    assert warnings(normalize(data)) == [
        "roles[1]: role 'role-idle' performs no atom",
        "rules[0]: rule 'rule-r' conditions no edge",
        "atoms[0]: atom 'atom-a' escalates (PT2H) before its target (PT4H)",
        "atoms[2]: human atom 'atom-c' has no SLA target (its tasks have no due date)",
        "atoms[2]: atom 'atom-c' is in no module (only a journey-wide process runs it)",
        "atoms[3]: system atom 'atom-s' has retries 0: one handler failure fails the process",
        "atoms[3]: atom 'atom-s' is in no module (only a journey-wide process runs it)",
        "edges[0]: default edge from 'atom-a' has no conditional sibling, so it always fires",
    ]


# --- the engine accepts what normalize returns ------------------------------------------------

def test_blueprint_compiles_a_normalized_seed_style_journey():
    defn = normalize(seed())

    bp = blueprint.compile_blueprint(defn)

    conditional = {(e.source, e.target): e.condition for e in bp.edges}
    assert conditional[("atom-a", "atom-c")] == {"all": [{"field": "amount", "operator": "gt", "value": 100}]}
    assert bp.start_atoms == ("atom-a",)


# --- Part 2: choices ---------------------------------------------------------------------------

def with_atom_keys(data: dict, **keys) -> dict:
    data["atoms"][0].update(keys)
    return data


def test_choose_and_then_are_canonical_and_choose_all_keeps_the_hash():
    edges = [edge("atom-a", "atom-b"), edge("atom-a", "atom-c")]
    plain = normalize(minimal(edges=edges))
    said_all = normalize(with_atom_keys(minimal(edges=edges), choose="all"))
    racing = normalize(with_atom_keys(minimal(edges=edges), then="first_done", choose="first", name="A"))

    assert said_all == plain and definition_hash(said_all) == definition_hash(plain)
    assert list(racing["atoms"][0]) == ["id", "name", "performed_by", "choose", "then"]
    assert definition_hash(racing) != definition_hash(plain)
    assert normalize(parse_text(dump(racing))) == racing


def test_bad_choices_are_refused_at_their_places():
    data = with_atom_keys(minimal(edges=[edge("atom-a", "atom-b"), edge("atom-a", "atom-c"), edge("atom-b", "atom-c")]),
                          choose="one", then="first_done")
    data["atoms"][1]["then"] = True

    assert problems(data) == [
        "atoms[0].choose: must be one of all, first, got 'one'",
        "atoms[1].then: must be one of first_done, got True",
        "edges[2]: atom 'atom-c' is a racer of 'atom-a' (then: first_done) and may have no other ENABLES source, "
        "here 'atom-b'",
    ]



# --- Part 2: rework loops ----------------------------------------------------------------------

LOOP_CONDITION = {"field": "x", "operator": "eq", "value": 1}


def test_a_back_edge_is_canonical_and_left_out_of_the_cycle_check():
    data = minimal(edges=[edge("atom-a", "atom-b"), edge("atom-b", "atom-c"),
                          edge("atom-c", "atom-b", loop=True, condition=LOOP_CONDITION, max_iterations=10),
                          edge("atom-c", "atom-c", loop=True, rule="rule-r", max_iterations=4)])

    defn = normalize(data)

    assert defn["edges"][2] == {"type": "ENABLES", "from": "atom-c", "to": "atom-b", "condition": LOOP_CONDITION,
                                "loop": True}  # max_iterations 10 is the default
    assert defn["edges"][3] == {"type": "ENABLES", "from": "atom-c", "to": "atom-c", "rules": ["rule-r"],
                                "loop": True, "max_iterations": 4}
    assert normalize(parse_text(dump(defn))) == defn


def test_malformed_loop_keys_are_refused_one_line_each():
    data = minimal(edges=[
        edge("atom-a", "atom-b", loop="yes"),
        edge("atom-b", "atom-a", kind="DEPENDS_ON", loop=True),
        edge("atom-c", "atom-a", loop=True, default=True, max_iterations=1001),
        edge("atom-b", "atom-c", max_iterations=3),
    ])

    assert problems(data) == [
        "edges[0].loop: must be true or false, got 'yes'",
        "edges[1].loop: only ENABLES edges carry loop",
        "edges[2].max_iterations: must be a whole number from 1 to 1000, got 1001",
        "edges[3].max_iterations: only a back edge (loop: true) has max_iterations",
    ]


def test_a_loop_is_conditioned_and_entered_and_left_only_at_its_ends():
    data = minimal(edges=[
        edge("atom-a", "atom-b"), edge("atom-b", "atom-c"),
        edge("atom-c", "atom-b", loop=True),  # no condition
        edge("atom-a", "atom-c"),  # into the loop past its first atom
        edge("atom-b", "atom-d"),  # out of the loop before its last atom
        edge("atom-a", "atom-d", loop=True, rule="rule-r"),  # atom-d does not lead to atom-a
    ])
    data["atoms"].append({"id": "atom-d", "name": "D", "performed_by": "role-x"})

    assert problems(data) == [
        "edges[2].loop: a back edge carries a condition or is its atom's default edge",
        "edges[3]: enters the loop edges[2] at 'atom-c': a loop is entered only at its first atom 'atom-b'",
        "edges[4]: leaves the loop edges[2] at 'atom-b': a loop is left only at its last atom 'atom-c'",
        "edges[5]: not a loop: 'atom-d' does not lead to 'atom-a' through ordinary ENABLES edges",
    ]


def test_loops_overlap_only_by_nesting():
    data = minimal(edges=[
        edge("atom-a", "atom-b"), edge("atom-b", "atom-c"),
        edge("atom-b", "atom-a", loop=True, rule="rule-r"),
        edge("atom-c", "atom-b", loop=True, rule="rule-r"),
    ])

    assert problems(data) == [
        "edges[3]: the loop overlaps the loop edges[2]: loops are disjoint or one lies inside the other",
    ]
