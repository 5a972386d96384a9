"""Tamper evidence for the event log: a hash chain per process, and its verifier.

Each event of a process gets the next `seq` (1, 2, ...) and
`row_hash = sha256(previous row_hash + "\\n" + canonical content)`, the first event of a
process chaining from the empty string. Changing a stored event breaks its own hash;
removing one leaves a gap in `seq` and breaks the next event's hash. Removing the newest
events of a process, or rewriting a history from some event on with freshly computed
hashes, leaves a chain that is still whole: the chain heads kept outside the database
(`verify_audit --heads`, shipped to another store as ASVS 16.4.3 asks, and checked later
with `--against`) are what catch those.

Chaining happens on every insert of an event (ProcessEvent's manager and `save`), inside
the inserting transaction and under the process row lock, which the services hold already
and which the chaining takes itself otherwise: appends to one process are serialised and
the chain never forks. The unique (process, seq) constraint backs that up. The newest
(seq, row_hash) of each process, its head, is kept on the process row under that lock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable, Mapping, Sequence

from django.db import connection
from django.db.models import Q

from .models import CHAIN_HEAD, ProcessEvent, ProcessInstance

GENESIS = ""


def _plain(value: Any) -> Any:
    """The value as the database gives it back: JSON types only, and an integral float as
    an int (jsonb turns 1e16 into 10000000000000000, which reads back as an int)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _timestamp(value: datetime) -> str:
    utc = value.astimezone(dt_timezone.utc)
    if utc.year < 1000:  # strftime's %Y does not pad it to four digits, isoformat does
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as that strftime, in a third less time: four of these a step.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# One encoder for every event (json.dumps with options makes one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical(*, process_id: int, seq: int, type: str, timestamp: datetime, user_id: int | None,
              username: str, task_id: int | None, atom_id: str, payload: Any) -> bytes:
    """The hashed content of one event: every column but its id and the hash itself."""
    content = {
        "process": process_id, "seq": seq, "type": type, "timestamp": _timestamp(timestamp),
        "user_id": user_id, "username": username, "task_id": task_id, "atom_id": atom_id,
        "payload": _plain(payload),
    }
    return _CANONICAL.encode(content).encode()


def link(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode() + b"\n" + content).hexdigest()


def _event_hash(previous: str, event: ProcessEvent) -> str:
    return link(previous, canonical(
        process_id=event.process_id, seq=event.seq, type=event.type, timestamp=event.timestamp,
        user_id=event.user_id, username=event.username, task_id=event.task_id, atom_id=event.atom_id,
        payload=event.payload,
    ))


