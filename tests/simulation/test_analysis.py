"""The rule reasoning behind the warnings: what it claims is true."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processes.engine import rules
from processes.engine.analysis import ANY, SAT, UNKNOWN, UNSAT, Domain, rule_warnings, solve, witness_context
from processes.engine.blueprint import compile_blueprint
from processes.engine.simulation import simulate

from .strategies import conditions, contexts, results_for, rich_workflows

INTEGER = Domain(frozenset({"integer"}), may_be_missing=False, required=True)


def leaf(operator, value=None, field="x"):
    node = {"field": field, "operator": operator}
    if operator != "exists":
        node["value"] = value
    return node


def test_interval_reasoning_on_numbers():
    assert solve({"all": [leaf("gt", 5), leaf("lt", 3)]}).status == UNSAT
    assert solve({"all": [leaf("gte", 5), leaf("lte", 5)]}).witness == {"x": 5}
    assert solve({"all": [leaf("gt", 5), leaf("lt", 6)]}).status == SAT  # 5.5
    assert solve({"all": [leaf("gt", 5), leaf("lt", 6)]}, lambda path: INTEGER).status == UNSAT
    assert solve({"all": [leaf("between", [1, 3]), {"not": leaf("between", [0, 4])}]}).status == UNSAT


def test_set_reasoning_on_eq_and_in():
    assert solve({"all": [leaf("in", ["a", "b"]), leaf("not_in", ["a", "b"])]}).status == UNSAT
    assert solve({"all": [leaf("eq", "a"), leaf("ne", "a")]}).status == UNSAT
    assert solve({"all": [leaf("in", ["a", "b", "c"]), leaf("not_in", ["a", "b"])]}).witness == {"x": "c"}
    assert solve(leaf("in", [])).status == UNSAT


def test_types_never_mix():
    # 1 is not "1" and True is not 1: each is a different value, so both can hold at once.
    assert solve({"all": [leaf("eq", 1), leaf("eq", "1")]}).status == UNSAT
    assert solve({"all": [leaf("gt", 0), leaf("startswith", "a")]}).status == UNSAT
    assert solve({"all": [{"not": leaf("eq", 1)}, {"not": leaf("eq", True)}]}).status == SAT


def test_a_missing_field_makes_every_operator_but_exists_false():
    verdict = solve({"all": [{"not": leaf("gte", 5)}, {"not": leaf("lt", 5)}]})

    assert verdict.status == SAT and verdict.witness == {"x": rules.MISSING}
    assert solve({"all": [leaf("exists"), {"not": leaf("exists")}]}).status == UNSAT


def test_what_it_cannot_decide_it_does_not_claim():
    # `p` and `p.q` constrain each other; strings between close bounds are not enumerated.
    assert solve({"all": [leaf("eq", 1, "p"), leaf("eq", 2, "p.q")]}).status == UNKNOWN
    assert solve({"all": [leaf("gt", "ab"), leaf("lt", "ab\u0001")]}).status == UNKNOWN


@settings(max_examples=300, deadline=None)
@given(cond=conditions(), samples=st.lists(contexts(), min_size=20, max_size=40))
def test_sat_has_a_true_witness_and_unsat_has_no_counterexample(cond, samples):
    verdict = solve(cond)

    if verdict.status == SAT:
        assert rules.evaluate(cond, witness_context(verdict.witness))
    if verdict.status == UNSAT:
        assert not any(rules.evaluate(cond, context) for context in samples)


@settings(max_examples=150, deadline=None)
@given(cond=conditions(fields=("x",)), values=st.lists(st.integers(-6, 6), min_size=13, max_size=13, unique=True))
def test_on_a_required_integer_field_unsat_has_no_counterexample(cond, values):
    verdict = solve(cond, lambda path: INTEGER)

    if verdict.status == UNSAT:
        assert not any(rules.evaluate(cond, {"x": value}) for value in values)
    if verdict.status == SAT:
        assert isinstance(verdict.witness["x"], int) and rules.evaluate(cond, witness_context(verdict.witness))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_an_atom_called_unreachable_is_never_visited(data):
    raw = data.draw(rich_workflows())
    blueprint = compile_blueprint(raw)
    warnings = rule_warnings(blueprint, raw)
    unreachable = {line.split("'")[1] for line in warnings if "unreachable" in line}

    for _ in range(5):
        results = data.draw(results_for(list(blueprint.atoms)))
        context = data.draw(contexts())
        outcome = simulate(blueprint, context, results)
        assert not unreachable & set(outcome.visited_atoms)


def test_an_edge_an_earlier_one_always_takes_first_is_reported_under_choose_first():
    from .journeys import enables, human, journey, score_form
    from processes.journey import normalize

    edges = [enables("atom-a", "atom-b", condition={"field": "score", "operator": "gte", "value": 1}),
             enables("atom-a", "atom-c", condition={"field": "score", "operator": "gte", "value": 5}),
             enables("atom-a", "atom-z", default=True)]
    atoms = [human("atom-a", form=score_form()), human("atom-b"), human("atom-c"), human("atom-z")]
    overlapping = normalize(journey(atoms, edges))
    exclusive = normalize(journey([{**atoms[0], "choose": "first"}, *atoms[1:]], edges))

    assert rule_warnings(compile_blueprint(overlapping), overlapping) == []
    found = rule_warnings(compile_blueprint(exclusive), exclusive)
    assert found == [
        "edges[1]: atom-a -> atom-c never fires: with choose: first, an earlier edge fires whenever its condition holds",
        "atoms[2]: atom 'atom-c' is unreachable: no context makes an edge into it fire",
    ]


def test_a_loop_that_always_runs_again_is_reported():
    from .journeys import enables, human, journey, score_form
    from processes.journey import normalize

    atoms = [human("atom-a"), human("atom-b", form=score_form()), human("atom-c")]
    ending = [enables("atom-a", "atom-b"),
              enables("atom-b", "atom-c", condition={"field": "score", "operator": "gte", "value": 5}),
              enables("atom-b", "atom-a", loop=True, default=True, max_iterations=3)]
    endless = [*ending[:1], {**ending[1], "condition": {"field": "score", "operator": "gt", "value": 10 ** 9}},
               enables("atom-b", "atom-a", loop=True, condition={"field": "score", "operator": "exists"})]

    assert rule_warnings(*twice(normalize(journey(atoms, ending)))) == []
    assert "edges[2]: the loop atom-b -> atom-a always runs again: every process stops at its limit (10 runs)" in \
        rule_warnings(*twice(normalize(journey(atoms, endless))))


def twice(definition):
    return compile_blueprint(definition), definition
