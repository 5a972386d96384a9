"""Small journeys for the simulation tests, built in code so each test shows what matters."""

from __future__ import annotations

from typing import Any

import yaml

ROLE = "role-x"


def human(atom_id: str, **extra: Any) -> dict[str, Any]:
    """A human atom with a role and an SLA target: no warning of its own."""
    return {"id": atom_id, "name": atom_id, "performed_by": ROLE, "sla": {"target": "PT1H"}, **extra}


def system(atom_id: str, handler: str = "noop", **extra: Any) -> dict[str, Any]:
    return {"id": atom_id, "name": atom_id, "kind": "system", "handler": handler, **extra}


def enables(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ENABLES", "from": source, "to": target, **extra}


def journey(atoms, edges=(), rules=(), journey_id: str = "journey-t", **top: Any) -> dict[str, Any]:
    return {
        "format": "gndp-journey/1",
        "journey": {"id": journey_id, "name": journey_id, **top.pop("journey", {})},
        "roles": top.pop("roles", [{"id": ROLE, "name": "X"}]),
        "atoms": list(atoms),
        "edges": list(edges),
        "rules": list(rules),
        **top,
    }


def score_form(required: bool = True) -> list[dict[str, Any]]:
    return [{"name": "score", "type": "integer", "required": required}]


# Every construct the analysis looks at, and nothing it should warn about: a rule branch
# with a default, an inline condition with a default, an OR-merge, a parallel split and
# AND-join, a DEPENDS_ON, system steps, forms, SLAs, modules, a sensitive field.
CLEAN = yaml.safe_load("""
format: gndp-journey/1
journey: {id: journey-clean, name: Clean, sla: {target: P2D}, sensitive: [ssn]}
roles: [{id: role-x, name: X}]
phases:
  - id: phase-all
    name: All
    modules:
      - {id: module-all, name: All, atoms: [atom-apply, atom-score, atom-fast, atom-manual, atom-open,
                                            atom-a, atom-b, atom-join, atom-done]}
atoms:
  - id: atom-apply
    name: Apply
    performed_by: role-x
    sla: {target: PT4H, escalation: PT8H}
    form:
      - {name: score, type: integer, required: true}
      - {name: ssn, type: string, sensitive: true}
  - {id: atom-score, name: Score, kind: system, handler: set_context, params: {scored: true}}
  - {id: atom-fast, name: Fast track, kind: system, handler: noop}
  - id: atom-manual
    name: Manual review
    performed_by: role-x
    sla: {target: PT8H}
    form: [{name: decision, type: choice, required: true, choices: [approve, decline]}]
  - {id: atom-open, name: Open file, performed_by: role-x, sla: {target: PT2H}}
  - {id: atom-a, name: Branch A, performed_by: role-x, sla: {target: PT3H}}
  - {id: atom-b, name: Branch B, performed_by: role-x, sla: {target: PT1H}}
  - {id: atom-join, name: Join, performed_by: role-x, sla: {target: PT1H}}
  - {id: atom-done, name: Done, kind: system, handler: set_context, params: {status: closed}}
edges:
  - {type: ENABLES, from: atom-apply, to: atom-score}
  - {type: ENABLES, from: atom-apply, to: atom-fast, rule: rule-good-score}
  - {type: ENABLES, from: atom-apply, to: atom-manual, default: true}
  - {type: ENABLES, from: atom-fast, to: atom-open}
  - {type: ENABLES, from: atom-manual, to: atom-open, condition: {field: decision, operator: eq, value: approve}}
  - {type: ENABLES, from: atom-manual, to: atom-done, default: true}
  - {type: ENABLES, from: atom-open, to: atom-a}
  - {type: ENABLES, from: atom-open, to: atom-b}
  - {type: ENABLES, from: atom-a, to: atom-join}
  - {type: ENABLES, from: atom-b, to: atom-join}
  - {type: ENABLES, from: atom-join, to: atom-done}
  - {type: DEPENDS_ON, from: atom-done, to: atom-score}
rules:
  - rule_id: rule-good-score
    conditions: [{field: score, operator: gte, value: 620}]
""")
