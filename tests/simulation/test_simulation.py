"""Dry runs: the path, every decision and why, coverage, and the page's data."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from processes import simulation
from processes.engine.blueprint import compile_blueprint
from processes.engine.simulation import edge_rule_ids, explain_condition, simulate
from processes.journey import normalize
from processes.models import ProcessEvent, ProcessInstance
from processes.versions import publish_journey
from tasks.models import TaskInstance

from .journeys import CLEAN, enables, human, journey
from .strategies import contexts, results_for, rich_workflows

HIGH = {"atom-apply": {"score": 700, "ssn": "123-45-6789"}}
LOW_DECLINED = {"atom-apply": {"score": 500}, "atom-manual": {"decision": "decline"}}


@pytest.fixture
def clean(db):
    return publish_journey(copy.deepcopy(CLEAN)).version


def decision(report, source, target):
    return next(d for d in report["decisions"] if d["from"] == source and d["to"] == target)


def test_a_dry_run_reports_path_decisions_and_duration_and_writes_nothing(clean):
    report = simulation.dry_run("journey-clean", {}, HIGH)

    assert report["success"] is True
    assert report["visited_atoms"] == ["atom-apply", "atom-score", "atom-fast", "atom-open", "atom-a", "atom-b",
                                       "atom-join", "atom-done"]
    assert report["skipped_atoms"] == ["atom-manual"]
    assert report["predicted_duration"] == "PT10H"  # apply 4h, open 2h, the longer leg a 3h, join 1h
    rule_edge = decision(report, "atom-apply", "atom-fast")
    assert rule_edge == {
        "atom": "atom-apply", "from": "atom-apply", "to": "atom-fast", "edge": "edges[1]", "kind": "conditional",
        "fired": True, "reason": "rule rule-good-score held: all of [score gte 620 (actual 700: true)]",
        "rules": [{"rule_id": "rule-good-score", "held": True, "all": [
            {"field": "score", "operator": "gte", "expected": 620, "actual": 700, "present": True, "held": True}]}],
    }
    assert decision(report, "atom-apply", "atom-manual")["fired"] is False
    assert decision(report, "atom-apply", "atom-manual")["reason"] == "default: the conditional edge to atom-fast fired"
    assert decision(report, "atom-apply", "atom-score")["kind"] == "unconditional"
    assert {"from": "atom-apply", "to": "atom-fast"} in report["fired_edges"]
    assert ProcessInstance.objects.count() == TaskInstance.objects.count() == ProcessEvent.objects.count() == 0


def test_the_other_branch_and_an_inline_condition(clean):
    report = simulation.dry_run("journey-clean", {}, LOW_DECLINED)

    assert report["visited_atoms"] == ["atom-apply", "atom-score", "atom-manual", "atom-done"]
    assert decision(report, "atom-apply", "atom-fast")["rules"][0]["all"][0]["actual"] == 500
    inline = decision(report, "atom-manual", "atom-open")
    assert inline["fired"] is False and inline["rules"][0]["rule_id"] is None
    assert inline["reason"] == "condition did not hold: decision eq 'approve' (actual 'decline': false)"
    assert decision(report, "atom-manual", "atom-done")["reason"] == "default: no conditional edge fired"


def test_the_simulate_command_prints_the_same_report(clean, capsys):
    call_command("simulate", "journey-clean", "--results", json.dumps(HIGH))

    printed = json.loads(capsys.readouterr().out)
    expected = simulation.dry_run("journey-clean", {}, HIGH)
    assert printed == {key: value for key, value in expected.items() if key not in ("journey_id", "version")}


def test_sensitive_values_are_redacted_in_the_explanation():
    cond = {"all": [{"field": "ssn", "operator": "startswith", "value": "123"}, {"field": "score", "operator": "exists"}]}

    explained = explain_condition(cond, {"ssn": "123-45-6789", "score": 1}, redact=frozenset({"ssn"}))

    assert explained["all"][0]["actual"] == "[redacted]" and explained["all"][0]["held"] is True
    assert explained["all"][1]["actual"] == 1


def test_an_edge_with_two_rules_and_a_condition_is_explained_rule_by_rule():
    raw = journey([human("atom-a"), human("atom-b"), human("atom-z")], [
        enables("atom-a", "atom-b", rules=["rule-big", "rule-known"], condition={"field": "ok", "operator": "eq", "value": True}),
        enables("atom-a", "atom-z", default=True),
    ], [{"rule_id": "rule-big", "conditions": [{"field": "x", "operator": "gt", "value": 5}]},
        {"rule_id": "rule-known", "conditions": {"field": "x", "operator": "exists"}}])
    definition = normalize(raw)

    outcome = simulate(compile_blueprint(definition), {"x": 9, "ok": False}, edge_rules=edge_rule_ids(definition))

    rules_seen = outcome.decisions[0]["rules"]
    assert [(r["rule_id"], r["held"]) for r in rules_seen] == [("rule-big", True), ("rule-known", True), (None, False)]
    assert outcome.decisions[0]["fired"] is False and outcome.visited_atoms == ["atom-a", "atom-z"]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_decision_record_agrees_with_the_engine(data):
    raw = data.draw(rich_workflows())
    blueprint = compile_blueprint(raw)
    outcome = simulate(blueprint, data.draw(contexts()), data.draw(results_for(list(blueprint.atoms))))

    for record in outcome.decisions:
        siblings = [d for d in outcome.decisions if d["atom"] == record["atom"]]
        if record["reason"].startswith("not decided: the loop back to"):
            assert record["fired"] is False  # a back edge of the same decision fired
            continue
        if record["kind"] == "conditional":
            held = all(rule["held"] for rule in record["rules"])
            earlier = siblings[:siblings.index(record)]
            beaten = blueprint.atoms[record["atom"]].choose == "first" and any(
                d["fired"] for d in earlier if d["kind"] == "conditional")
            assert record["fired"] == (held and not beaten)
            assert ("choose: first" in record["reason"]) == (held and beaten)
        elif record["kind"] == "default":
            assert record["fired"] == (not any(d["fired"] for d in siblings if d["kind"] == "conditional"))
        else:
            assert record["fired"] is True
    fired = {(e["from"], e["to"]) for e in outcome.fired_edges}
    assert all((d["from"], d["to"]) in fired for d in outcome.decisions if d["fired"])


def test_coverage_shows_what_the_cases_left_untested(clean):
    report = simulation.coverage_of("journey-clean", [{"name": "good score", "results": HIGH}])

    assert report["atoms"]["uncovered"] == ["atom-manual"]
    assert report["atoms"]["ratio"] == round(8 / 9, 4)
    assert {"from": "atom-manual", "to": "atom-open"} in report["edges"]["uncovered"]
    branch = next(b for b in report["branches"] if b["to"] == "atom-fast")
    assert (branch["fired"], branch["not_fired"], branch["complete"]) == (1, 0, False)
    assert report["cases"] == [{"name": "good score", "success": True, "visited_atoms": [
        "atom-apply", "atom-score", "atom-fast", "atom-open", "atom-a", "atom-b", "atom-join", "atom-done"], "errors": []}]


def test_cases_that_take_every_branch_cover_everything(clean):
    approved = {"atom-apply": {"score": 500}, "atom-manual": {"decision": "approve"}}

    report = simulation.coverage_of("journey-clean", [{"results": HIGH}, {"results": LOW_DECLINED}, {"results": approved}])

    assert report["atoms"]["uncovered"] == [] and report["edges"]["uncovered"] == []
    assert all(branch["complete"] for branch in report["branches"])


def test_the_page_gets_the_graph_with_the_path_and_the_prediction(clean):
    page = simulation.simulation_page("journey-clean", {}, HIGH, runs=200)

    nodes = {node["id"]: node for node in page["graph"]["nodes"]}
    assert page["journey"] == {"id": "journey-clean", "root_journey_id": "journey-clean", "name": "Clean", "version": 1}
    assert (nodes["atom-apply"]["state"], nodes["atom-apply"]["order"]) == ("completed", 1)
    assert (nodes["atom-manual"]["state"], nodes["atom-manual"]["order"]) == ("skipped", None)
    assert nodes["atom-apply"]["module"] == "module-all" and nodes["atom-apply"]["visit_probability"] == 1.0
    edge = next(e for e in page["graph"]["edges"] if (e["from"], e["to"]) == ("atom-apply", "atom-fast"))
    assert edge["fired"] is True and edge["decision"]["kind"] == "conditional"
    assert next(e for e in page["graph"]["edges"] if e["type"] == "DEPENDS_ON")["fired"] is None
    assert page["simulation"]["visited_atoms"][0] == "atom-apply"
    assert page["prediction"]["runs"] == 200 and page["prediction"]["source"] == "sla"
