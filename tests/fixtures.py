from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from processes.versions import publish_journey
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
DEMO_FILE = ROOT / "journeys" / "fha-purchase.yaml"

# A small journey that has every construct: a rule branch with a default, an OR-merge,
# a parallel split and AND-join, a DEPENDS_ON, system steps and forms.
SMALL_JOURNEY = """
format: gndp-journey/1
journey: {id: journey-small, name: Small loan}
roles:
  - {id: role-clerk, name: Clerk}
  - {id: role-checker, name: Checker, assignment: queue}
phases:
  - id: phase-intake
    name: Intake
    modules:
      - {id: module-intake, name: Intake, atoms: [atom-apply, atom-score]}
  - id: phase-review
    name: Review
    modules:
      - {id: module-review, name: Review, atoms: [atom-manual, atom-open, atom-a, atom-b, atom-join, atom-done]}
atoms:
  - id: atom-apply
    name: Apply
    performed_by: role-clerk
    sla: {target: PT4H, escalation: PT8H}
    form:
      - {name: amount, type: number, required: true}
      - {name: score, type: integer, required: true}
  - {id: atom-score, name: Score, kind: system, handler: set_context, params: {scored: true}, retries: 1}
  - {id: atom-manual, name: Manual review, performed_by: role-checker, priority: high}
  - {id: atom-open, name: Open file, kind: system, handler: noop}
  - {id: atom-a, name: Branch A, performed_by: role-clerk}
  - {id: atom-b, name: Branch B, performed_by: role-checker}
  - {id: atom-join, name: Join, performed_by: role-clerk}
  - {id: atom-done, name: Done, kind: system, handler: set_context, params: {status: closed}}
edges:
  - {type: ENABLES, from: atom-apply, to: atom-score}
  - {type: ENABLES, from: atom-score, to: atom-open, rule: rule-good-score}
  - {type: ENABLES, from: atom-score, to: atom-manual, default: true}
  - {type: ENABLES, from: atom-manual, to: atom-open}
  - {type: ENABLES, from: atom-open, to: atom-a}
  - {type: ENABLES, from: atom-open, to: atom-b}
  - {type: ENABLES, from: atom-a, to: atom-join}
  - {type: ENABLES, from: atom-b, to: atom-join}
  - {type: ENABLES, from: atom-join, to: atom-done}
  - {type: DEPENDS_ON, from: atom-done, to: atom-b}
rules:
  - rule_id: rule-good-score
    conditions: [{field: score, operator: gte, value: 620}]
"""


@pytest.fixture
def small_definition():
    return yaml.safe_load(SMALL_JOURNEY)


@pytest.fixture
def small_version(db, small_definition):
    return publish_journey(small_definition).version


@pytest.fixture
def demo_version(db):
    return publish_journey(yaml.safe_load(DEMO_FILE.read_text())).version


@pytest.fixture
def clerk(db):
    return UserFactory(username="clara", roles=["role-clerk"])


@pytest.fixture
def checker(db):
    return UserFactory(username="chet", roles=["role-checker"])
