"""The events of one transaction: collected, hash-chained and written with the step's other
writes (one round trip on PostgreSQL: `steps.writes`), published after the commit
(`processes.events.publish`)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from processes.events import publish
from processes.models import CHAIN_HEAD, ProcessEvent, ProcessInstance, chain_events

from .rows import maker
from .writes import Writes


class EventLog:
    """Collects one transaction's events; `flush` writes them in one statement, together
    with the step's other writes that the engine left in `writes` (one round trip on
    PostgreSQL: see `steps.writes`)."""

    def __init__(self, actor=None, *, process_locked: bool = False):
        self.actor = actor
        # The transaction locked the process rows first and read them after the lock (the
        # task services): the hash chain takes its heads from those rows and moves them
        # forward there, and they are saved with the step's writes.
        self.process_locked = process_locked
        self.processes: dict[int, ProcessInstance] = {}
        self.pending: list[ProcessEvent] = []
        self.writes = Writes()

    def add(self, process: ProcessInstance, type: str, *, task=None, atom_id: str = "", **payload: Any) -> None:
        user = self.actor if self.actor is not None and self.actor.is_authenticated else None
        self.processes.setdefault(process.pk, process)
        self.pending.append(
            maker(ProcessEvent).new(
                process_id=process.pk,
                type=type,
                user_id=user.pk if user else None,
                username=user.get_username() if user else "",
                task_id=task.pk if task is not None else None,
                atom_id=atom_id or (task.atom_id if task is not None else ""),
                payload=payload,
            )
        )

    def flush(self, *, commit: bool = False) -> list[ProcessEvent]:
        """Write the collected events, hash-chained, with the step's other writes.
        `commit`: the transaction writes nothing more (see `Writes.execute`)."""
        events, self.pending = self.pending, []
        if self.process_locked:
            chain_events(events, processes=self.processes)
            for process in {self.processes[event.process_id] for event in events}:
                self.writes.update(process, CHAIN_HEAD)
        else:
            chain_events(events)
        self.writes.insert(events)
        self.writes.execute(commit=commit)
        if events:
            transaction.on_commit(lambda: publish(events))
        return events
