"""The event log's hash chain: what is hashed and how events are linked.

Each event of a process gets the next `seq` (1, 2, ...) and
`row_hash = sha256(previous row_hash + "\\n" + canonical content)`, the first event of a
process chaining from the empty string. The newest (seq, row_hash) of each process, its
head, is kept on the process row (`ProcessInstance.event_seq`, `event_head`).

Chaining happens on every insert of an event (`processes.models.chain_events`, called by
ProcessEvent's manager and `save`), so this module imports no models: the models import it.
Verifying a stored chain is `processes.audit`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable

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


def event_hash(previous: str, event) -> str:
    """The `row_hash` of an unsaved ProcessEvent whose `seq` is set."""
    return link(previous, canonical(
        process_id=event.process_id, seq=event.seq, type=event.type, timestamp=event.timestamp,
        user_id=event.user_id, username=event.username, task_id=event.task_id, atom_id=event.atom_id,
        payload=event.payload,
    ))


def link_events(events: Iterable, heads: dict[int, tuple[int, str]]) -> set[int]:
    """Give unsaved events (each without a `seq`) their `seq` and `row_hash`, continuing
    from `heads` (process id -> its newest (seq, row_hash)), which are moved forward in
    place. Returns the ids of the processes whose head moved."""
    for event in events:
        seq, previous = heads.get(event.process_id, (0, GENESIS))
        event.seq = seq + 1
        event.row_hash = event_hash(previous, event)
        heads[event.process_id] = (event.seq, event.row_hash)
    return {event.process_id for event in events}
