"""Graph analytics of live and past process state: where processes wait now, and which ways
they travel.

    waiting_hotspots(limit)               atoms with the most running processes waiting on
                                          them now (the atom is active: its task is open)
    travelled_paths(since, until, limit)  the most travelled consecutive step pairs: atom A
                                          completed, then atom B next in the same process,
                                          with B's completion in [since, until)

Each is computed in Cypher over the runtime mirror (processes/graph/mirror.py) when the
Neo4j store is configured, and in SQL over the tables otherwise, with the same results: a
test runs both on the same data and compares. In Cypher a process waits where it has an
AT_STEP relationship, and its completed steps are its COMPLETED {timestamp} relationships;
in SQL they are the open tasks and the `task.completed` events (the latest per atom, as the
mirror keeps them). The Cypher answers are as fresh as the mirror (a few seconds behind),
and only cover journeys stored in Neo4j; when Neo4j is unreachable the SQL answers stand in
(`Analysis.computed_in` says which one answered).

Ties are broken by ids in code-point order everywhere (Cypher's string order; the binary
collation in SQL), so both sides agree on which rows a limit keeps. Only the processes a
caller may see count: `processes` (a queryset) restricts both; in Cypher the ids travel as
a parameter, in batches the store's size limits allow.

Every Cypher text is a module-level constant with parameters (tests/graph/test_cypher_constants.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from django.db import connection
from django.db.models import Count, F, Max, QuerySet, Window
from django.db.models.functions import Collate, Lag
from django.utils import timezone

from tasks.models import OPEN_TASK_STATUSES, TaskInstance

from ..models import EventType, ProcessEvent, ProcessInstance, ProcessStatus
from ..versions import definition_of, latest_version
from .base import GraphStoreUnavailable
from .mirror import iso_timestamp, mirror_store

log = logging.getLogger(__name__)

CYPHER, SQL = "cypher", "sql"
RUNNING = ProcessStatus.RUNNING.value
DEFAULT_LIMIT = 20

WAITING_HOTSPOTS = (
    "MATCH (p:ProcessInstance {status: $status})-[:AT_STEP]->(a:Atom) "
    "RETURN p.journey_id AS journey_id, a.id AS atom_id, count(DISTINCT p.id) AS processes "
    "ORDER BY processes DESC, journey_id, atom_id LIMIT $limit"
)

# Per batch of visible process ids: counts only, added up (a process is in one batch), then
# ordered and cut in Python by the same keys.
WAITING_HOTSPOTS_AMONG = (
    "UNWIND $ids AS id MATCH (p:ProcessInstance {id: id, status: $status})-[:AT_STEP]->(a:Atom) "
    "RETURN p.journey_id AS journey_id, a.id AS atom_id, count(DISTINCT p.id) AS processes"
)

# The processes that completed something in the window; each one's completions in time
# order (ties by atom id); the consecutive pairs whose second step is in the window.
TRAVELLED_PATHS = (
    "MATCH (p:ProcessInstance)-[w:COMPLETED]->(:Atom) WHERE w.timestamp >= $since AND w.timestamp < $until "
    "WITH DISTINCT p "
    "MATCH (p)-[r:COMPLETED]->(a:Atom) WHERE r.timestamp IS NOT NULL "
    "WITH p, r.timestamp AS at, a.id AS atom_id ORDER BY at, atom_id "
    "WITH p, collect(atom_id) AS steps, collect(at) AS times "
    "UNWIND range(1, size(steps) - 1) AS i "
    "WITH p.journey_id AS journey_id, steps[i - 1] AS source, steps[i] AS target, times[i] AS at "
    "WHERE at >= $since AND at < $until "
    "RETURN journey_id, source, target, count(*) AS travelled "
    "ORDER BY travelled DESC, journey_id, source, target LIMIT $limit"
)

TRAVELLED_PATHS_AMONG = (
    "UNWIND $ids AS id MATCH (p:ProcessInstance {id: id})-[w:COMPLETED]->(:Atom) "
    "WHERE w.timestamp >= $since AND w.timestamp < $until "
    "WITH DISTINCT p "
    "MATCH (p)-[r:COMPLETED]->(a:Atom) WHERE r.timestamp IS NOT NULL "
    "WITH p, r.timestamp AS at, a.id AS atom_id ORDER BY at, atom_id "
    "WITH p, collect(atom_id) AS steps, collect(at) AS times "
    "UNWIND range(1, size(steps) - 1) AS i "
    "WITH p.journey_id AS journey_id, steps[i - 1] AS source, steps[i] AS target, times[i] AS at "
    "WHERE at >= $since AND at < $until "
    "RETURN journey_id, source, target, count(*) AS travelled"
)

# SQL: code-point order for ids, whatever the database's collation.
BINARY_COLLATION = {"postgresql": "C", "sqlite": "BINARY"}


@dataclass(frozen=True)
class Analysis:
    rows: list[dict[str, Any]]
    computed_in: str  # "cypher" | "sql"


def waiting_hotspots(limit: int = DEFAULT_LIMIT, *, processes: QuerySet[ProcessInstance] | None = None,
                     using: str | None = None) -> Analysis:
    """Atoms by the number of running processes waiting on them now, most first:
    {journey_id, atom_id, atom_name, processes}. `processes` restricts the count to those
    (None: all); `using` forces "cypher" or "sql" (tests)."""
    analysis = _answer(using, lambda store: _hotspots_cypher(store, limit, processes),
                       lambda: _hotspots_sql(limit, processes))
    names = _atom_names({row["journey_id"] for row in analysis.rows})
    rows = [{"journey_id": row["journey_id"], "atom_id": row["atom_id"],
             "atom_name": names.get((row["journey_id"], row["atom_id"])), "processes": row["processes"]}
            for row in analysis.rows]
    return Analysis(rows, analysis.computed_in)


def travelled_paths(since: datetime, until: datetime, limit: int = DEFAULT_LIMIT, *,
                    processes: QuerySet[ProcessInstance] | None = None, using: str | None = None) -> Analysis:
    """Consecutive step pairs by how often processes travelled them in [since, until), most
    first: {journey_id, source, target, source_name, target_name, travelled}. A pair is
    travelled when its target completes in the window right after its source (in the
    same process, whenever the source completed)."""
    since, until = _aware(since), _aware(until)
    analysis = _answer(using, lambda store: _paths_cypher(store, since, until, limit, processes),
                       lambda: _paths_sql(since, until, limit, processes))
    names = _atom_names({row["journey_id"] for row in analysis.rows})
    rows = [{"journey_id": row["journey_id"], "source": row["source"], "target": row["target"],
             "source_name": names.get((row["journey_id"], row["source"])),
             "target_name": names.get((row["journey_id"], row["target"])), "travelled": row["travelled"]}
            for row in analysis.rows]
    return Analysis(rows, analysis.computed_in)


def _answer(using: str | None, in_cypher, in_sql) -> Analysis:
    if using not in (None, CYPHER, SQL):
        raise ValueError(f"using must be {CYPHER!r} or {SQL!r}, not {using!r}")
    store = None if using == SQL else mirror_store()
    if store is None:
        if using == CYPHER:
            raise ValueError("the Cypher analytics need the Neo4j graph store: set NEO4J_URI")
        return Analysis(in_sql(), SQL)
    try:
        return Analysis(in_cypher(store), CYPHER)
    except GraphStoreUnavailable as exc:
        if using == CYPHER:
            raise
        log.warning("graph analytics answered from SQL: %s", exc.message)
        return Analysis(in_sql(), SQL)


def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


# --- Cypher ------------------------------------------------------------------------------------------

def _hotspots_cypher(store, limit: int, processes: QuerySet | None) -> list[dict[str, Any]]:
    if processes is None:
        return store.read(_fetch_hotspots, limit)
    ids = processes.filter(status=RUNNING).values_list("pk", flat=True)
    counts: Counter[tuple[str, str]] = Counter()
    for batch in _id_batches(store, ids):
        for row in store.read(_fetch_hotspots_among, batch):
            counts[row["journey_id"], row["atom_id"]] += row["processes"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"journey_id": journey_id, "atom_id": atom_id, "processes": n} for (journey_id, atom_id), n in ordered]


def _paths_cypher(store, since: datetime, until: datetime, limit: int,
                  processes: QuerySet | None) -> list[dict[str, Any]]:
    window = (iso_timestamp(since), iso_timestamp(until))
    if processes is None:
        return store.read(_fetch_paths, *window, limit)
    touched = ProcessEvent.objects.filter(type=EventType.TASK_COMPLETED, timestamp__gte=since, timestamp__lt=until)
    ids = processes.filter(pk__in=touched.values("process_id")).values_list("pk", flat=True)
    counts: Counter[tuple[str, str, str]] = Counter()
    for batch in _id_batches(store, ids):
        for row in store.read(_fetch_paths_among, batch, *window):
            counts[row["journey_id"], row["source"], row["target"]] += row["travelled"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"journey_id": journey_id, "source": source, "target": target, "travelled": n}
            for (journey_id, source, target), n in ordered]


def _id_batches(store, ids: Iterable[int]) -> Iterable[list[int]]:
    for batch in store.batches({"id": pk} for pk in ids.order_by("pk")):
        yield [row["id"] for row in batch]


def _fetch_hotspots(tx, limit: int) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(WAITING_HOTSPOTS, status=RUNNING, limit=limit)]


def _fetch_hotspots_among(tx, ids: list[int]) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(WAITING_HOTSPOTS_AMONG, ids=ids, status=RUNNING)]


def _fetch_paths(tx, since: str, until: str, limit: int) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(TRAVELLED_PATHS, since=since, until=until, limit=limit)]


def _fetch_paths_among(tx, ids: list[int], since: str, until: str) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(TRAVELLED_PATHS_AMONG, ids=ids, since=since, until=until)]


# --- SQL -----------------------------------------------------------------------------------------------

def _binary(expression):
    return Collate(expression, BINARY_COLLATION[connection.vendor])


def _hotspots_sql(limit: int, processes: QuerySet | None) -> list[dict[str, Any]]:
    # A running process's atom is active exactly while its task is open.
    tasks = TaskInstance.objects.filter(status__in=OPEN_TASK_STATUSES, process__status=RUNNING)
    if processes is not None:
        tasks = tasks.filter(process__in=processes.values("pk"))
    rows = (
        tasks.values("atom_id", journey_id=F("process__journey_id"))
        .annotate(processes=Count("process_id", distinct=True))
        .order_by("-processes", _binary(F("journey_id")).asc(), _binary(F("atom_id")).asc())[:limit]
    )
    return [{"journey_id": row["journey_id"], "atom_id": row["atom_id"], "processes": row["processes"]}
            for row in rows]


def _paths_sql(since: datetime, until: datetime, limit: int, processes: QuerySet | None) -> list[dict[str, Any]]:
    completions = ProcessEvent.objects.filter(type=EventType.TASK_COMPLETED)
    touched = completions.filter(timestamp__gte=since, timestamp__lt=until)
    if processes is not None:
        touched = touched.filter(process__in=processes.values("pk"))
    # Per process and atom the latest completion (what the mirror keeps), and the atom
    # completed just before it in the same process.
    steps = (
        completions.filter(process_id__in=touched.values("process_id"))
        .values("process_id", "atom_id", journey_id=F("process__journey_id"))
        .annotate(at=Max("timestamp"))
        .annotate(previous=Window(Lag("atom_id"), partition_by=[F("process_id")],
                                  order_by=[F("at").asc(), _binary(F("atom_id")).asc()]))
        .order_by()
    )
    # Grouping over a window function's result needs a derived table, which the ORM does
    # not build: the ORM's own SQL (with its parameters) goes inside this one.
    steps_sql, params = steps.query.sql_with_params()
    quote = connection.ops.quote_name
    journey, previous, atom, at = (quote(name) for name in ("journey_id", "previous", "atom_id", "at"))
    collation = quote(BINARY_COLLATION[connection.vendor])
    sql = (
        f"SELECT {journey}, {previous}, {atom}, COUNT(*) AS travelled FROM ({steps_sql}) steps "
        f"WHERE {previous} IS NOT NULL AND {at} >= %s AND {at} < %s "
        f"GROUP BY {journey}, {previous}, {atom} "
        f"ORDER BY travelled DESC, {journey} COLLATE {collation}, {previous} COLLATE {collation}, "
        f"{atom} COLLATE {collation} LIMIT %s"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, adapt(since), adapt(until), limit])
        rows = cursor.fetchall()
    return [{"journey_id": journey_id, "source": source, "target": target, "travelled": travelled}
            for journey_id, source, target, travelled in rows]


# --- names ---------------------------------------------------------------------------------------------

def _atom_names(journey_ids: set[str]) -> dict[tuple[str, str], str]:
    """(journey id, atom id) -> the atom's name in the journey's latest version."""
    names: dict[tuple[str, str], str] = {}
    for journey_id in sorted(journey_ids):
        version = latest_version(journey_id)
        if version is None:
            continue
        definition = definition_of(version.pk)
        for atom in [*definition.get("roles", []), *definition.get("atoms", [])]:
            names[journey_id, atom["id"]] = atom.get("name")
    return names
