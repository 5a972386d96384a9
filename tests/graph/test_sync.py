"""Executing what is already in the graph store: `manage.py sync_journeys`, its periodic job
and its admin action publish the journeys the store holds, validated as files are. On the
embedded store, and on the Neo4j store over FalkorDB with a journey drawn by raw Cypher
(nodes without journey_id, as another tool would draw it)."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from processes import graph, handlers, jobs, services
from processes.graph.base import JourneySummary
from processes.graph.embedded import EmbeddedGraphStore
from processes.graph.neo4j_store import GraphStoreUnavailable
from processes.journey import definition_hash, normalize
from processes.models import WorkflowVersion
from tests.factories import UserFactory
from tests.fixtures import SMALL_JOURNEY
from tests.graph.falkordb import graph_query


def small() -> dict:
    return normalize(yaml.safe_load(SMALL_JOURNEY), known_handlers=handlers.names())


def renamed(definition: dict, journey_id: str) -> dict:
    other = copy.deepcopy(definition)
    other["journey"]["id"] = journey_id
    return other


def with_unknown_handler(definition: dict) -> dict:
    """Valid but for a handler this installation does not have (what another tool may draw)."""
    broken = copy.deepcopy(definition)
    broken["atoms"][1]["handler"] = "no_such_handler"
    return broken


def run_sync(capsys) -> tuple[int, list[str], str]:
    try:
        call_command("sync_journeys")
        code = 0
    except SystemExit as exited:
        code = exited.code
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


# --- on the embedded store -----------------------------------------------------------------------

def test_sync_publishes_each_changed_journey_once(db, capsys):
    # given: two journeys in the graph store, never published
    store = EmbeddedGraphStore()
    store.save_journey(small())
    store.save_journey(renamed(small(), "journey-twin"))

    # when: synced twice
    first = run_sync(capsys)
    second = run_sync(capsys)

    # then
    assert first == (0, ["journey-small: published (new version 1)", "journey-twin: published (new version 1)",
                         "2 journeys in the graph store: 2 published, 0 unchanged, 0 rejected"], "")
    assert second[1][:2] == ["journey-small: unchanged (version 1)", "journey-twin: unchanged (version 1)"]
    version = WorkflowVersion.objects.get(journey_id="journey-small")
    assert version.hash == definition_hash(small())
    assert version.definition == small()


def test_a_changed_journey_gets_a_new_version_and_running_processes_keep_theirs(db, clerk, capsys):
    # given: version 1 published, a process running on it, then the graph changed
    store = EmbeddedGraphStore()
    store.save_journey(small())
    run_sync(capsys)
    process = services.start_process(workflow_id="journey-small", user=clerk)
    changed = small()
    changed["journey"]["name"] = "Small loan, second edition"
    store.save_journey(changed)

    # when
    code, lines, _ = run_sync(capsys)

    # then
    assert (code, lines[0]) == (0, "journey-small: published (new version 2)")
    process.refresh_from_db()
    assert process.version.number == 1
    assert services.start_process(workflow_id="journey-small", user=clerk).version.number == 2


def test_a_graph_back_at_an_older_version_says_so(db, capsys):
    store = EmbeddedGraphStore()
    store.save_journey(small())
    run_sync(capsys)
    changed = small()
    changed["journey"]["name"] = "Small loan, second edition"
    store.save_journey(changed)
    run_sync(capsys)

    store.save_journey(small())
    code, lines, _ = run_sync(capsys)

    assert (code, lines[0]) == (0, "journey-small: unchanged (the graph matches version 1; "
                                   "version 2 stays the latest)")


def test_an_invalid_journey_is_rejected_with_its_problems_and_the_others_published(db, capsys):
    # given
    store = EmbeddedGraphStore()
    store.save_journey(with_unknown_handler(renamed(small(), "journey-broken")))
    store.save_journey(small())

    # when
    code, lines, err = run_sync(capsys)

    # then: exit 1, and the valid journey is published all the same
    assert code == 1
    assert lines == [
        "journey-broken: rejected: atoms[1].handler: unknown handler 'no_such_handler'",
        "journey-small: published (new version 1)",
        "2 journeys in the graph store: 1 published, 0 unchanged, 1 rejected",
    ]
    assert err.strip() == "1 journey(s) rejected"
    assert not WorkflowVersion.objects.filter(journey_id="journey-broken").exists()


def test_an_empty_graph_store_syncs_nothing(db, capsys):
    assert run_sync(capsys) == (0, ["0 journeys in the graph store: 0 published, 0 unchanged, 0 rejected"], "")


def test_the_periodic_job_reports_and_survives_an_unreachable_store(db, monkeypatch):
    EmbeddedGraphStore().save_journey(small())

    assert jobs.sync_journeys_task() == "1 journeys in the graph store: 1 published, 0 unchanged, 0 rejected"

    def unreachable(store=None):
        raise GraphStoreUnavailable("Neo4j at bolt://nowhere is unreachable")

    monkeypatch.setattr(jobs, "sync_journeys", unreachable)
    assert jobs.sync_journeys_task() == "unavailable"


# --- the admin action ----------------------------------------------------------------------------

def changelist_messages(client, **post) -> list[tuple[str, str]]:
    url = reverse("admin:processes_workflowversion_changelist")
    response = client.post(url, {"action": "sync_from_graph_store", "index": "0", **post}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    return [(message.level_tag, message.message) for message in response.context["messages"]]


def test_the_admin_action_syncs_without_a_selection_and_reports_as_messages(db, client):
    # given: no version yet (the action is offered all the same), two journeys in the store
    store = EmbeddedGraphStore()
    store.save_journey(small())
    store.save_journey(with_unknown_handler(renamed(small(), "journey-broken")))
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:processes_workflowversion_changelist"))
    assert b"Sync journeys from the graph store" in page.content

    # when
    messages = changelist_messages(client)

    # then
    assert messages == [
        ("error", "journey-broken: rejected: atoms[1].handler: unknown handler 'no_such_handler'"),
        ("success", "journey-small: published (new version 1)"),
        ("warning", "2 journeys in the graph store: 1 published, 0 unchanged, 1 rejected"),
    ]
    # and with a row selected it does the same (the selection plays no part)
    selected = WorkflowVersion.objects.get().pk
    assert changelist_messages(client, _selected_action=[selected])[1] == (
        "info", "journey-small: unchanged (version 1)")


def test_the_admin_action_needs_the_right_to_publish(db, client):
    EmbeddedGraphStore().save_journey(small())
    client.force_login(UserFactory(username="viewer", is_staff=True))

    client.post(reverse("admin:processes_workflowversion_changelist"),
                {"action": "sync_from_graph_store", "index": "0"})

    assert not WorkflowVersion.objects.exists()


# --- on Neo4j: a journey drawn by another tool ---------------------------------------------------

# What another tool draws: the model of neo4j-testing.md, with no journey_id and no position.
# It shares atom ids with DRAWN_ELSEWHERE: only the relationships tell the two apart.
DRAWN = (
    "CREATE (j:Journey {id: 'journey-drawn', name: 'Drawn loan', sla_target: 'P2D'}), "
    "(intake:Phase {id: 'phase-drawn-intake', name: 'Intake'}), "
    "(module:Module {id: 'module-drawn-intake', name: 'Intake'}), "
    "(decide:Phase {id: 'phase-drawn-decision', name: 'Decision'}), "
    "(clerk:Atom {id: 'role-clerk', name: 'Clerk', kind: 'role', assignment: 'queue'}), "
    "(apply:Atom {id: 'atom-apply', name: 'Apply', kind: 'human', priority: 'high', sla_target: 'PT4H', "
    "form_json: '[{\"name\":\"amount\",\"required\":true,\"type\":\"number\"}]'}), "
    "(check:Atom {id: 'atom-check', name: 'Check', kind: 'system', handler: 'set_context', "
    "params_json: '{\"checked\":true}'}), "
    "(approve:Atom {id: 'atom-approve', name: 'Approve', kind: 'human'}), "
    "(decline:Atom {id: 'atom-decline', name: 'Decline', kind: 'human'}), "
    "(:Rule {rule_id: 'rule-big', description: 'a big loan', "
    "conditions_json: '[{\"field\":\"amount\",\"operator\":\"gte\",\"value\":1000}]'}), "
    "(j)-[:HAS_PHASE]->(intake), (j)-[:HAS_PHASE {position: 1}]->(decide), (intake)-[:HAS_MODULE]->(module), "
    "(module)-[:CONTAINS]->(apply), (module)-[:CONTAINS]->(check), (j)-[:CONTAINS]->(approve), "
    "(j)-[:CONTAINS]->(decline), "
    "(apply)-[:PERFORMED_BY]->(clerk), (approve)-[:PERFORMED_BY]->(clerk), (decline)-[:PERFORMED_BY]->(clerk), "
    "(apply)-[:ENABLES]->(check), (check)-[:ENABLES {rule_ids: ['rule-big']}]->(approve), "
    "(check)-[:ENABLES {default: true}]->(decline)"
)

# The same journey as a file, in the order a graph without positions is read (by id).
DRAWN_AS_FILE = """
format: gndp-journey/1
journey: {id: journey-drawn, name: Drawn loan, sla: {target: P2D}}
roles:
  - {id: role-clerk, name: Clerk, assignment: queue}
