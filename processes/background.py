"""After-commit work that must not hold up the request: a daemon thread per kind of work,
draining a queue in order.

Live updates and the hand-off of notifications to a worker are each a send to the broker
(a round trip or more): done inline, they were a fifth of a task completion's time. Here
the request only appends to a queue; whatever piled up meanwhile, or arrives within the
drain's `linger`, goes out as one batch.
Both are best effort by design: what a process takes with it when it exits, the clients
resynchronise over REST and the notification relay delivers from the event log. A batch
whose handler met a database connection the server had dropped, before it wrote anything,
runs once more on a new connection (`gndp.db_faults.once_more_if_lost`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable

from gndp import db_faults

log = logging.getLogger(__name__)


class Drain:
    """Hands the items put here to `handle`, in order and in batches, on its own thread."""

    def __init__(self, name: str, handle: Callable[[list[Any]], None], *, linger: float = 0.0) -> None:
        self.name = name
        self.handle = handle
        # How long the first item of a batch waits for others: under load, one send per
        # many commits instead of one per commit, the most of which holds up the thread
        # that commits (the interpreter runs one thread at a time).
        self.linger = linger
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0  # items put and not yet handled
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def put(self, items: list[Any]) -> None:
        if not items:
            return
        with self._idle:
            self._pending += len(items)
        self._queue.put(items)
        self._ensure_running()

    def wait(self, timeout: float = 5.0) -> bool:
        """Until everything put so far was handled (tests, shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _ensure_running(self) -> None:
        # A forked child (a pre-forking server) inherits the queue but not the thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=f"gndp-{self.name}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = list(self._queue.get())
            if self.linger:
                time.sleep(self.linger)
            while not self._queue.empty():
                batch += self._queue.get_nowait()
            try:
                # A handler that reads or writes the database and met a connection the server
                # had dropped, before it wrote anything, runs once more on a new one.
                db_faults.once_more_if_lost(self.handle, batch)
            except Exception:  # noqa: BLE001 - best effort: see the module's docstring
                log.warning("%s: could not handle %d items", self.name, len(batch), exc_info=True)
            with self._idle:
                self._pending -= len(batch)
                if not self._pending:
                    self._idle.notify_all()
