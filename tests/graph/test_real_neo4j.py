"""What only a real Neo4j shows: text that FalkorDB's Bolt endpoint mangles (it pastes
parameters into the query text), transactions that really roll back, and authentication.
Run with NEO4J_TEST_URI (NEO4J_TEST_USER, NEO4J_TEST_PASSWORD) naming a disposable
Neo4j 5 database; skipped otherwise."""

from __future__ import annotations

import os

import pytest
import yaml
from neo4j import GraphDatabase

from processes import handlers
from processes.graph import neo4j_store
from processes.graph.neo4j_store import GraphStoreUnavailable, Neo4jGraphStore
from processes.journey import definition_hash, normalize
from tests.fixtures import SMALL_JOURNEY

NASTY = "O'Brien \"quoted\" `tick` \\ back }) DETACH DELETE n // ${x} ' OR 1=1 --"


def small() -> dict:
    return normalize(yaml.safe_load(SMALL_JOURNEY), known_handlers=handlers.names())


def nasty_journey() -> dict:
    data = yaml.safe_load(SMALL_JOURNEY)
    data["journey"]["name"] = NASTY
    data["journey"]["description"] = NASTY + "\nsecond line"
    data["roles"][0]["name"] = NASTY
    data["phases"][0]["name"] = NASTY
    data["phases"][0]["modules"][0]["name"] = NASTY
    data["atoms"][0]["name"] = NASTY
    data["atoms"][0]["form"][0]["label"] = NASTY
    data["atoms"][1]["params"] = {"note": NASTY}
    data["rules"][0]["description"] = NASTY
    return normalize(data, known_handlers=handlers.names())


def test_names_with_quotes_backticks_and_cypher_are_stored_literally(real_neo4j_store):
    journey = nasty_journey()

    real_neo4j_store.save_journey(journey)

    stored = real_neo4j_store.get_journey("journey-small")
    assert definition_hash(normalize(stored, known_handlers=handlers.names())) == definition_hash(journey)
    assert stored["journey"]["name"] == NASTY
    assert stored["atoms"][0]["name"] == NASTY
    assert real_neo4j_store.list_journeys()[0].name == NASTY


def test_a_save_that_fails_halfway_leaves_the_previous_graph(real_neo4j_store, monkeypatch):
    # given
    real_neo4j_store.save_journey(small())
    original = neo4j_store._node_row

    def fail_on_atoms(journey_id, node):
        if node.label == "Atom":
            raise RuntimeError("the server went away mid-save")
        return original(journey_id, node)

    monkeypatch.setattr(neo4j_store, "_node_row", fail_on_atoms)

    # when: it fails after the journey, phase and module nodes were rewritten
    with pytest.raises(RuntimeError):
        real_neo4j_store.save_journey(nasty_journey())

    # then
    stored = real_neo4j_store.get_journey("journey-small")
    assert definition_hash(normalize(stored, known_handlers=handlers.names())) == definition_hash(small())


def test_wrong_credentials_are_one_clear_error(real_neo4j_driver):
    uri = os.environ["NEO4J_TEST_URI"]
    driver = GraphDatabase.driver(uri, auth=("neo4j", "certainly-not-the-password"), max_transaction_retry_time=1)
    store = Neo4jGraphStore(driver, description=f"Neo4j at {uri} (user neo4j)")
    try:
        with pytest.raises(GraphStoreUnavailable, match="refused the credentials"):
            store.list_journeys()
    finally:
        driver.close()
