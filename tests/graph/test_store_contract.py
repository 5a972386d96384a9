"""The graph store contract: every store keeps a journey exactly, by its id, apart from the
others. Runs on the embedded store, on the Neo4j store over FalkorDB's Bolt endpoint and,
when NEO4J_TEST_URI is set, on the Neo4j store over a real Neo4j."""

from __future__ import annotations

import copy

import pytest
import yaml

from processes import graph, handlers
from processes.graph.base import JourneySummary
from processes.graph.neo4j_store import Neo4jGraphStore
from processes.journey import definition_hash, normalize
from processes.versions import publish_journey, resolve_workflow
from tests.fixtures import DEMO_FILE, SMALL_JOURNEY


def small() -> dict:
    return normalize(yaml.safe_load(SMALL_JOURNEY), known_handlers=handlers.names())


def demo() -> dict:
    return normalize(yaml.safe_load(DEMO_FILE.read_text()), known_handlers=handlers.names())


def choices() -> dict:
    """Part 2's choices: an exclusive choice, and a race of a person's step and a system's."""
    raw = yaml.safe_load(SMALL_JOURNEY)
    raw["journey"]["id"] = "journey-choices"
    raw["roles"] = raw.get("roles") or [{"id": "role-x", "name": "X"}]
    role = raw["roles"][0]["id"]
    raw["atoms"] = [
        {"id": "atom-score", "name": "Score", "kind": "system", "handler": "set_context", "choose": "first"},
        {"id": "atom-offer", "name": "Offer", "performed_by": role, "then": "first_done"},
        {"id": "atom-accept", "name": "Accepted", "performed_by": role},
        {"id": "atom-expire", "name": "Expired", "kind": "system", "handler": "noop"},
    ]
    raw["phases"] = []
    raw["rules"] = []
    raw["edges"] = [
        {"type": "ENABLES", "from": "atom-score", "to": "atom-offer",
         "condition": {"field": "score", "operator": "gte", "value": 600}},
        {"type": "ENABLES", "from": "atom-offer", "to": "atom-accept"},
        {"type": "ENABLES", "from": "atom-offer", "to": "atom-expire"},
    ]
    return normalize(raw, known_handlers=handlers.names())


def loops() -> dict:
    """Part 2's rework loops: a back edge with its own limit, and a self-loop."""
    from tests.processes.test_loops import REWORK

    raw = copy.deepcopy(REWORK)
    raw["edges"].append({"type": "ENABLES", "from": "close", "to": "close", "loop": True,
                         "condition": {"field": "again", "operator": "eq", "value": True}})
    return normalize(raw, known_handlers=handlers.names())


def stored_hash(store, journey_id: str) -> str:
    return definition_hash(normalize(store.get_journey(journey_id), known_handlers=handlers.names()))


def renamed(definition: dict, journey_id: str, name: str) -> dict:
    other = copy.deepcopy(definition)
    other["journey"]["id"] = journey_id
    other["journey"]["name"] = name
    return other


@pytest.mark.parametrize("definition", [small, demo, choices, loops], ids=["small", "demo", "choices", "loops"])
def test_round_trip_keeps_the_definition_hash(store, definition):
    # given
    journey = definition()

    # when
    store.save_journey(journey)

    # then
    assert stored_hash(store, journey["journey"]["id"]) == definition_hash(journey)
    assert normalize(store.get_journey(journey["journey"]["id"]), known_handlers=handlers.names()) == journey


def test_unknown_journey_is_none(store):
    assert store.get_journey("journey-nowhere") is None


def test_list_journeys_by_id(store):
    store.save_journey(small())
    store.save_journey(demo())

    assert store.list_journeys() == [
        JourneySummary(id="journey-purchase-fha", name="FHA purchase loan"),
        JourneySummary(id="journey-small", name="Small loan"),
    ]


@pytest.mark.parametrize("container_id", ["journey-small", "phase-review", "module-intake"])
def test_find_container_names_the_journey(store, container_id):
    store.save_journey(small())

    assert store.find_container(container_id) == "journey-small"


@pytest.mark.parametrize("container_id", ["atom-apply", "rule-good-score", "phase-nowhere"])
def test_find_container_knows_only_journeys_phases_and_modules(store, container_id):
    store.save_journey(small())

    assert store.find_container(container_id) is None


