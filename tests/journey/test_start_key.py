"""`journey.start`: who may start a journey and which of its parts start on their own.

Every malformed value is refused at load with its place; a file without the key keeps its
meaning and its hash (checked against hashes stored before the key existed); the key
round-trips through the canonical form and both dump formats."""

from __future__ import annotations

import copy

import pytest
import yaml

from processes.engine.blueprint import start_rule
from processes.journey import JourneyError, definition_hash, dump, normalize, parse_text, warnings
from tests.fixtures import DEMO_FILE, SMALL_JOURNEY

# sha256 of the canonical definitions as they were published before `journey.start` existed
# (commit cd49d0f). A file without the key must keep exactly these.
SMALL_HASH_BEFORE = "f7d0dc2a34aa751edad48961d9c062d49ee81ba4051791ab8ac207d59b8af376"
DEMO_HASH_BEFORE = "70424840b29a6133dd93f51a24acc2370277d949cb0dab79a224da98cbf3d9db"

JOURNEY = """
format: gndp-journey/1
journey: {id: journey-t, name: T}
roles:
  - {id: role-a, name: A}
  - {id: role-b, name: B}
  - {id: role-starter, name: Starts only}
phases:
  - id: phase-one
    name: One
    modules:
      - {id: module-one, name: One, atoms: [atom-a]}
  - id: phase-two
    name: Two
    modules:
      - {id: module-two, name: Two, atoms: [atom-b, atom-sys]}
atoms:
  - {id: atom-a, name: A, performed_by: role-a, sla: {target: PT1H}}
  - {id: atom-b, name: B, performed_by: role-b, sla: {target: PT1H}}
  - {id: atom-sys, name: S, kind: system, handler: noop}
edges:
  - {type: ENABLES, from: atom-a, to: atom-b}
  - {type: ENABLES, from: atom-b, to: atom-sys}
"""


def with_start(start) -> dict:
    data = yaml.safe_load(JOURNEY)
    data["journey"]["start"] = start
    return data


def problems_of(data) -> list[str]:
    with pytest.raises(JourneyError) as refused:
        normalize(data)
    return refused.value.problems


# --- refused at load, each with its place -------------------------------------------------------

@pytest.mark.parametrize(("start", "problem"), [
    ({"by": ["role-a", "role-x"]}, "journey.start.by[1]: unknown role 'role-x'"),
    ({"by": ["role-a", "everyone"]}, "journey.start.by[1]: 'everyone' cannot be listed with roles"),
    ({"by": ["everyone", "role-a"]}, "journey.start.by[0]: 'everyone' cannot be listed with roles"),
    ({"by": ["atom-a"]}, "journey.start.by[0]: 'atom-a' is an atom, not a role"),
    ({"by": ["role-a", "role-a"]}, "journey.start.by[1]: duplicate role 'role-a'"),
    ({"by": "role-a"}, "journey.start.by: must be a list of role ids or 'everyone', got 'role-a'"),
    ({"by": [7]}, "journey.start.by[0]: must be the id of a role, got 7"),
    ({"parts": ["phase-x"]}, "journey.start.parts[0]: unknown phase or module 'phase-x'"),
    ({"parts": ["atom-a"]}, "journey.start.parts[0]: 'atom-a' is an atom, not a phase or module of this journey"),
    ({"parts": ["journey-t"]},
     "journey.start.parts[0]: 'journey-t' is a journey, not a phase or module of this journey"),
    ({"parts": ["role-a"]}, "journey.start.parts[0]: 'role-a' is a role, not a phase or module of this journey"),
    ({"parts": ["phase-one", "module-two", "phase-one"]}, "journey.start.parts[2]: duplicate part 'phase-one'"),
    ({"parts": "phase-one"}, "journey.start.parts: must be a list, got 'phase-one'"),
    ({"parts": [["phase-one"]]}, "journey.start.parts[0]: must be the id of a phase or module, got a list"),
    ({"by": ["role-a"], "who": ["role-b"]}, "journey.start.who: unknown key"),
    (["role-a"], "journey.start: must be a mapping, got a list"),
])
def test_a_malformed_start_is_refused_with_its_place(start, problem):
    assert problem in problems_of(with_start(start))


def test_every_problem_of_start_is_reported_at_once():
    problems = problems_of(with_start({"by": ["role-a", "role-x", "everyone"], "parts": ["phase-x", "atom-a"]}))

    assert problems == [
        "journey.start.by[1]: unknown role 'role-x'",
        "journey.start.by[2]: 'everyone' cannot be listed with roles",
        "journey.start.parts[0]: unknown phase or module 'phase-x'",
        "journey.start.parts[1]: 'atom-a' is an atom, not a phase or module of this journey",
    ]


