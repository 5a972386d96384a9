"""The execution semantics of journey-format.md, on the pure engine core."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processes.engine import core
from processes.engine.blueprint import compile_blueprint
from processes.engine.simulation import simulate

from .strategies import results_for, workflows


def definition(atoms, edges, rules=()):
    return {
        "format": "gndp-journey/1",
        "journey": {"id": "journey-t", "name": "t"},
        "roles": [{"id": "role-x", "name": "X"}],
        "phases": [],
        "atoms": [{"id": a, "name": a, "performed_by": "role-x"} for a in atoms],
        "edges": list(edges),
        "rules": list(rules),
    }


def enables(a, b, **extra):
    return {"type": "ENABLES", "from": a, "to": b, **extra}


def run(bp, order, results=None, context=None):
    """Complete atoms in the given order; return the last step."""
    step = core.start(bp, context or {})
    for atom_id in order:
        step = core.complete(bp, step.runtime, step.context, atom_id, (results or {}).get(atom_id, {}))
    return step


def test_start_activates_start_atoms_whose_dependencies_are_met():
    bp = compile_blueprint(definition(["a", "b", "c"], [enables("a", "c"), {"type": "DEPENDS_ON", "from": "b", "to": "a"}]))

    step = core.start(bp)

    assert step.activated == ["a"]
    assert step.runtime.states == {"a": "active", "b": "waiting", "c": "waiting"}


def test_conditional_edge_fires_and_default_is_dead():
    bp = compile_blueprint(definition(
        ["a", "good", "bad"],
        [enables("a", "good", condition={"field": "score", "operator": "gte", "value": 620}),
         enables("a", "bad", default=True)],
    ))

    step = run(bp, ["a"], context={"score": 700})

    assert step.runtime.states["good"] == "active"
    assert step.runtime.states["bad"] == "skipped"
    assert step.skipped == ["bad"]


def test_default_edge_fires_when_no_conditional_edge_fired():
    bp = compile_blueprint(definition(
        ["a", "good", "bad"],
        [enables("a", "good", condition={"field": "score", "operator": "gte", "value": 620}),
         enables("a", "bad", default=True)],
    ))

    step = run(bp, ["a"], results={"a": {"score": 500}})

    assert step.runtime.states["good"] == "skipped"
    assert step.runtime.states["bad"] == "active"


def test_and_join_waits_for_every_branch():
    bp = compile_blueprint(definition(
        ["s", "x", "y", "j"], [enables("s", "x"), enables("s", "y"), enables("x", "j"), enables("y", "j")]
    ))

    after_x = run(bp, ["s", "x"])
    after_y = run(bp, ["s", "x", "y"])

    assert after_x.runtime.states["j"] == "waiting"
    assert after_y.activated == ["j"]


def test_join_fires_once_dead_branch_is_eliminated():
    bp = compile_blueprint(definition(
        ["s", "x", "y", "j"],
        [enables("s", "x", condition={"field": "go", "operator": "eq", "value": True}),
         enables("s", "y"), enables("x", "j"), enables("y", "j")],
    ))

    step = run(bp, ["s", "y"], context={"go": False})

    assert step.runtime.states["x"] == "skipped"
    assert step.runtime.states["j"] == "active"


def test_skip_propagates_down_a_chain_and_process_completes():
    bp = compile_blueprint(definition(
        ["a", "b", "c", "d"],
        [enables("a", "b", condition={"field": "go", "operator": "exists"}), enables("b", "c"), enables("a", "d")],
    ))

    step = run(bp, ["a", "d"])

    assert step.runtime.states == {"a": "completed", "b": "skipped", "c": "skipped", "d": "completed"}
    assert step.completed


def test_depends_on_waits_and_skipped_dependency_counts_as_satisfied():
    bp = compile_blueprint(definition(
        ["a", "b", "c"],
        [enables("a", "b", condition={"field": "never", "operator": "exists"}), enables("a", "c"),
         {"type": "DEPENDS_ON", "from": "c", "to": "b"}],
    ))

    step = run(bp, ["a"])

    assert step.runtime.states["b"] == "skipped"
    assert step.runtime.states["c"] == "active"


def test_depends_on_holds_an_enabled_atom_until_its_dependency_completes():
    bp = compile_blueprint(definition(
        ["a", "b", "c"], [enables("a", "c"), {"type": "DEPENDS_ON", "from": "c", "to": "b"}],
    ))

    waiting = run(bp, ["a"])
    done = run(bp, ["a", "b"])

    assert waiting.runtime.states["c"] == "waiting"
    assert done.activated == ["c"]


def test_completing_an_inactive_atom_is_refused():
    bp = compile_blueprint(definition(["a", "b"], [enables("a", "b")]))
    step = core.start(bp)

    with pytest.raises(core.AtomNotActive):
        core.complete(bp, step.runtime, step.context, "b", {})


def test_result_is_validated_against_the_form():
    raw = definition(["a"], [])
    raw["atoms"][0]["form"] = [{"name": "amount", "type": "number", "required": True},
                               {"name": "kind", "type": "choice", "choices": ["x", "y"]}]
    bp = compile_blueprint(raw)
    step = core.start(bp)

    with pytest.raises(core.InvalidResult) as exc:
        core.complete(bp, step.runtime, step.context, "a", {"amount": "12", "kind": "z", "extra": 1})

    assert exc.value.problems == {
        "amount": "must be a number", "kind": "must be one of ['x', 'y']", "extra": "is not a field of this step's form",
    }


def test_result_merges_into_context_last_write_wins():
    bp = compile_blueprint(definition(["a", "b"], [enables("a", "b")]))

    step = run(bp, ["a", "b"], results={"a": {"k": 1, "j": 1}, "b": {"k": 2}}, context={"z": 0})

    assert step.context == {"z": 0, "k": 2, "j": 1}


def test_container_ignores_edges_that_leave_it(small_definition):
    from processes.journey import normalize

    bp = compile_blueprint(normalize(small_definition), "module-review")

    assert list(bp.atoms) == ["atom-manual", "atom-open", "atom-a", "atom-b", "atom-join", "atom-done"]
    assert set(bp.start_atoms) == {"atom-manual"}


# --- properties over random workflows ------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_process_ends_no_atom_runs_twice_and_joins_wait(data):
    raw = data.draw(workflows())
    bp = compile_blueprint(raw)
    results = data.draw(results_for(list(bp.atoms)))
    context = {"x": data.draw(st.integers(0, 10))}

    step = core.start(bp, context)
    activated = list(step.activated)
    withdrawn: list[str] = []
    runs = 1 + sum(edge.max_iterations for edge in bp.edges if edge.loop)  # each loop's region, as often as it may
    for _ in range(len(bp.atoms) * runs + 1):
        active = [a for a, s in step.runtime.states.items() if s == core.ACTIVE]
        if not active:
            break
        atom_id = data.draw(st.sampled_from(active))  # any interleaving of parallel work
        before = step.runtime
        step = core.complete(bp, before, step.context, atom_id, results[atom_id])
        if step.incident is not None:
            # A loop at its limit: the process stops there with nothing changed (an incident).
            assert step.incident["code"] == core.LOOP_LIMIT and step.runtime == before
            return
        if step.repeated:
            activated = [a for a in activated if a not in bp.regions[(atom_id, step.repeated[0]["to"])]]
        for new in step.activated:
            # A join never fires before all its branches (and dependencies) are decided.
            assert all(step.runtime.states[e.source] in core.DECIDED for e in bp.incoming[new])
            assert all(step.runtime.states[d] in core.DECIDED for d in bp.depends_on[new])
            assert any(step.runtime.edge_fired(e.source, new) for e in bp.incoming[new]) or not bp.incoming[new]
        activated.extend(step.activated)
        withdrawn.extend(step.withdrawn)
        if atom_id in bp.rivals:  # a race's winner: no rival runs on
            assert all(step.runtime.states[rival] in (core.SKIPPED, core.COMPLETED) for rival in bp.rivals[atom_id])
            assert step.runtime.states[atom_id] == core.COMPLETED

    assert step.completed, step.runtime.states
    assert len(activated) == len(set(activated)), "an atom ran twice"
    completed = {a for a, s in step.runtime.states.items() if s == core.COMPLETED}
    assert completed == set(activated) - set(withdrawn)
    for racers in {tuple(sorted([a, *rivals])) for a, rivals in bp.rivals.items()}:
        assert sum(step.runtime.states[a] == core.COMPLETED for a in racers) <= 1, "a race with two winners"


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_simulation_visits_exactly_what_a_file_order_run_completes(data):
    raw = data.draw(workflows())
    bp = compile_blueprint(raw)
    results = data.draw(results_for(list(bp.atoms)))

    outcome = simulate(bp, {}, results)

    step = core.start(bp, {})
    order = []
    stopped = False  # at a loop's limit
    while True:
        active = sorted((a for a, s in step.runtime.states.items() if s == core.ACTIVE), key=lambda a: bp.atoms[a].position)
        if not active:
            break
        after = core.complete(bp, step.runtime, step.context, active[0], results[active[0]])
        if after.incident is not None:
            stopped = True
            break
        step = after
        order.append(active[0])
    assert outcome.success is not stopped
    assert outcome.visited_atoms == order
    if not stopped:
        assert set(outcome.skipped_atoms) == {a for a, s in step.runtime.states.items() if s == core.SKIPPED}


# --- choices: first match, and the first to be done ------------------------------------------

def with_keys(raw, atom_id, **keys):
    next(atom for atom in raw["atoms"] if atom["id"] == atom_id).update(keys)
    return raw


def test_choose_first_fires_only_the_first_conditional_edge_that_holds():
    raw = definition(["a", "big", "any", "else"], [
        enables("a", "big", condition={"field": "x", "operator": "gt", "value": 5}),
        enables("a", "any", condition={"field": "x", "operator": "gt", "value": 0}),
        enables("a", "else", default=True),
    ])
    overlapping = compile_blueprint(raw)
    exclusive = compile_blueprint(with_keys(raw, "a", choose="first"))

    assert run(overlapping, ["a"], context={"x": 9}).runtime.fired["a"] == {"big", "any"}
    assert run(exclusive, ["a"], context={"x": 9}).runtime.fired["a"] == {"big"}
    assert run(exclusive, ["a"], context={"x": 1}).runtime.fired["a"] == {"any"}
    assert run(exclusive, ["a"], context={"x": 0}).runtime.fired["a"] == {"else"}


def race():
    # a offers three ways on; whichever is done first wins, and the join after them runs once.
    raw = definition(["a", "r1", "r2", "r3", "join"], [
        enables("a", "r1"), enables("a", "r2"), enables("a", "r3", condition={"field": "x", "operator": "eq", "value": 1}),
        enables("r1", "join"), enables("r2", "join"), enables("r3", "join"),
    ])
    return compile_blueprint(with_keys(raw, "a", then="first_done"))


def test_the_first_racer_to_complete_withdraws_the_others():
    bp = race()
    step = run(bp, ["a"], context={"x": 1})
    assert step.activated == ["r1", "r2", "r3"]

    step = core.complete(bp, step.runtime, step.context, "r2", {})

    assert step.runtime.states == {"a": "completed", "r1": "skipped", "r2": "completed", "r3": "skipped",
                                   "join": "active"}
    assert step.withdrawn == ["r1", "r3"]
    assert set(step.skipped) == {"r1", "r3"}
    assert step.activated == ["join"]
    with pytest.raises(core.AtomNotActive):
        core.complete(bp, step.runtime, step.context, "r1", {})


def test_a_racer_whose_edge_did_not_fire_is_skipped_before_the_race():
    bp = race()
    step = run(bp, ["a"], context={"x": 0})
    assert step.runtime.states["r3"] == "skipped" and step.activated == ["r1", "r2"]

    step = core.complete(bp, step.runtime, step.context, "r1", {})

    assert step.withdrawn == ["r2"]
    assert step.completed is False and step.runtime.states["join"] == "active"


def test_a_racer_waiting_on_a_dependency_loses_too():
    raw = definition(["a", "r1", "r2", "gate"], [
        enables("a", "r1"), enables("a", "r2"), {"type": "DEPENDS_ON", "from": "r2", "to": "gate"},
    ])
    bp = compile_blueprint(with_keys(raw, "a", then="first_done"))
    step = run(bp, ["a"])
    assert step.runtime.states["r2"] == "waiting"

    step = core.complete(bp, step.runtime, step.context, "r1", {})

    assert step.runtime.states["r2"] == "skipped"
    assert step.withdrawn == []  # it had no open work


def test_withdrawing_a_step_skips_it_and_the_flow_goes_on():
    bp = compile_blueprint(definition(["a", "b", "c", "join"], [
        enables("a", "b"), enables("a", "c"), enables("b", "join"), enables("c", "join"),
    ]))
    step = run(bp, ["a"])

    step = core.withdraw(bp, step.runtime, step.context, "b")

    assert step.runtime.states["b"] == "skipped" and step.withdrawn == ["b"]
    assert step.runtime.states["join"] == "waiting"  # c is still to be decided
    step = core.complete(bp, step.runtime, step.context, "c", {})
    assert step.activated == ["join"]
    with pytest.raises(core.AtomNotActive):
        core.withdraw(bp, step.runtime, step.context, "b")


def test_withdrawing_the_only_way_on_skips_what_follows():
    bp = compile_blueprint(definition(["a", "b"], [enables("a", "b")]))

    step = core.withdraw(bp, core.start(bp).runtime, {}, "a")

    assert step.runtime.states == {"a": "skipped", "b": "skipped"} and step.completed


def test_a_racer_that_depends_on_the_winner_loses_and_never_activates():
    raw = definition(["a", "r1", "r2"], [enables("a", "r1"), enables("a", "r2"),
                                        {"type": "DEPENDS_ON", "from": "r2", "to": "r1"}])
    bp = compile_blueprint(with_keys(raw, "a", then="first_done"))

    step = core.complete(bp, run(bp, ["a"]).runtime, {}, "r1", {})

    assert step.runtime.states["r2"] == "skipped"
    assert step.activated == [] and step.withdrawn == []
    assert step.completed


# --- rework loops ---------------------------------------------------------------------------------

def rework(max_iterations=2, **back):
    raw = definition(["start", "prep", "check", "review", "close"], [
        enables("start", "prep"), enables("prep", "check"), enables("check", "review"),
        enables("review", "close", condition={"field": "ok", "operator": "eq", "value": True}),
        enables("review", "prep", loop=True, default=True, max_iterations=max_iterations, **back),
    ])
    return compile_blueprint(raw)


def test_a_back_edge_runs_its_region_again_and_counts_the_run():
    bp = rework()
    assert bp.regions == {("review", "prep"): frozenset({"prep", "check", "review"})}
    assert bp.start_atoms == ("start",)  # the back edge into prep does not hold it back

    step = run(bp, ["start", "prep", "check", "review"], results={"review": {"ok": False}})

    assert dict(step.runtime.states) == {"start": "completed", "prep": "active", "check": "waiting",
                                         "review": "waiting", "close": "waiting"}
    assert step.repeated == [{"from": "review", "to": "prep", "iteration": 2}]
    assert step.activated == ["prep"] and step.fired == {"prep"}
    assert "review" not in step.runtime.fired and "check" not in step.runtime.fired  # undecided again
    assert core.iteration(bp, step.runtime, "check") == 2 and core.iteration(bp, step.runtime, "start") == 1

    for atom_id, result in (("prep", {}), ("check", {}), ("review", {"ok": True}), ("close", {})):
        step = core.complete(bp, step.runtime, step.context, atom_id, result)
    assert step.completed and step.runtime.edge_fired("review", "prep") is False


def test_past_its_limit_a_loop_changes_nothing_and_an_allowance_lets_it_run_once_more():
    bp = rework(max_iterations=1)
    before = run(bp, ["start", "prep", "check"])

    held = core.complete(bp, before.runtime, before.context, "review", {"ok": False})

    assert held.incident == {"code": "loop_limit", "atom": "review", "to": "prep", "iteration": 1}
    assert held.runtime == before.runtime and held.context == before.context
    allowed = core.allow_one_more(bp, before.runtime, "review")
    step = core.complete(bp, allowed, before.context, "review", {"ok": False})
    assert step.incident is None and step.runtime.loops == {"review>prep": {"iteration": 2, "extra": 1}}


def test_a_self_loop_and_nested_loops_count_each_region_on_its_own():
    raw = definition(["a", "b", "c"], [
        enables("a", "b"), enables("b", "c"),
        enables("b", "b", loop=True, condition={"field": "again", "operator": "eq", "value": True}),
        enables("c", "a", loop=True, condition={"field": "outer", "operator": "eq", "value": True}),
    ])
    bp = compile_blueprint(raw)
    assert bp.region_of == {"a": ("c", "a"), "b": ("b", "b"), "c": ("c", "a")}

    step = run(bp, ["a", "b", "b"], results={"b": {"again": True}})
    assert step.runtime.loops == {"b>b": {"iteration": 3}} and core.iteration(bp, step.runtime, "b") == 3
    step = core.complete(bp, step.runtime, step.context, "b", {"again": False})
    step = core.complete(bp, step.runtime, step.context, "c", {"outer": True})

    # The outer loop ran again: the inner one starts counting afresh.
    assert step.runtime.loops == {"c>a": {"iteration": 2}}
    assert core.iteration(bp, step.runtime, "b") == 1 and core.iteration(bp, step.runtime, "a") == 2
