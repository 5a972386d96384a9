"""Tamper evidence for the event log: the verifier of its hash chain (`processes.hashchain`).

Changing a stored event breaks its own hash; removing one leaves a gap in `seq` and breaks
the next event's hash. Removing the newest events of a process, or rewriting a history from
some event on with freshly computed hashes, leaves a chain that is still whole: the chain
heads kept outside the database (`verify_audit --heads`, shipped to another store as ASVS
16.4.3 asks, and checked later with `--against`) are what catch those.

Chaining happens on every insert of an event (ProcessEvent's manager and `save`), inside
the inserting transaction and under the process row lock, which the services hold already
and which the chaining takes itself otherwise: appends to one process are serialised and
the chain never forks. The unique (process, seq) constraint backs that up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from django.db import connection
from django.db.models import Q

from .hashchain import GENESIS, canonical, link
from .models import ProcessEvent


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