def _lock_and_read_heads(process_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Lock the processes' rows and read their chain heads, in one statement: the heads
    live on the locked rows, so a statement that waited for a lock reads the heads that
    the transaction it waited for wrote."""
    rows = (ProcessInstance.objects.filter(pk__in=process_ids).order_by("pk").select_for_update()
            .values_list("pk", *CHAIN_HEAD))
    return {pid: (seq, head) for pid, seq, head in rows}


def chain(events: Iterable[ProcessEvent], *, processes: Mapping[int, ProcessInstance] | None = None) -> None:
    """Give unsaved events their `seq` and `row_hash`, continuing each process's chain,
    and move the chain heads forward.

    Runs inside the inserting transaction. `processes`: the events' process rows, which
    this transaction locked and then read (the services): the heads are read from them and
    moved forward in them, and the caller saves them with the rest of its writes (see
    `steps.events.EventLog`). Otherwise the rows are locked here, so a writer that did
    not lock them first still appends in turn instead of forking the chain, and their heads
    are written back here.
    """
    events = [event for event in events if event.seq is None]
    if not events:
        return
    if processes is not None:
        heads = {pid: (process.event_seq, process.event_head) for pid, process in processes.items()}
    else:
        heads = _lock_and_read_heads(sorted({event.process_id for event in events}))
    for event in events:
        seq, previous = heads.get(event.process_id, (0, GENESIS))
        event.seq = seq + 1
        event.row_hash = _event_hash(previous, event)
        heads[event.process_id] = (event.seq, event.row_hash)
    moved = {event.process_id for event in events}
    if processes is not None:
        for pid in moved:
            processes[pid].event_seq, processes[pid].event_head = heads[pid]
    else:
        ProcessInstance.objects.bulk_update(
            [ProcessInstance(pk=pid, event_seq=heads[pid][0], event_head=heads[pid][1]) for pid in sorted(moved)],
            CHAIN_HEAD,
        )


# --- verification --------------------------------------------------------------------------------

@dataclass
class Report:
    processes: int = 0
    events: int = 0
    unchained: int = 0  # written before the chain was switched on: nothing to check
    broken: str = ""  # the first broken link, one line; empty when the chain is whole


_COLUMNS = ("id", "process_id", "seq", "row_hash", "type", "timestamp", "user_id", "username", "task_id",
            "atom_id", "payload")


def verify(*, process_id: int | None = None, chunk_size: int = 2000) -> Report:
    """Walk every process's events in the order they were written and check each link.

    Stops at the first broken link. Events without a seq that precede a process's first
    chained event were written while chaining was off; one after it is a broken link.
    """
    rows = ProcessEvent.objects.order_by("process_id", "id")
    if process_id is not None:
        rows = rows.filter(process_id=process_id)
    report = Report()
    current: int | None = None
    expected, previous, started = 1, GENESIS, False
    for values in rows.values_list(*_COLUMNS).iterator(chunk_size=chunk_size):
        row = dict(zip(_COLUMNS, values))
        if row["process_id"] != current:
            current, expected, previous, started = row["process_id"], 1, GENESIS, False
            report.processes += 1
        report.events += 1
        where = f"process {current}: event {row['id']}"
        if row["seq"] is None:
            if started:
                report.broken = f"{where} ({row['type']}) is not in the hash chain: its seq and hash were removed"
                return report
            report.unchained += 1
            continue
        started = True
        if row["seq"] != expected:
            if row["seq"] > expected:
                missing = row["seq"] - expected
                report.broken = (f"{where} has seq {row['seq']} where {expected} was expected: "
                                 f"{missing} event(s) before it were deleted")
            else:
                report.broken = f"{where} has seq {row['seq']} where {expected} was expected: seq was changed"
            return report
        content = canonical(
            process_id=row["process_id"], seq=row["seq"], type=row["type"], timestamp=row["timestamp"],
            user_id=row["user_id"], username=row["username"], task_id=row["task_id"], atom_id=row["atom_id"],
            payload=row["payload"],
        )
        if link(previous, content) != row["row_hash"]:
            report.broken = f"{where} (seq {row['seq']}, {row['type']}) does not match its hash: changed after it was written"
            return report
        previous, expected = row["row_hash"], expected + 1
    return report


# --- anchoring the heads outside the database ----------------------------------------------------

def heads() -> list[tuple[int, int, str]]:
    """(process, seq, row_hash) of every process's newest chained event: what to keep outside
    the database, so that a later check finds events removed from the end of a history, or
    a history rewritten with fresh hashes (a chain alone cannot show either)."""
    rows = ProcessEvent.objects.filter(seq__isnull=False)
    if connection.vendor == "postgresql":
        rows = rows.order_by("process_id", "-seq").distinct("process_id")
        return [(pid, seq, row_hash) for pid, seq, row_hash in rows.values_list("process_id", "seq", "row_hash")]
    newest: dict[int, tuple[int, str]] = {}
    for pid, seq, row_hash in rows.order_by("process_id", "seq").values_list("process_id", "seq", "row_hash").iterator():
        newest[pid] = (seq, row_hash)
    return [(pid, seq, row_hash) for pid, (seq, row_hash) in sorted(newest.items())]


def check_heads(recorded: Iterable[tuple[int, int, str]]) -> str:
    """The first recorded head the log no longer holds as it was, one line; empty when all are
    there. Run after `verify`: a whole chain that still holds an old head is unchanged up to it."""
    recorded = list(recorded)
    stored: dict[tuple[int, int], str] = {}
    for start in range(0, len(recorded), 1000):
        batch = recorded[start:start + 1000]
        keys = Q()
        for pid, seq, _ in batch:
            keys |= Q(process_id=pid, seq=seq)
        stored.update({(pid, seq): row_hash for pid, seq, row_hash in
                       ProcessEvent.objects.filter(keys).values_list("process_id", "seq", "row_hash")})
    for pid, seq, row_hash in recorded:
        found = stored.get((pid, seq))
        if found is None:
            return f"process {pid}: event seq {seq}, recorded earlier, is gone: events were deleted from its end"
        if found != row_hash:
            return f"process {pid}: event seq {seq} has another hash than recorded earlier: its history was rewritten"
    return ""
