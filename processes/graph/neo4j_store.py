"""The Neo4j graph store: the property graph of mapping.py in Neo4j, through the official driver.

Every node the store writes carries `journey_id` beside the properties of the model: ids
are unique within a journey only (as in the embedded store), and rules are not connected
to anything, so the journey a node belongs to has to be a property of its own.

A journey drawn by another tool may carry no `journey_id` at all. Its (:Journey {id}) node
then has none either, and the journey is read by following the model's relationships from
that node: its phases (HAS_PHASE), their modules (HAS_MODULE), the atoms the journey or its
modules contain (CONTAINS), the roles those atoms are PERFORMED_BY, the ENABLES and
DEPENDS_ON relationships leaving those atoms, and the rules that ENABLES relationships name
in `rule_ids` (rules are connected to nothing). What such a graph leaves out is left out:
a role no atom is performed by, a rule no relationship names; a relationship into an atom
the journey does not contain is read as it is, so that validation reports it. Without
`position` properties, the order is that of the ids.

Every query is a module-level constant with parameters; no value is ever formatted into
Cypher text (tests/graph/test_cypher_constants.py proves it). Labels and relationship
types cannot be parameters in Cypher, so there is one constant per label and per type,
looked up in fixed dictionaries. The queries keep to the subset that both Neo4j 5 and the
FalkorDB Bolt endpoint of the tests run (shared docs neo4j-testing.md), and only managed
transactions are used: they retry transient errors, and on FalkorDB they are the fast path
and the only one that ignores database names consistently.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, TypeVar

from django.conf import settings
from neo4j import Driver, GraphDatabase, ManagedTransaction, unit_of_work
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable, SessionExpired

from .base import GraphStore, GraphStoreUnavailable, JourneySummary
from .mapping import Node, Rel, from_graph, to_graph

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFINITION_LABELS = ("Journey", "Phase", "Module", "Atom", "Rule")

# Unnamed indexes: the only CREATE INDEX form both servers accept. Neither has a portable
# IF NOT EXISTS, so an index that already exists is an error we expect and ignore.
SCHEMA = (
    "CREATE INDEX FOR (n:Journey) ON (n.id)",
    "CREATE INDEX FOR (n:Phase) ON (n.id)",
    "CREATE INDEX FOR (n:Module) ON (n.id)",
    "CREATE INDEX FOR (n:Atom) ON (n.id)",
    "CREATE INDEX FOR (n:Journey) ON (n.journey_id)",
    "CREATE INDEX FOR (n:Phase) ON (n.journey_id)",
    "CREATE INDEX FOR (n:Module) ON (n.journey_id)",
    "CREATE INDEX FOR (n:Atom) ON (n.journey_id)",
    "CREATE INDEX FOR (n:Rule) ON (n.journey_id)",
)

JOURNEY_NODES = (
    "MATCH (n:Journey {journey_id: $journey_id}) RETURN 'Journey' AS label, properties(n) AS props "
    "UNION ALL MATCH (n:Phase {journey_id: $journey_id}) RETURN 'Phase' AS label, properties(n) AS props "
    "UNION ALL MATCH (n:Module {journey_id: $journey_id}) RETURN 'Module' AS label, properties(n) AS props "
    "UNION ALL MATCH (n:Atom {journey_id: $journey_id}) RETURN 'Atom' AS label, properties(n) AS props "
    "UNION ALL MATCH (n:Rule {journey_id: $journey_id}) RETURN 'Rule' AS label, properties(n) AS props"
)

JOURNEY_RELATIONSHIPS = (
    "MATCH (s:Journey {journey_id: $journey_id})-[r:HAS_PHASE|CONTAINS]->(t {journey_id: $journey_id}) "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (s:Phase {journey_id: $journey_id})-[r:HAS_MODULE]->(t:Module {journey_id: $journey_id}) "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (s:Module {journey_id: $journey_id})-[r:CONTAINS]->(t:Atom {journey_id: $journey_id}) "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (s:Atom {journey_id: $journey_id})-[r:ENABLES|DEPENDS_ON|PERFORMED_BY]->"
    "(t:Atom {journey_id: $journey_id}) "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props"
)

# SET n = row.props replaces every property, so a property the new definition dropped goes.
UPSERT_NODES = {
    "Journey": "UNWIND $rows AS row MERGE (n:Journey {journey_id: $journey_id, id: row.key}) SET n = row.props",
    "Phase": "UNWIND $rows AS row MERGE (n:Phase {journey_id: $journey_id, id: row.key}) SET n = row.props",
    "Module": "UNWIND $rows AS row MERGE (n:Module {journey_id: $journey_id, id: row.key}) SET n = row.props",
    "Atom": "UNWIND $rows AS row MERGE (n:Atom {journey_id: $journey_id, id: row.key}) SET n = row.props",
    "Rule": "UNWIND $rows AS row MERGE (n:Rule {journey_id: $journey_id, rule_id: row.key}) SET n = row.props",
}

DELETE_NODES = {
    "Journey": "UNWIND $keys AS key MATCH (n:Journey {journey_id: $journey_id, id: key}) DETACH DELETE n",
    "Phase": "UNWIND $keys AS key MATCH (n:Phase {journey_id: $journey_id, id: key}) DETACH DELETE n",
    "Module": "UNWIND $keys AS key MATCH (n:Module {journey_id: $journey_id, id: key}) DETACH DELETE n",
    "Atom": "UNWIND $keys AS key MATCH (n:Atom {journey_id: $journey_id, id: key}) DETACH DELETE n",
    "Rule": "UNWIND $keys AS key MATCH (n:Rule {journey_id: $journey_id, rule_id: key}) DETACH DELETE n",
}

DELETE_JOURNEY = (
    "MATCH (n:Journey {journey_id: $journey_id}) DETACH DELETE n",
    "MATCH (n:Phase {journey_id: $journey_id}) DETACH DELETE n",
    "MATCH (n:Module {journey_id: $journey_id}) DETACH DELETE n",
    "MATCH (n:Atom {journey_id: $journey_id}) DETACH DELETE n",
    "MATCH (n:Rule {journey_id: $journey_id}) DETACH DELETE n",
)

# Only the definition's own relationship types: the runtime mirror's relationships into
# the same atoms, and anything other tools drew, stay.
DELETE_RELATIONSHIPS = (
    "MATCH (:Journey {journey_id: $journey_id})-[r:HAS_PHASE|CONTAINS]->() DELETE r",
    "MATCH (:Phase {journey_id: $journey_id})-[r:HAS_MODULE]->() DELETE r",
    "MATCH (:Module {journey_id: $journey_id})-[r:CONTAINS]->() DELETE r",
    "MATCH (:Atom {journey_id: $journey_id})-[r:ENABLES|DEPENDS_ON|PERFORMED_BY]->() DELETE r",
)

# Keyed by (type, label of the source); the target's label follows from the type.
CREATE_RELATIONSHIPS = {
    ("HAS_PHASE", "Journey"): (
        "UNWIND $rows AS row MATCH (s:Journey {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Phase {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:HAS_PHASE]->(t) SET r = row.props"
    ),
    ("HAS_MODULE", "Phase"): (
        "UNWIND $rows AS row MATCH (s:Phase {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Module {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:HAS_MODULE]->(t) SET r = row.props"
    ),
    ("CONTAINS", "Journey"): (
        "UNWIND $rows AS row MATCH (s:Journey {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Atom {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:CONTAINS]->(t) SET r = row.props"
    ),
    ("CONTAINS", "Module"): (
        "UNWIND $rows AS row MATCH (s:Module {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Atom {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:CONTAINS]->(t) SET r = row.props"
    ),
    ("ENABLES", "Atom"): (
        "UNWIND $rows AS row MATCH (s:Atom {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Atom {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:ENABLES]->(t) SET r = row.props"
    ),
    ("DEPENDS_ON", "Atom"): (
        "UNWIND $rows AS row MATCH (s:Atom {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Atom {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:DEPENDS_ON]->(t) SET r = row.props"
    ),
    ("PERFORMED_BY", "Atom"): (
        "UNWIND $rows AS row MATCH (s:Atom {journey_id: $journey_id, id: row.source}) "
        "MATCH (t:Atom {journey_id: $journey_id, id: row.target}) CREATE (s)-[r:PERFORMED_BY]->(t) SET r = row.props"
    ),
}

# A journey drawn without journey_id properties: what its Journey node reaches.
DRAWN_JOURNEY_NODES = (
    "MATCH (j:Journey {id: $journey_id}) WHERE j.journey_id IS NULL "
    "RETURN 'Journey' AS label, properties(j) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(n:Phase) WHERE j.journey_id IS NULL "
    "RETURN 'Phase' AS label, properties(n) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(n:Module) "
    "WHERE j.journey_id IS NULL RETURN 'Module' AS label, properties(n) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:CONTAINS]->(n:Atom) WHERE j.journey_id IS NULL "
    "RETURN 'Atom' AS label, properties(n) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(:Module)"
    "-[:CONTAINS]->(n:Atom) WHERE j.journey_id IS NULL RETURN 'Atom' AS label, properties(n) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:CONTAINS]->(:Atom)-[:PERFORMED_BY]->(n:Atom) "
    "WHERE j.journey_id IS NULL RETURN 'Atom' AS label, properties(n) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(:Module)"
    "-[:CONTAINS]->(:Atom)-[:PERFORMED_BY]->(n:Atom) WHERE j.journey_id IS NULL "
    "RETURN 'Atom' AS label, properties(n) AS props"
)

DRAWN_JOURNEY_RELATIONSHIPS = (
    "MATCH (s:Journey {id: $journey_id})-[r:HAS_PHASE]->(t:Phase) WHERE s.journey_id IS NULL "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(s:Phase)-[r:HAS_MODULE]->(t:Module) "
    "WHERE j.journey_id IS NULL RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (s:Journey {id: $journey_id})-[r:CONTAINS]->(t:Atom) WHERE s.journey_id IS NULL "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(s:Module)"
    "-[r:CONTAINS]->(t:Atom) WHERE j.journey_id IS NULL "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:CONTAINS]->(s:Atom)"
    "-[r:ENABLES|DEPENDS_ON|PERFORMED_BY]->(t:Atom) WHERE j.journey_id IS NULL "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props "
    "UNION ALL MATCH (j:Journey {id: $journey_id})-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(:Module)"
    "-[:CONTAINS]->(s:Atom)-[r:ENABLES|DEPENDS_ON|PERFORMED_BY]->(t:Atom) WHERE j.journey_id IS NULL "
    "RETURN type(r) AS type, s.id AS source, t.id AS target, properties(r) AS props"
)

DRAWN_RULES = (
    "UNWIND $rule_ids AS rule_id MATCH (n:Rule {rule_id: rule_id}) WHERE n.journey_id IS NULL "
    "RETURN 'Rule' AS label, properties(n) AS props"
)

LIST_JOURNEYS = "MATCH (j:Journey) RETURN j.id AS id, j.name AS name ORDER BY id"

FIND_CONTAINER = (
    "MATCH (n:Journey {id: $id}) RETURN n.journey_id AS journey_id "
    "UNION ALL MATCH (n:Phase {id: $id}) RETURN n.journey_id AS journey_id "
    "UNION ALL MATCH (n:Module {id: $id}) RETURN n.journey_id AS journey_id "
    "UNION ALL MATCH (n:Journey {id: $id}) WHERE n.journey_id IS NULL RETURN n.id AS journey_id "
    "UNION ALL MATCH (j:Journey)-[:HAS_PHASE]->(n:Phase {id: $id}) "
    "WHERE j.journey_id IS NULL AND n.journey_id IS NULL RETURN j.id AS journey_id "
    "UNION ALL MATCH (j:Journey)-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(n:Module {id: $id}) "
    "WHERE j.journey_id IS NULL AND n.journey_id IS NULL RETURN j.id AS journey_id"
)


# The schema statements already run through each driver: a store is cheap to build (tests
# build one per test), a round of index creation is not.
_schema_done: weakref.WeakKeyDictionary[Driver, set[str]] = weakref.WeakKeyDictionary()


@lru_cache(maxsize=8)
def _driver(uri: str, user: str, password: str, pid: int) -> Driver:
    # The pid is part of the key so that a forked worker never shares its parent's sockets.
    return GraphDatabase.driver(
        uri,
        auth=(user, password),
        connection_timeout=float(getattr(settings, "NEO4J_CONNECTION_TIMEOUT", 5.0)),
        # Bounds how long a caller waits for a pooled connection when the server is slow
        # or gone (the driver's default is a minute).
        connection_acquisition_timeout=float(getattr(settings, "NEO4J_ACQUISITION_TIMEOUT", 5.0)),
        max_transaction_retry_time=float(getattr(settings, "NEO4J_MAX_RETRY_TIME", 15.0)),
        max_connection_pool_size=int(getattr(settings, "NEO4J_POOL_SIZE", 50)),
    )


def shared_driver(uri: str, user: str, password: str) -> Driver:
    """One driver (and so one connection pool) per server, credentials and OS process."""
    return _driver(uri, user, password, os.getpid())


def batches(rows: Iterable[dict[str, Any]], *, max_rows: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Rows in batches bounded in count and in size (measured as JSON, close to how a
    server renders parameters): large transactions are slow on Neo4j, and FalkorDB
    crashes on parameters over about 4 KB."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(json.dumps(row, ensure_ascii=False, default=str))
        if batch and (len(batch) >= max_rows or size + row_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def _node_row(journey_id: str, node: Node) -> dict[str, Any]:
    return {"key": node.key, "props": {**node.props, "journey_id": journey_id, "position": node.position}}


def _rel_row(rel: Rel) -> dict[str, Any]:
    return {"source": rel.source, "target": rel.target, "props": {**rel.props, "position": rel.position}}


def _node_from_record(label: str, stored: dict[str, Any]) -> Node:
    props = dict(stored)
    position = props.pop("position", 0)
    props.pop("journey_id", None)
    key = props["rule_id"] if label == "Rule" else props["id"]
    return Node(label, key, position, props)


def _rel_from_record(record: Any) -> Rel:
    props = dict(record["props"])
    position = props.pop("position", 0)
    return Rel(record["type"], record["source"], record["target"], position, props)


def _by_type_and_source(nodes: list[Node], rels: list[Rel]) -> dict[tuple[str, str], list[Rel]]:
    labels = {node.key: node.label for node in nodes}
    groups: dict[tuple[str, str], list[Rel]] = {}
    for rel in rels:
        groups.setdefault((rel.type, labels[rel.source]), []).append(rel)
    return groups


def _canonical(item: Node | Rel) -> tuple:
    props = json.dumps(item.props, sort_keys=True, ensure_ascii=False)
    if isinstance(item, Node):
        return (item.label, item.key, item.position, props)
    return (item.type, item.source, item.target, item.position, props)


class Neo4jGraphStore(GraphStore):
    def __init__(
        self,
        driver: Driver,
        *,
        database: str | None = None,
        batch_rows: int = 500,
        batch_bytes: int = 512 * 1024,
        timeout: float | None = 30.0,
        description: str = "Neo4j",
    ):
        self.driver = driver
        self.database = database or None
        self.batch_rows = batch_rows
        self.batch_bytes = batch_bytes
        self.timeout = timeout
        self.description = description

    @classmethod
    def from_settings(cls) -> "Neo4jGraphStore":
        uri, user = settings.NEO4J_URI, settings.NEO4J_USER
        return cls(
            shared_driver(uri, user, settings.NEO4J_PASSWORD),
            database=getattr(settings, "NEO4J_DATABASE", None),
            batch_rows=int(getattr(settings, "NEO4J_BATCH_ROWS", 500)),
            batch_bytes=int(getattr(settings, "NEO4J_BATCH_BYTES", 512 * 1024)),
            timeout=float(getattr(settings, "NEO4J_TIMEOUT", 30.0)),
            description=f"Neo4j at {uri} (user {user})",
        )

    # --- the GraphStore interface ---------------------------------------------------------

    def save_journey(self, definition: dict[str, Any]) -> None:
        nodes, rels = to_graph(definition)
        self.ensure_schema(SCHEMA)
        self.write(_replace_journey, definition["journey"]["id"], nodes, rels, self.batches)

    def get_journey(self, journey_id: str) -> dict[str, Any] | None:
        nodes, rels = self.read(_read_journey, journey_id)
        if not any(node.label == "Journey" for node in nodes):
            # Not written by this store: perhaps drawn by another tool, without journey_id.
            nodes, rels = self.read(_read_drawn_journey, journey_id)
            if not any(node.label == "Journey" for node in nodes):
                return None
        return from_graph(nodes, rels)

    def list_journeys(self) -> list[JourneySummary]:
        rows = self.read(_fetch, LIST_JOURNEYS, {})
        # One line per id: a journey drawn by another tool and the same journey written
        # by this store are one journey (the store's copy is the one read).
        summaries: dict[str, JourneySummary] = {}
        for row in rows:
            if row["id"] and row["id"] not in summaries:
                summaries[row["id"]] = JourneySummary(id=row["id"], name=row["name"] or row["id"])
        return list(summaries.values())

    def find_container(self, container_id: str) -> str | None:
        rows = self.read(_fetch, FIND_CONTAINER, {"id": container_id})
        journey_ids = sorted(row["journey_id"] for row in rows if row["journey_id"])
        return journey_ids[0] if journey_ids else None

    def delete_journey(self, journey_id: str) -> None:
        self.write(_delete_journey, journey_id)

    # --- what the runtime mirror shares ----------------------------------------------------

    def batches(self, rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        return batches(rows, max_rows=self.batch_rows, max_bytes=self.batch_bytes)

    def read(self, work: Callable[..., T], *args: Any) -> T:
        return self._execute("read", work, args)

    def write(self, work: Callable[..., T], *args: Any) -> T:
        return self._execute("write", work, args)

    def ensure_schema(self, statements: Iterable[str]) -> None:
        """Create the indexes once per driver; one that exists already is not an error."""
        done = _schema_done.setdefault(self.driver, set())
        for statement in statements:
            if statement in done:
                continue
            try:
                self.write(_run, statement, {})
            except Neo4jError as exc:
                log.debug("index not created (usually: it exists already): %s: %s", statement, exc)
            done.add(statement)

    def _execute(self, mode: str, work: Callable[..., T], args: tuple) -> T:
        # unit_of_work gives every transaction a server-side timeout: a stuck query fails
        # instead of holding a connection forever.
        unit = unit_of_work(timeout=self.timeout)(work)
        try:
            with self.driver.session(database=self.database) as session:
                if mode == "write":
                    return session.execute_write(unit, *args)
                return session.execute_read(unit, *args)
        except AuthError as exc:
            raise GraphStoreUnavailable(f"{self.description} refused the credentials") from exc
        except (ServiceUnavailable, SessionExpired) as exc:
            raise GraphStoreUnavailable(f"{self.description} is unreachable: {exc}") from exc


# --- transaction functions: run by the driver, retried as a whole on transient errors ---------

def _run(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> None:
    tx.run(query, params).consume()


def _fetch(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(query, params)]


def _read_journey(tx: ManagedTransaction, journey_id: str) -> tuple[list[Node], list[Rel]]:
    nodes = [_node_from_record(r["label"], r["props"]) for r in tx.run(JOURNEY_NODES, journey_id=journey_id)]
    rels = [_rel_from_record(r) for r in tx.run(JOURNEY_RELATIONSHIPS, journey_id=journey_id)]
    return nodes, rels


def _read_drawn_journey(tx: ManagedTransaction, journey_id: str) -> tuple[list[Node], list[Rel]]:
    """A journey by the relationships of its Journey node (nodes without journey_id). A
    node reached twice (an atom both in a module and in the journey) is read once, and
    everything is put in a fixed order, so the same graph always reads as the same
    definition (and so the same hash)."""
    records = tx.run(DRAWN_JOURNEY_NODES, journey_id=journey_id)
    nodes = _unique(_node_from_record(record["label"], record["props"]) for record in records)
    rels = _unique(_rel_from_record(record) for record in tx.run(DRAWN_JOURNEY_RELATIONSHIPS, journey_id=journey_id))
    rule_ids = sorted({rule_id for rel in rels if rel.type == "ENABLES" for rule_id in rel.props.get("rule_ids") or ()})
    if rule_ids:
        records = tx.run(DRAWN_RULES, rule_ids=rule_ids)
        nodes += _unique(_node_from_record(record["label"], record["props"]) for record in records)
    nodes.sort(key=lambda node: (DEFINITION_LABELS.index(node.label), node.position, node.key))
    rels.sort(key=lambda rel: (rel.position, rel.type, rel.source, rel.target))
    return nodes, rels


def _unique(items: Iterable[Node | Rel]) -> list:
    seen: dict[tuple, Node | Rel] = {}
    for item in items:
        key = (item.label, item.key) if isinstance(item, Node) else _canonical(item)
        seen.setdefault(key, item)
    return list(seen.values())


def _replace_journey(
    tx: ManagedTransaction,
    journey_id: str,
    nodes: list[Node],
    rels: list[Rel],
    batched: Callable[[Iterable[dict[str, Any]]], Iterator[list[dict[str, Any]]]],
) -> None:
    """Write only what differs from the stored graph: re-importing an unchanged journey
    changes nothing, and nodes that stay keep their identity, so the runtime mirror's
    relationships into unchanged atoms survive a new version."""
    old_nodes, old_rels = _read_journey(tx, journey_id)
    old = {(node.label, node.key): _canonical(node) for node in old_nodes}
    new = {(node.label, node.key): _canonical(node) for node in nodes}
    rels_changed = sorted(map(_canonical, old_rels)) != sorted(map(_canonical, rels))
    if old == new and not rels_changed:
        return
    for label in DEFINITION_LABELS:
        stale = [key for (node_label, key) in old if node_label == label and (label, key) not in new]
        for keys in batched({"key": key} for key in stale):
            tx.run(DELETE_NODES[label], journey_id=journey_id, keys=[row["key"] for row in keys]).consume()
    if rels_changed:
        for query in DELETE_RELATIONSHIPS:
            tx.run(query, journey_id=journey_id).consume()
    for label in DEFINITION_LABELS:
        changed = [n for n in nodes if n.label == label and old.get((label, n.key)) != new[(label, n.key)]]
        for rows in batched(_node_row(journey_id, node) for node in changed):
            tx.run(UPSERT_NODES[label], journey_id=journey_id, rows=rows).consume()
    if rels_changed:
        for (rel_type, source_label), group in _by_type_and_source(nodes, rels).items():
            for rows in batched(_rel_row(rel) for rel in group):
                tx.run(CREATE_RELATIONSHIPS[rel_type, source_label], journey_id=journey_id, rows=rows).consume()


def _delete_journey(tx: ManagedTransaction, journey_id: str) -> None:
    for query in DELETE_JOURNEY:
        tx.run(query, journey_id=journey_id).consume()