def test_a_role_named_everyone_still_loads_but_makes_the_word_ambiguous():
    data = yaml.safe_load(JOURNEY)
    data["roles"].append({"id": "everyone", "name": "A role of an old file"})

    normalize(data)  # an old file with such a role keeps loading
    data["journey"]["start"] = {"by": "everyone"}

    assert problems_of(data) == [
        "journey.start.by: 'everyone' is also the id of a role of this file (roles[3].id): rename the role"]


# --- the canonical form and the hash ------------------------------------------------------------

def test_a_file_without_start_keeps_the_hash_it_had_before_the_key_existed():
    small = normalize(yaml.safe_load(SMALL_JOURNEY))
    demo = yaml.safe_load(DEMO_FILE.read_text())
    del demo["journey"]["start"]  # the demo file now says who starts it; the rest is as before

    assert "start" not in small["journey"]
    assert definition_hash(small) == SMALL_HASH_BEFORE
    assert definition_hash(normalize(demo)) == DEMO_HASH_BEFORE


@pytest.mark.parametrize("start", [{}, {"parts": []}, {"by": None}, None])
def test_a_start_that_says_nothing_is_no_start_at_all(start):
    plain = normalize(yaml.safe_load(JOURNEY))

    defn = normalize(with_start(start))

    assert "start" not in defn["journey"]
    assert definition_hash(defn) == definition_hash(plain)


@pytest.mark.parametrize(("start", "canonical"), [
    ({"by": "everyone"}, {"by": "everyone"}),
    ({"by": ["everyone"]}, {"by": "everyone"}),
    ({"by": []}, {"by": []}),
    ({"by": ["role-starter", "role-a"]}, {"by": ["role-starter", "role-a"]}),
    ({"parts": ["module-two", "phase-one"]}, {"parts": ["module-two", "phase-one"]}),
    ({"parts": ["phase-one"], "by": ["role-b"]}, {"by": ["role-b"], "parts": ["phase-one"]}),
])
def test_start_is_canonical_and_a_fixed_point(start, canonical):
    defn = normalize(with_start(start))

    assert defn["journey"]["start"] == canonical
    assert list(defn["journey"]["start"]) == list(canonical)  # `by` before `parts`, as dump writes them
    assert normalize(copy.deepcopy(defn)) == defn
    assert definition_hash(defn) != definition_hash(normalize(yaml.safe_load(JOURNEY)))


def test_everyone_written_either_way_is_one_version():
    assert definition_hash(normalize(with_start({"by": "everyone"}))) == \
        definition_hash(normalize(with_start({"by": ["everyone"]})))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("start", [
    {"by": "everyone"}, {"by": []}, {"by": ["role-starter"], "parts": ["phase-two", "module-one"]},
])
def test_dump_loads_back_to_the_same_hash(fmt, start):
    defn = normalize(with_start(start))

    text = dump(defn, fmt)

    assert normalize(parse_text(text, f"exported.{fmt}"))["journey"]["start"] == defn["journey"]["start"]
    assert definition_hash(normalize(parse_text(text, f"exported.{fmt}"))) == definition_hash(defn)


# --- the rule the engine reads, and the observations --------------------------------------------

def test_by_default_the_roles_that_perform_atoms_start_it_and_no_part_starts_alone():
    rule = start_rule(normalize(yaml.safe_load(JOURNEY)))

    assert (rule.everyone, rule.roles, rule.parts, rule.declared) == (False, {"role-a", "role-b"}, frozenset(), False)
    assert rule.allows_part("journey-t") and not rule.allows_part("phase-one")


@pytest.mark.parametrize(("start", "everyone", "roles", "parts"), [
    ({"by": "everyone"}, True, set(), set()),
    ({"by": []}, False, set(), set()),
    ({"by": ["role-starter"], "parts": ["module-two"]}, False, {"role-starter"}, {"module-two"}),
    ({"parts": ["phase-one"]}, False, {"role-a", "role-b"}, {"phase-one"}),
])
def test_a_declared_rule(start, everyone, roles, parts):
    rule = start_rule(normalize(with_start(start)))

    assert (rule.everyone, rule.roles, rule.parts) == (everyone, roles, parts)
    assert rule.declared == ("by" in start)


def test_a_role_that_only_starts_the_journey_is_not_unused():
    unused = "roles[2]: role 'role-starter' performs no atom"

    assert unused in warnings(normalize(yaml.safe_load(JOURNEY)))
    assert unused not in warnings(normalize(with_start({"by": ["role-starter"]})))


def test_an_empty_by_is_pointed_out():
    assert "journey.start.by: an empty list: only administrators can start this journey" in \
        warnings(normalize(with_start({"by": []})))
