"""What the Neo4j store does beyond the contract: minimal writes, batches, one driver per
process, clear errors when the server is away. On FalkorDB's Bolt endpoint."""

from __future__ import annotations

import time

import pytest
import yaml
from django.core.management import call_command
from neo4j import GraphDatabase

from processes import graph, handlers
from processes.graph.neo4j_store import GraphStoreUnavailable, Neo4jGraphStore, batches
from processes.journey import normalize
from tests.fixtures import SMALL_JOURNEY
from tests.graph.falkordb import free_bolt_port, graph_query

NODE_IDS = "MATCH (n {journey_id: $journey_id}) RETURN n.id AS key, id(n) AS node ORDER BY key"
RELATIONSHIP_COUNT = "MATCH ({journey_id: $journey_id})-[r]->() RETURN count(r) AS count"
DRAW_MARK = "MATCH (a:Atom {journey_id: $journey_id, id: $atom_id}) CREATE (:Mark)-[:POINTS_AT]->(a)"
MARKED = "MATCH (:Mark)-[:POINTS_AT]->(a:Atom) RETURN a.id AS atom_id"


def small() -> dict:
    return normalize(yaml.safe_load(SMALL_JOURNEY), known_handlers=handlers.names())


def test_saving_an_unchanged_journey_writes_nothing(falkordb_store):
    # given
    falkordb_store.save_journey(small())
    before = graph_query(falkordb_store.driver, NODE_IDS, journey_id="journey-small")
    relationships = graph_query(falkordb_store.driver, RELATIONSHIP_COUNT, journey_id="journey-small")

    # when
    falkordb_store.save_journey(small())

    # then: the very same nodes, and no relationship more or less
    assert graph_query(falkordb_store.driver, NODE_IDS, journey_id="journey-small") == before
    assert graph_query(falkordb_store.driver, RELATIONSHIP_COUNT, journey_id="journey-small") == relationships


def test_a_new_version_keeps_the_nodes_that_stay_and_what_points_at_them(falkordb_store):
    # given: something else in the graph (the runtime mirror, another tool) points at two atoms
    falkordb_store.save_journey(small())
    for atom_id in ("atom-apply", "atom-manual"):
        graph_query(falkordb_store.driver, DRAW_MARK, journey_id="journey-small", atom_id=atom_id)
    changed = yaml.safe_load(SMALL_JOURNEY)
    changed["atoms"][0]["name"] = "Apply now"
    changed["phases"][1]["modules"][0]["atoms"].remove("atom-manual")
    changed["atoms"] = [atom for atom in changed["atoms"] if atom["id"] != "atom-manual"]
    changed["edges"] = [edge for edge in changed["edges"] if "atom-manual" not in (edge["from"], edge["to"])]
    changed["edges"].append({"type": "ENABLES", "from": "atom-score", "to": "atom-a", "default": True})

    # when
    falkordb_store.save_journey(normalize(changed, known_handlers=handlers.names()))

    # then: the changed atom is the same node; the removed one is gone
    assert graph_query(falkordb_store.driver, MARKED) == [{"atom_id": "atom-apply"}]


def test_batches_are_bounded_in_rows_and_bytes():
    rows = [{"key": f"atom-{i}", "props": {"name": "x" * 50}} for i in range(10)]

    by_rows = list(batches(rows, max_rows=4, max_bytes=10_000))
    by_bytes = list(batches(rows, max_rows=100, max_bytes=200))

    assert [len(batch) for batch in by_rows] == [4, 4, 2]
    assert [len(batch) for batch in by_bytes] == [2, 2, 2, 2, 2]
    assert [row for batch in by_bytes for row in batch] == rows


def test_a_row_larger_than_the_byte_limit_goes_alone():
    rows = [{"key": "a"}, {"key": "b" * 500}, {"key": "c"}]

    assert [len(batch) for batch in batches(rows, max_rows=10, max_bytes=100)] == [1, 1, 1]


def test_an_unreachable_server_is_one_clear_error_soon():
    # given: nothing listens on this port
    uri = f"bolt://127.0.0.1:{free_bolt_port()}"
    driver = GraphDatabase.driver(uri, auth=("neo4j", "x"), connection_timeout=1, max_transaction_retry_time=0.5)
    store = Neo4jGraphStore(driver, description=f"Neo4j at {uri}")
    started = time.monotonic()

    # when
    with pytest.raises(GraphStoreUnavailable) as raised:
        store.list_journeys()

    # then
    assert time.monotonic() - started < 5
    assert raised.value.message.startswith(f"Neo4j at {uri} is unreachable")
    assert raised.value.status == 503
    driver.close()


def test_stores_from_settings_share_one_driver(neo4j_settings, falkordb_driver):
    first = Neo4jGraphStore.from_settings()
    graph.get_store.cache_clear()

    assert graph.get_store().driver is first.driver is falkordb_driver
    assert first.batch_bytes == neo4j_settings.NEO4J_BATCH_BYTES


def test_load_journey_publishes_into_neo4j(db, neo4j_settings, tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_JOURNEY)

    call_command("load_journey", str(path))

    assert capsys.readouterr().out.startswith("journey-small version 1 ")
    assert graph.get_store().find_container("module-review") == "journey-small"
