"""Live updates across processes on the in-memory channel layer (the embedded default).

The in-memory layer reaches the sockets of its own process only: what a worker commits (a
task a system step created, the notifications of its deliveries) would reach a browser only
at its next reload. So a server process that has sockets open follows the tables other
processes write: every `GNDP_LIVE_TAIL_SECONDS` it reads the rows committed since it last
looked and hands them on to its listeners, as the committing process would have with Redis.
It starts when a socket joins its groups (`listen`, before the socket is accepted) and stops
a few seconds after the last one left; each start begins at the end of the tables.

Each kind of live message is a `Hand` on a table: the events go to the process, inbox,
role and dashboard groups (`processes.live`) and to the discussions of tasks
(`collaboration.live`); the notifications ring the bells (`notifications.live`). A row
this process committed itself is handed on at its commit, the others by the tail: each
`Hand` passes a row on once in this process whichever comes first (`Hand.fresh`).

Ids are taken at INSERT and become visible at COMMIT, so a later id can be seen before an
earlier one still in a transaction: an id skipped over is remembered as a hole and looked
for again at every round until it shows up or `GRACE` has passed (then it was a rollback),
as the notification relay's `settled` treats holes before moving its cursor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable

from django.conf import settings
from django.db import connections

from gndp.forksafe import database_use

log = logging.getLogger(__name__)

GRACE = 60.0  # seconds a hole is looked for, as the notification relay waits for one
BATCH = 500  # rows a read; a longer backlog is read in several, in the same round
MAX_HOLES = 10_000  # a larger gap (a big rollback) is not worth looking into id by id
QUIET = 5.0  # seconds without listeners before the tail stops
REMEMBERED = 20_000  # ids a Hand remembers having passed on
START_WINDOW = 200  # the last ids looked at for holes when the tail starts


class Hand:
    """One way of passing rows of a table on to live listeners, once per row here."""

    def __init__(self, hand_on: Callable[[list], None]) -> None:
        self.hand_on = hand_on
        self._passed: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, rows: Iterable) -> list:
        """The rows not passed on before, now marked as passed (by this call's caller)."""
        rows = list(rows)
        with self._lock:
            new = [row for row in rows if row.pk is not None and row.pk not in self._passed]
            for row in new:
                self._passed[row.pk] = None
            while len(self._passed) > REMEMBERED:
                self._passed.popitem(last=False)
        return new


class Source:
    """A table followed by id, with the hands its rows go to."""

    def __init__(self, model) -> None:
        self.model = model
        self.hands: list[Hand] = []
        self.reset()

    def reset(self) -> None:
        self.high: int | None = None  # the highest id read
        self.holes: dict[int, float] = {}  # ids skipped over, and since when

    def start(self, now: float) -> None:
        """Begin at the end of the table: what is there is old news; the ids missing among the
        last few may belong to transactions still running, and are holes to look for."""
        recent = list(self.model.objects.order_by("-pk").values_list("pk", flat=True)[:START_WINDOW])
        self.high = recent[0] if recent else 0
        self.holes = dict.fromkeys(sorted(set(range(recent[-1], self.high)) - set(recent)), now) if recent else {}

    def round(self, now: float) -> bool:
        """Read what was committed since the last round and hand it on; True when there is
        more to read at once."""
        rows = self.model.objects.order_by("pk")
        if self.high is None:
            self.start(now)
            return False
        holes = sorted(self.holes)
        found = [row for start in range(0, len(holes), BATCH)
                 for row in rows.filter(pk__in=holes[start:start + BATCH])]
        for row in found:
            self.holes.pop(row.pk, None)
        fresh = list(rows.filter(pk__gt=self.high)[:BATCH])
        expected = self.high + 1
        for row in fresh:
            if row.pk - expected <= MAX_HOLES:
                self.holes.update(dict.fromkeys(range(expected, row.pk), now))
            expected = row.pk + 1
        if fresh:
            self.high = fresh[-1].pk
        for hole in [hole for hole, since in self.holes.items() if now - since > GRACE]:
            del self.holes[hole]
        while len(self.holes) > MAX_HOLES:  # the oldest first (dicts keep insertion order)
            del self.holes[next(iter(self.holes))]
        if found or fresh:
            ordered = sorted(found + fresh, key=lambda row: row.pk)
            for hand in self.hands:
                passing = hand.fresh(ordered)
                if passing:
                    try:
                        hand.hand_on(passing)
                    except Exception:  # noqa: BLE001 - live updates are best effort by design
                        log.warning("could not pass on %d %s rows", len(passing), self.model.__name__, exc_info=True)
        return len(fresh) == BATCH


_sources: dict[str, Source] = {}


def hand(model, hand_on: Callable[[list], None]) -> Hand:
    """Register a way of passing on the rows of `model` that other processes commit; the
    caller passes its own process's rows through `Hand.fresh` before it sends them."""
    source = _sources.setdefault(model._meta.label, Source(model))
    new = Hand(hand_on)
    source.hands.append(new)
    return new


# --- the thread -------------------------------------------------------------------------------------

_lock = threading.Lock()
_thread: threading.Thread | None = None
_pid = 0


def listen() -> None:
    """Somebody listens in this process now: make sure the tail runs. Sockets call this once
    they joined their groups and before they are accepted: a new tail reads where the tables
    end first, so that nothing committed after the socket opened is taken for old news."""
    global _thread, _pid
    interval = settings.GNDP_LIVE_TAIL_SECONDS
    if interval <= 0:
        return
    with _lock:
        if _thread is not None and _pid == os.getpid() and _thread.is_alive():
            return
        now = time.monotonic()
        for source in _sources.values():
            source.reset()
            try:
                source.start(now)
            except Exception:  # noqa: BLE001 - the first round starts it instead
                log.warning("the live tail could not read where %s ends", source.model.__name__, exc_info=True)
        _pid = os.getpid()
        _thread = threading.Thread(target=_run, args=(interval,), name="gndp-live-tail", daemon=True)
        _thread.start()


def _listeners() -> bool:
    from channels.layers import get_channel_layer

    return bool(getattr(get_channel_layer(), "groups", None))


def _run(interval: float) -> None:
    global _thread
    quiet_since: float | None = None
    while True:
        time.sleep(interval)
        with _lock:
            if _listeners():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > QUIET:
                # Decided under the lock `listen` takes: a socket that joins now starts a new tail.
                _thread = None
                return
        with database_use():  # see gndp.forksafe
            try:
                now = time.monotonic()
                for source in list(_sources.values()):
                    while source.round(now):
                        pass
            except Exception:  # noqa: BLE001 - the next round reads from where this one stopped
                log.warning("the live tail could not read the tables", exc_info=True)
            finally:
                # This thread's connection, given back between rounds (to the pool, on PostgreSQL).
                connections.close_all()


def running() -> bool:
    return _thread is not None and _thread.is_alive() and _pid == os.getpid()