phases:
  - id: phase-drawn-intake
    name: Intake
    modules: [{id: module-drawn-intake, name: Intake, atoms: [atom-apply, atom-check]}]
  - {id: phase-drawn-decision, name: Decision}
atoms:
  - id: atom-apply
    name: Apply
    performed_by: role-clerk
    priority: high
    sla: {target: PT4H}
    form: [{name: amount, type: number, required: true}]
  - {id: atom-approve, name: Approve, performed_by: role-clerk}
  - {id: atom-check, name: Check, kind: system, handler: set_context, params: {checked: true}}
  - {id: atom-decline, name: Decline, performed_by: role-clerk}
edges:
  - {type: ENABLES, from: atom-apply, to: atom-check}
  - {type: ENABLES, from: atom-check, to: atom-approve, rule: rule-big}
  - {type: ENABLES, from: atom-check, to: atom-decline, default: true}
rules:
  - rule_id: rule-big
    description: a big loan
    conditions: [{field: amount, operator: gte, value: 1000}]
"""

# A second drawn journey reusing the ids, with an ENABLES into an atom it does not contain.
DRAWN_ELSEWHERE = (
    "MATCH (stray:Atom {id: 'atom-approve'})<-[:CONTAINS]-(:Journey {id: 'journey-drawn'}) "
    "CREATE (j:Journey {id: 'journey-drawn-elsewhere', name: 'Elsewhere'}), "
    "(clerk:Atom {id: 'role-clerk', name: 'Clerk', kind: 'role'}), "
    "(apply:Atom {id: 'atom-apply', name: 'Apply again', kind: 'human'}), "
    "(j)-[:CONTAINS]->(apply), (apply)-[:PERFORMED_BY]->(clerk), (apply)-[:ENABLES]->(stray)"
)


@pytest.fixture
def drawn(db, neo4j_settings):
    store = graph.get_store()
    graph_query(store.driver, DRAWN)
    return store


def test_a_journey_drawn_without_journey_id_is_read_by_its_relationships(drawn):
    expected = normalize(yaml.safe_load(DRAWN_AS_FILE), known_handlers=handlers.names())

    stored = drawn.get_journey("journey-drawn")

    assert normalize(stored, known_handlers=handlers.names()) == expected
    assert drawn.list_journeys() == [JourneySummary(id="journey-drawn", name="Drawn loan")]
    assert drawn.find_container("module-drawn-intake") == "journey-drawn"


def test_drawn_journeys_are_published_beside_stored_ones_and_a_bad_one_is_rejected(drawn, capsys):
    # given: a drawn journey, another drawn one that points outside itself, and one the store wrote
    graph_query(drawn.driver, DRAWN_ELSEWHERE)
    drawn.save_journey(small())

    # when
    code, lines, _ = run_sync(capsys)
    again = run_sync(capsys)

    # then
    assert code == 1
    assert lines[:3] == [
        "journey-drawn: published (new version 1)",
        "journey-drawn-elsewhere: rejected: edges[0].to: unknown atom 'atom-approve'",
        "journey-small: published (new version 1)",
    ]
    expected = normalize(yaml.safe_load(DRAWN_AS_FILE), known_handlers=handlers.names())
    assert WorkflowVersion.objects.get(journey_id="journey-drawn").hash == definition_hash(expected)
    assert again[1][0] == "journey-drawn: unchanged (version 1)"
    # nothing was written to the graph: the drawn journey still has no journey_id anywhere
    assert graph_query(drawn.driver, "MATCH (n) WHERE n.journey_id = 'journey-drawn' RETURN count(n) AS n") == [
        {"n": 0}]


def test_a_drawn_graph_the_model_cannot_read_is_rejected_not_a_crash(drawn, capsys):
    graph_query(drawn.driver, "MATCH (p:Phase {id: 'phase-drawn-decision'}) SET p.name = NULL")
    missing_name = run_sync(capsys)
    graph_query(drawn.driver, "MATCH (a:Atom {id: 'atom-check'}) SET a.params_json = 'not json'")
    bad_json = run_sync(capsys)

    assert missing_name[:2] == (1, ["journey-drawn: rejected: phases[1].name: required",
                                    "1 journeys in the graph store: 0 published, 0 unchanged, 1 rejected"])
    assert bad_json[1][0].startswith(
        "journey-drawn: rejected: the stored graph cannot be read as a journey: JSONDecodeError")
