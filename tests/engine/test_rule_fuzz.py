"""S4, the hostile half: random trees built to break the rule interpreter (dunder and
attribute paths, operators outside the allowlist, type confusion, nesting thousands of levels
deep) are only ever refused with a validation error, each in under 10 ms, and a journey that
carries one is refused at deploy with a 400 and nothing stored."""

from __future__ import annotations

import copy
import time

import pytest
import yaml
from django.conf import settings as django_settings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from processes.engine import rules
from processes.engine.rules import ConditionError, evaluate, validate_condition
from processes.models import WorkflowVersion
from tests.factories import UserFactory
from tests.fixtures import SMALL_JOURNEY

BUDGET = 0.010  # seconds, validation and evaluation together

dunder_paths = st.sampled_from([
    "__class__", "__class__.__mro__", "a.__globals__", "__init__.__globals__.os", "a.__dict__", "__builtins__",
    "a.b.__subclasses__", "_.__class__", "a..b", ".a", "a.", "A", "a.B", "a b", "a/b", "a[0]", "a.0", "ä", "a" * 300,
    "a.b.c.d.e.f.g.h.i", "", "__", "a.__", "\x00", "a\nb",
])
paths = dunder_paths | st.sampled_from(["a", "b", "a.b", "credit_score"]) | st.text(max_size=12) | st.integers()
operators = st.sampled_from(sorted(rules.OPERATORS)) | st.sampled_from(
    ["__import__", "eval", "exec", "__class__", "getattr", "regex", "matches", "EQ", "", "lambda"]) | st.none()
# Type confusion: the same "number" as int, float, string, bool; and shapes an operator does not take.
confused = st.sampled_from([620, 620.0, "620", True, False, None, [620], {"value": 620}, [], [1, 2, 3], ["a", 1],
                            [1, "b"], [2, 1], 1e308, -0.0, 10**40, "", "x" * 1000])
values = confused | st.floats() | st.integers() | st.text(max_size=8) | st.lists(confused, max_size=4)


@st.composite
def leaves(draw):
    leaf = {}
    if draw(st.integers(0, 9)):
        leaf["field"] = draw(paths)
    if draw(st.integers(0, 9)):
        leaf["operator"] = draw(operators)
    if draw(st.booleans()):
        leaf["value"] = draw(values)
    if not draw(st.integers(0, 6)):
        leaf[draw(st.sampled_from(["op", "__class__", "all", "any", "not", "extra", 1]))] = draw(values)
    return leaf


def groups(children):
    return (st.builds(lambda items: {"all": items}, st.lists(children, max_size=3))
            | st.builds(lambda items: {"any": items}, st.lists(children, max_size=3))
            | st.builds(lambda child: {"not": child}, children)
            | st.builds(lambda items: {"all": items, "any": items}, st.lists(children, max_size=2))
            | st.lists(children, max_size=3)
            | children.map(lambda child: {"not": [child]}))


@st.composite
def hostile(draw):
    """A random tree, then wrapped in up to 20,000 more levels of groups."""
    tree = draw(st.recursive(leaves() | values, groups, max_leaves=12))
    wrappers = draw(st.lists(st.sampled_from(["not", "all", "any", "list"]), min_size=1, max_size=4))
    for level in range(draw(st.sampled_from([0, 0, 1, 31, 32, 33, 500, 800, 20_000]))):
        kind = wrappers[level % len(wrappers)]
        tree = {"not": tree} if kind == "not" else [tree] if kind == "list" else {kind: [tree]}
    return tree


contexts = st.dictionaries(st.sampled_from(["a", "b", "credit_score", "__class__"]),
                           confused | st.dictionaries(st.sampled_from(["b", "c", "__class__"]), confused), max_size=4)


def _interpret(cond, context) -> None:
    problems = validate_condition(cond, "condition")  # the place evaluate reports problems at
    assert all(isinstance(problem, str) and problem.startswith("condition") for problem in problems)
    try:
        assert evaluate(cond, context) in (True, False)
    except ConditionError as exc:
        assert problems and exc.problems == problems[:rules.EVALUATION_PROBLEMS]
    else:
        assert not problems


def _fastest_of_three(func) -> float:
    best = float("inf")
    for _ in range(3):  # the best of three on this thread's CPU clock: the budget is the
        started = time.thread_time()  # interpreter's, not the scheduler's
        func()
        best = min(best, time.thread_time() - started)
    return best


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cond=hostile(), context=contexts)
def test_hostile_trees_get_only_validation_errors_each_within_10_ms(cond, context):
    elapsed = _fastest_of_three(lambda: _interpret(cond, context))

    assert elapsed < BUDGET, f"{elapsed * 1000:.1f} ms"


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(cond=hostile())
def test_a_journey_with_a_hostile_condition_is_refused_at_deploy(cond):
    assume(validate_condition(cond, "c"))
    # Only what a journey body may carry: GNDP_JOURNEY_MAX_DEPTH levels in all, three of them
    # the journey's own (body, edges, edge). Deeper bodies are refused before parsing (400
    # too_deep, tests/security/test_bad_input.py).
    assume(rules.json_problems(cond, "c", max_depth=django_settings.GNDP_JOURNEY_MAX_DEPTH - 2) == [])
    admin = UserFactory(username="deployer", is_superuser=True)
    api = APIClient()
    api.force_authenticate(admin)
    journey = yaml.safe_load(SMALL_JOURNEY)
    journey["edges"][1] = {"type": "ENABLES", "from": "atom-score", "to": "atom-open", "condition": copy.deepcopy(cond)}

    response = api.post("/api/journeys/import", journey, format="json")

    assert response.status_code == 400, response.content
    problems = response.json()["error"]["details"]["problems"]
    assert problems and any(problem.startswith("edges[1].condition") for problem in problems)
    assert not WorkflowVersion.objects.exists()
