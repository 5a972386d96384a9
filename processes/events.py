"""Writing to the event log inside a service's transaction, publishing after commit."""

from __future__ import annotations

import logging
from typing import Any, Iterable

from django.db import transaction

from .models import ProcessEvent, ProcessInstance
from .writes import Writes

log = logging.getLogger(__name__)


class EventLog:
    """Collects one transaction's events; `flush` writes them in one statement, together
    with the step's other writes that the engine left in `writes` (one round trip on
    PostgreSQL: see `processes.writes`)."""

    def __init__(self, actor=None):
        self.actor = actor
        self.pending: list[ProcessEvent] = []
        self.writes = Writes()

    def add(self, process: ProcessInstance, type: str, *, task=None, atom_id: str = "", **payload: Any) -> None:
        user = self.actor if self.actor is not None and self.actor.is_authenticated else None
        self.pending.append(
            ProcessEvent(
                process_id=process.pk,
                type=type,
                user_id=user.pk if user else None,
                username=user.get_username() if user else "",
                task_id=task.pk if task is not None else None,
                atom_id=atom_id or (task.atom_id if task is not None else ""),
                payload=payload,
            )
        )

    def flush(self) -> list[ProcessEvent]:
        events, self.pending = self.pending, []
        self.writes.insert(events)
        self.writes.execute()
        if events:
            transaction.on_commit(lambda: publish(events))
        return events


def publish(events: Iterable[ProcessEvent]) -> None:
    """Fan events out to live clients. Never raises: a broker outage degrades live
    updates only, and clients resynchronise over REST."""
    from .live import broadcast

    try:
        broadcast(list(events))
    except Exception:  # noqa: BLE001 - notification is best effort by design
        log.warning("could not publish %d events", len(list(events)), exc_info=True)