def test_delete_removes_one_journey_only(store):
    # given: two journeys that share every atom, role, phase and module id
    store.save_journey(small())
    twin = renamed(small(), "journey-twin", "Twin loan")
    store.save_journey(twin)

    # when
    store.delete_journey("journey-small")

    # then
    assert store.get_journey("journey-small") is None
    assert store.find_container("journey-small") is None
    assert store.find_container("phase-review") == "journey-twin"
    assert store.list_journeys() == [JourneySummary(id="journey-twin", name="Twin loan")]
    assert stored_hash(store, "journey-twin") == definition_hash(twin)


def test_saving_again_replaces_the_journeys_graph(store):
    # given
    store.save_journey(small())
    changed = yaml.safe_load(SMALL_JOURNEY)
    changed["journey"]["name"] = "Small loan, second edition"
    changed["phases"][1]["modules"][0]["atoms"].remove("atom-manual")
    changed["atoms"] = [atom for atom in changed["atoms"] if atom["id"] != "atom-manual"]
    changed["edges"] = [edge for edge in changed["edges"] if "atom-manual" not in (edge["from"], edge["to"])]
    changed["edges"].append({"type": "ENABLES", "from": "atom-score", "to": "atom-a", "default": True})
    changed["edges"][1]["rule"] = "rule-great-score"
    changed["rules"] = [{"rule_id": "rule-great-score", "conditions": [{"field": "score", "operator": "gte",
                                                                      "value": 700}]}]
    changed["phases"].append({"id": "phase-closing", "name": "Closing", "modules": []})
    changed["atoms"][0]["name"] = "Apply now"
    del changed["atoms"][0]["sla"]
    changed = normalize(changed, known_handlers=handlers.names())

    # when
    store.save_journey(changed)

    # then
    stored = store.get_journey("journey-small")
    assert stored_hash(store, "journey-small") == definition_hash(changed)
    assert "atom-manual" not in {atom["id"] for atom in stored["atoms"]}
    assert [rule["rule_id"] for rule in stored["rules"]] == ["rule-great-score"]
    assert store.find_container("phase-closing") == "journey-small"


def test_saving_an_unchanged_journey_keeps_it(store):
    store.save_journey(demo())
    store.save_journey(demo())

    assert stored_hash(store, "journey-purchase-fha") == definition_hash(demo())
    assert [summary.id for summary in store.list_journeys()] == ["journey-purchase-fha"]


@pytest.mark.parametrize("definition", [small, demo], ids=["small", "demo"])
def test_publishing_through_neo4j_gives_the_embedded_version_hash(db, neo4j_settings, definition):
    # given: published with the embedded store
    neo4j_uri, neo4j_settings.NEO4J_URI = neo4j_settings.NEO4J_URI, ""
    graph.get_store.cache_clear()
    embedded = publish_journey(definition()).version

    # when: the same file published with NEO4J_URI set
    neo4j_settings.NEO4J_URI = neo4j_uri
    graph.get_store.cache_clear()
    published = publish_journey(definition())

    # then
    assert isinstance(graph.get_store(), Neo4jGraphStore)
    assert published.created is False
    assert published.version.hash == embedded.hash
    assert resolve_workflow(definition()["phases"][0]["id"]) == embedded


def with_start(start: dict | None) -> dict:
    data = yaml.safe_load(SMALL_JOURNEY)
    if start is not None:
        data["journey"]["start"] = start
    return normalize(data, known_handlers=handlers.names())


@pytest.mark.parametrize("start", [
    {"by": "everyone"},
    {"by": []},
    {"by": ["role-checker"], "parts": ["phase-review", "module-intake"]},
    {"parts": ["module-review"]},
], ids=["everyone", "nobody", "roles-and-parts", "parts-only"])
def test_the_start_rule_round_trips_and_a_later_save_without_it_drops_it(store, start):
    # given
    journey = with_start(start)

    # when
    store.save_journey(journey)
    stored = normalize(store.get_journey("journey-small"), known_handlers=handlers.names())

    # then: kept exactly, and part of the version hash
    assert stored["journey"]["start"] == start
    assert definition_hash(stored) == definition_hash(journey) != definition_hash(with_start(None))

    # when: the journey is saved again without the key
    store.save_journey(with_start(None))

    # then: the stored graph says nothing about starting any more
    assert "start" not in store.get_journey("journey-small")["journey"]
    assert stored_hash(store, "journey-small") == definition_hash(with_start(None))
