"""The runtime mirror: live process state in the Neo4j graph, for graph analytics.

    (:ProcessInstance {id, status, journey_id})-[:AT_STEP]->(:Atom)              active: a task is open
                                               -[:COMPLETED {timestamp}]->(:Atom)  completed
                                               -[:PENDING]->(:Atom)              waiting: may still run

A skipped atom has no relationship, nor has a cancelled one (an aborted process's steps that
were active: it is at none of them any more), and a closed process (completed or aborted)
keeps only its COMPLETED ones: nothing waits there any more. `timestamp` is an ISO 8601 UTC string of
fixed width (it sorts as it reads), not a temporal value: FalkorDB, which the tests run
on, cannot hold one.

PostgreSQL is the truth and the graph a projection of it. The event log says *which*
processes changed; the mirror then writes each such process's state as PostgreSQL holds it
now. So mirroring an event twice, or out of order, writes the same thing (idempotent by
construction), and what the events do not spell out (skipped atoms) is right as well. The
cursor, the id of the last event mirrored, lives in the graph itself as
`(:MirrorCursor {name, last_event_id})`: no SQL table, and a graph restored from an older
backup starts again from its own, older cursor.

Never inside a request's transaction: the periodic job `mirror_runtime` (`processes.jobs`) and `manage.py
graph_mirror` run it; `manage.py mirror_check` compares every process and reports what
differs (`--repair`: and repairs it). When Neo4j is down the engine does not notice; the
mirror resumes from its cursor when the server is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, Callable, Iterable, Iterator

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from ..models import EventType, ProcessEvent, ProcessInstance, ProcessStatus
from . import get_store

log = logging.getLogger(__name__)

CURSOR_NAME = "runtime"
# skipped and cancelled: none.
RELATIONSHIP_OF_STATE = {"active": "AT_STEP", "completed": "COMPLETED", "waiting": "PENDING"}
CLOSED_STATUSES = frozenset({ProcessStatus.COMPLETED, ProcessStatus.ABORTED})
# An event id missing below a visible one belongs to a transaction that is still open (ids
# are taken at insert, rows appear at commit) or that rolled back. The cursor waits this
# many seconds (setting GNDP_MIRROR_GAP_GRACE) for it before it counts the hole as a rollback.
DEFAULT_GAP_GRACE = 10.0

SCHEMA = (
    "CREATE INDEX FOR (n:ProcessInstance) ON (n.id)",
    "CREATE INDEX FOR (n:MirrorCursor) ON (n.name)",
)

READ_CURSOR = "MATCH (c:MirrorCursor {name: $name}) RETURN c.last_event_id AS last_event_id"

RESET_CURSOR = "MERGE (c:MirrorCursor {name: $name}) SET c.last_event_id = $last_event_id"

# Never backwards: two runs that overlap both leave the further of their positions.
ADVANCE_CURSOR = (
    "MERGE (c:MirrorCursor {name: $name}) "
    "SET c.last_event_id = CASE WHEN c.last_event_id IS NULL OR c.last_event_id < $last_event_id "
    "THEN $last_event_id ELSE c.last_event_id END"
)

# One row per relationship (not collected per process): a process of a large journey
# would otherwise come back as one record too large for some servers.
READ_PROCESSES = (
    "UNWIND $ids AS id MATCH (p:ProcessInstance {id: id}) "
    "OPTIONAL MATCH (p)-[r:AT_STEP|COMPLETED|PENDING]->(a:Atom) "
    "RETURN p.id AS id, p.status AS status, p.journey_id AS journey_id, "
    "type(r) AS type, a.id AS atom_id, r.timestamp AS timestamp"
)

PROCESS_IDS_AFTER = "MATCH (p:ProcessInstance) WHERE p.id > $after RETURN p.id AS id ORDER BY id LIMIT $limit"

JOURNEY_ATOMS = (
    "UNWIND $journey_ids AS journey_id MATCH (a:Atom {journey_id: journey_id}) "
    "RETURN a.journey_id AS journey_id, a.id AS atom_id"
)

UPSERT_PROCESSES = (
    "UNWIND $rows AS row MERGE (p:ProcessInstance {id: row.id}) "
    "SET p.status = row.status, p.journey_id = row.journey_id"
)

DELETE_PROCESSES = "UNWIND $rows AS row MATCH (p:ProcessInstance {id: row.id}) DETACH DELETE p"

REMOVE_RELATIONSHIPS = {
    "AT_STEP": (
        "UNWIND $rows AS row MATCH (:ProcessInstance {id: row.process_id})-[r:AT_STEP]->"
        "(:Atom {journey_id: row.journey_id, id: row.atom_id}) DELETE r"
    ),
    "COMPLETED": (
        "UNWIND $rows AS row MATCH (:ProcessInstance {id: row.process_id})-[r:COMPLETED]->"
        "(:Atom {journey_id: row.journey_id, id: row.atom_id}) DELETE r"
    ),
    "PENDING": (
        "UNWIND $rows AS row MATCH (:ProcessInstance {id: row.process_id})-[r:PENDING]->"
        "(:Atom {journey_id: row.journey_id, id: row.atom_id}) DELETE r"
    ),
}

# MERGE, not CREATE: two runs that overlap must not draw the same relationship twice.
ADD_RELATIONSHIPS = {
    "AT_STEP": (
        "UNWIND $rows AS row MATCH (p:ProcessInstance {id: row.process_id}) "
        "MATCH (a:Atom {journey_id: row.journey_id, id: row.atom_id}) MERGE (p)-[:AT_STEP]->(a)"
    ),
    "COMPLETED": (
        "UNWIND $rows AS row MATCH (p:ProcessInstance {id: row.process_id}) "
        "MATCH (a:Atom {journey_id: row.journey_id, id: row.atom_id}) "
        "MERGE (p)-[r:COMPLETED]->(a) SET r.timestamp = row.timestamp"
    ),
    "PENDING": (
        "UNWIND $rows AS row MATCH (p:ProcessInstance {id: row.process_id}) "
        "MATCH (a:Atom {journey_id: row.journey_id, id: row.atom_id}) MERGE (p)-[:PENDING]->(a)"
    ),
}

Relationship = tuple[str, str, "str | None"]  # (type, atom id, timestamp of COMPLETED)


@dataclass(frozen=True)
class MirroredProcess:
    """A process as the graph shows it, or as it should."""

    id: int
    status: str
    journey_id: str
    relationships: frozenset[Relationship]
    duplicated: frozenset[Relationship] = frozenset()  # drawn more than once (graph side only)


@dataclass(frozen=True)
class Change:
    """What makes the graph show one process as PostgreSQL has it."""

    process_id: int
    journey_id: str
    status: str | None  # None: the process is gone from PostgreSQL, drop its node
    node_missing: bool = False
    status_differs: bool = False
    add: frozenset[Relationship] = frozenset()
    remove: frozenset[Relationship] = frozenset()


@dataclass
class Comparison:
    processes: int = 0
    changes: list[Change] = field(default_factory=list)
    unmirrorable: int = 0  # relationships whose atom is not in the graph (journey not stored there)


@dataclass
class MirrorRun:
    events: int = 0
    processes: int = 0
    cursor: int = 0
    changed: int = 0


@dataclass
class Reconciliation:
    processes: int = 0
    missing_nodes: int = 0
    status_differences: int = 0
    missing_relationships: int = 0
    extra_relationships: int = 0
    orphan_nodes: int = 0
    unmirrorable: int = 0
    repaired: bool = False

    @property
    def differences(self) -> int:
        return (self.missing_nodes + self.status_differences + self.missing_relationships
                + self.extra_relationships + self.orphan_nodes)


def mirror_store():
    """The Neo4j store when one is configured, else None: the mirror has nothing to do."""
    from .neo4j_store import Neo4jGraphStore  # the driver loads only where Neo4j is configured

    store = get_store()
    return store if isinstance(store, Neo4jGraphStore) else None


# --- following the event log -------------------------------------------------------------------

def mirror_events(store, *, batch_size: int = 500, max_events: int | None = None,
                  grace: timedelta | None = None) -> MirrorRun:
    """Mirror the processes that events after the cursor touched, and move the cursor."""
    if grace is None:
        grace = timedelta(seconds=float(getattr(settings, "GNDP_MIRROR_GAP_GRACE", DEFAULT_GAP_GRACE)))
    store.ensure_schema(SCHEMA)
    run = MirrorRun(cursor=_cursor_of_this_log(store))
    seen = run.cursor
    atoms: dict[str, set[str]] = {}
    while max_events is None or run.events < max_events:
        events = list(
            ProcessEvent.objects.filter(pk__gt=seen).order_by("pk")
            .values_list("pk", "process_id", "timestamp")[:batch_size]
        )
        if not events:
            break
        process_ids = sorted({process_id for _, process_id, _ in events})
        comparison = sync_processes(store, process_ids, atoms=atoms)
        run.events += len(events)
        run.processes += len(process_ids)
        run.changed += len(comparison.changes)
        if run.cursor == seen:  # once held at a hole, the cursor stays there for this run
            run.cursor = settled_cursor(run.cursor, [(pk, at) for pk, _, at in events], timezone.now(), grace)
            write_cursor(store, run.cursor)
        seen = events[-1][0]
    return run


def settled_cursor(cursor: int, events: list[tuple[int, datetime]], now: datetime, grace: timedelta) -> int:
    """The highest event id at or below which no more events can appear."""
    for event_id, at in events:
        if event_id != cursor + 1 and now - at < grace:
            break
        cursor = event_id
    return cursor


def read_cursor(store) -> int:
    rows = store.read(_fetch_cursor, CURSOR_NAME)
    return int(rows[0]["last_event_id"] or 0) if rows else 0


def write_cursor(store, last_event_id: int) -> None:
    store.write(_advance_cursor, CURSOR_NAME, last_event_id)


def _cursor_of_this_log(store) -> int:
    """The graph's cursor, unless it is past the end of the event log: then it was left by
    another database (or this one was restored from a backup), and every event is mirrored
    again (harmless: the mirror writes state, not increments)."""
    cursor = read_cursor(store)
    last = ProcessEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    if cursor > last:
        log.warning("mirror cursor %s is past the last event %s: mirroring from the start", cursor, last)
        store.write(_reset_cursor, CURSOR_NAME, 0)
        return 0
    return cursor


# --- comparing and repairing -------------------------------------------------------------------

def reconcile(store, *, repair: bool = True, chunk: int = 200) -> Reconciliation:
    """Compare every process in PostgreSQL with the graph, and (unless `repair` is False)
    make the graph match. Process nodes whose process is gone are dropped too."""
    store.ensure_schema(SCHEMA)
    report = Reconciliation(repaired=repair)
    atoms: dict[str, set[str]] = {}
    after = 0
    while ids := list(ProcessInstance.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:chunk]):
        comparison = sync_processes(store, ids, repair=repair, atoms=atoms)
        _count(report, comparison)
        after = ids[-1]
    orphans = _orphan_changes(store, chunk)
    report.orphan_nodes = len(orphans)
    if repair and orphans:
        store.write(_apply_changes, orphans, store.batches)
    return report


def _count(report: Reconciliation, comparison: Comparison) -> None:
    report.processes += comparison.processes
    report.unmirrorable += comparison.unmirrorable
    for change in comparison.changes:
        report.missing_nodes += change.node_missing
        report.status_differences += change.status_differs
        report.missing_relationships += len(change.add)
        report.extra_relationships += len(change.remove)


def _orphan_changes(store, chunk: int) -> list[Change]:
    orphans: list[Change] = []
    after = 0
    while rows := store.read(_fetch_process_ids, after, chunk):
        ids = [row["id"] for row in rows]
        known = set(ProcessInstance.objects.filter(pk__in=ids).values_list("pk", flat=True))
        orphans.extend(Change(process_id=pk, journey_id="", status=None) for pk in ids if pk not in known)
        after = ids[-1]
    return orphans


def sync_processes(store, process_ids: list[int], *, repair: bool = True,
                   atoms: dict[str, set[str]] | None = None) -> Comparison:
    """Compare these processes with the graph and, when `repair`, write the differences."""
    wanted = process_states(process_ids)
    present = _journey_atoms(store, {process.journey_id for process in wanted.values()}, atoms)
    wanted, unmirrorable = _drawable(wanted, present)
    shown = graph_states(store, process_ids)
    changes = [change for pk in process_ids if (change := difference(wanted.get(pk), shown.get(pk)))]
    if repair and changes:
        store.write(_apply_changes, changes, store.batches)
    return Comparison(processes=len(process_ids), changes=changes, unmirrorable=unmirrorable)


def difference(wanted: MirroredProcess | None, shown: MirroredProcess | None) -> Change | None:
    if wanted is None:
        return Change(shown.id, shown.journey_id, None) if shown is not None else None
    if shown is None:
        return Change(wanted.id, wanted.journey_id, wanted.status, node_missing=True, add=wanted.relationships)
    status_differs = (shown.status, shown.journey_id) != (wanted.status, wanted.journey_id)
    remove = (shown.relationships - wanted.relationships) | shown.duplicated
    # Removing deletes every relationship of that type into that atom (a duplicate, or the
    # right one beside a wrong timestamp): whatever of those is wanted is drawn again, once.
    removed = {(rel_type, atom_id) for rel_type, atom_id, _ in remove}
    add = (wanted.relationships - shown.relationships) | {rel for rel in wanted.relationships if rel[:2] in removed}
    if not (status_differs or remove or add):
        return None
    return Change(wanted.id, wanted.journey_id, wanted.status, status_differs=status_differs,
                  add=frozenset(add), remove=frozenset(remove))


# --- the two sides ------------------------------------------------------------------------------

def process_states(process_ids: Iterable[int]) -> dict[int, MirroredProcess]:
    """What the graph should show for these processes, from PostgreSQL."""
    process_ids = list(process_ids)
    completed_at = _completion_times(process_ids)
    rows = ProcessInstance.objects.filter(pk__in=process_ids).values_list("pk", "status", "journey_id", "atom_states")
    return {
        pk: MirroredProcess(pk, status, journey_id, frozenset(_relationships(status, states, completed_at.get(pk, {}))))
        for pk, status, journey_id, states in rows
    }


def _relationships(status: str, atom_states: dict[str, str], completed_at: dict[str, str]) -> Iterator[Relationship]:
    for atom_id, state in atom_states.items():
        rel_type = RELATIONSHIP_OF_STATE.get(state)
        if rel_type is None or (status in CLOSED_STATUSES and rel_type != "COMPLETED"):
            continue
        yield (rel_type, atom_id, completed_at.get(atom_id) if rel_type == "COMPLETED" else None)


def _completion_times(process_ids: list[int]) -> dict[int, dict[str, str]]:
    rows = (
        ProcessEvent.objects.filter(process_id__in=process_ids, type=EventType.TASK_COMPLETED)
        .order_by().values("process_id", "atom_id").annotate(at=Max("timestamp"))
    )
    times: dict[int, dict[str, str]] = {}
    for row in rows:
        times.setdefault(row["process_id"], {})[row["atom_id"]] = iso_timestamp(row["at"])
    return times


def iso_timestamp(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def graph_states(store, process_ids: list[int]) -> dict[int, MirroredProcess]:
    """What the graph shows for these processes."""
    rows: list[dict[str, Any]] = []
    for batch in store.batches({"id": pk} for pk in process_ids):
        rows.extend(store.read(_fetch_processes, [row["id"] for row in batch]))
    found: dict[int, tuple[str, str, list[Relationship]]] = {}
    for row in rows:
        status, journey_id, rels = found.setdefault(row["id"], (row["status"], row["journey_id"], []))
        if row["type"] is not None:
            rels.append((row["type"], row["atom_id"], row["timestamp"]))
    return {
        pk: MirroredProcess(pk, status, journey_id, frozenset(rels),
                            frozenset(rel for rel in rels if rels.count(rel) > 1))
        for pk, (status, journey_id, rels) in found.items()
    }


def _journey_atoms(store, journey_ids: set[str], cache: dict[str, set[str]] | None) -> dict[str, set[str]]:
    cache = {} if cache is None else cache
    missing = sorted(journey_ids - cache.keys())
    if missing:
        for journey_id in missing:
            cache[journey_id] = set()
        for row in store.read(_fetch_journey_atoms, missing):
            cache[row["journey_id"]].add(row["atom_id"])
    return cache


def _drawable(wanted: dict[int, MirroredProcess], atoms: dict[str, set[str]]) -> tuple[dict[int, MirroredProcess], int]:
    """Only relationships into atoms the graph holds can be drawn (a journey published
    before Neo4j was configured is not there); they are counted, not reported as differences."""
    drawable: dict[int, MirroredProcess] = {}
    left_out = 0
    for pk, process in wanted.items():
        present = atoms.get(process.journey_id, set())
        rels = frozenset(rel for rel in process.relationships if rel[1] in present)
        left_out += len(process.relationships) - len(rels)
        drawable[pk] = MirroredProcess(pk, process.status, process.journey_id, rels)
    return drawable, left_out


# --- transaction functions ------------------------------------------------------------------------

def _fetch_cursor(tx, name: str) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(READ_CURSOR, name=name)]


def _advance_cursor(tx, name: str, last_event_id: int) -> None:
    tx.run(ADVANCE_CURSOR, name=name, last_event_id=last_event_id).consume()


def _reset_cursor(tx, name: str, last_event_id: int) -> None:
    tx.run(RESET_CURSOR, name=name, last_event_id=last_event_id).consume()


def _fetch_processes(tx, ids: list[int]) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(READ_PROCESSES, ids=ids)]


def _fetch_process_ids(tx, after: int, limit: int) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(PROCESS_IDS_AFTER, after=after, limit=limit)]


def _fetch_journey_atoms(tx, journey_ids: list[str]) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(JOURNEY_ATOMS, journey_ids=journey_ids)]


def _apply_changes(tx, changes: list[Change], batched: Callable[[Iterable[dict]], Iterator[list[dict]]]) -> None:
    """Removals first, then additions: a relationship that is both (a duplicate, a changed
    timestamp) ends up drawn exactly once."""
    gone = [{"id": change.process_id} for change in changes if change.status is None]
    for rows in batched(gone):
        tx.run(DELETE_PROCESSES, rows=rows).consume()
    nodes = [{"id": c.process_id, "status": c.status, "journey_id": c.journey_id}
             for c in changes if c.status is not None and (c.node_missing or c.status_differs)]
    for rows in batched(nodes):
        tx.run(UPSERT_PROCESSES, rows=rows).consume()
    for rel_type, query in REMOVE_RELATIONSHIPS.items():
        for rows in batched(_relationship_rows(changes, "remove", rel_type)):
            tx.run(query, rows=rows).consume()
    for rel_type, query in ADD_RELATIONSHIPS.items():
        for rows in batched(_relationship_rows(changes, "add", rel_type)):
            tx.run(query, rows=rows).consume()


def _relationship_rows(changes: list[Change], side: str, rel_type: str) -> Iterator[dict[str, Any]]:
    for change in changes:
        for kind, atom_id, timestamp in sorted(getattr(change, side), key=str):
            if kind == rel_type:
                yield {"process_id": change.process_id, "journey_id": change.journey_id,
                       "atom_id": atom_id, "timestamp": timestamp}
