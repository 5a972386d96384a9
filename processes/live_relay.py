"""Live updates on Redis that their publisher never sent.

A process publishes a step's events after its commit, from a background thread that sends
every 20 ms (`processes.live`). A worker killed by kill -9 inside that window has committed
the step but sent nothing, and on Redis nobody would send it again: the browser saw the step
only at its next reload. So each server process with sockets open follows the event log
(as the embedded default's `processes.tail` does), and an event still not noted as sent
(`BatchingRedisChannelLayer.unsent`) `SETTLE` seconds after this server read it is sent
here. Two servers may both send one; a consumer drops an event id it has sent already
(`processes.consumers`).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from gndp.forksafe import database_use

from . import live, tail
from .models import ProcessEvent

log = logging.getLogger(__name__)

SETTLE = 2.0  # seconds a publisher has to send and note an event (it sends every 20 ms)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_pid = 0
_sockets = 0  # open in this process, on a layer the relay serves


def listen(layer) -> bool:
    """A socket opened in this process: make sure the relay runs, on a layer that notes what
    it sent (Redis; the in-memory layer's own tail passes everything on already). True when
    the socket counts: it calls `leave` when it closes."""
    global _thread, _pid, _sockets
    interval = settings.GNDP_LIVE_RELAY_SECONDS
    if interval <= 0 or not hasattr(layer, "unsent"):
        return False
    with _lock:
        if _pid != os.getpid():  # a fork: the parent's thread and sockets are not this process's
            _thread, _sockets = None, 0
        _sockets += 1
        if _thread is None or not _thread.is_alive():
            _pid = os.getpid()
            _thread = threading.Thread(target=_run, args=(interval,), name="gndp-live-relay", daemon=True)
            _thread.start()
    return True


def leave() -> None:
    """A counted socket closed; the relay stops `tail.QUIET` seconds after the last one."""
    global _sockets
    with _lock:
        _sockets = max(0, _sockets - 1)


class Relay:
    """The event log, followed by id (holes included, as the tail does), and the events read
    waiting out SETTLE before they are checked."""

    def __init__(self) -> None:
        self.source = tail.Source(ProcessEvent)
        self.waiting: list[tuple[float, ProcessEvent]] = []
        self.source.hands.append(tail.Hand(self._read))
        self.now = 0.0

    def _read(self, events: list) -> None:
        self.waiting.extend((self.now, event) for event in events)

    def round(self, now: float) -> list:
        """Read what was committed since the last round; return the events read at least
        SETTLE ago, no longer waiting."""
        self.now = now
        while self.source.round(now):
            pass
        due = [event for seen, event in self.waiting if now - seen >= SETTLE]
        self.waiting = [(seen, event) for seen, event in self.waiting if now - seen < SETTLE]
        return due


def send_unsent(layer, events: list) -> list:
    """Send the events no publisher noted as sent; returns them."""
    missing = set(live.run_for_listeners(layer, layer.unsent, [event.pk for event in events]))
    lost = [event for event in events if event.pk in missing]
    if lost:
        live._publish(layer, lost)
        log.info("sent %d live events their publisher never sent", len(lost))
    return lost


def _run(interval: float) -> None:
    global _thread
    relay = Relay()
    quiet_since: float | None = None
    while True:
        time.sleep(interval)
        with _lock:
            if _sockets:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > tail.QUIET:
                # Decided under the lock `listen` takes: a socket that opens now starts a new relay.
                _thread = None
                return
        with database_use():  # see gndp.forksafe
            try:
                due = relay.round(time.monotonic())
            except Exception:  # noqa: BLE001 - the next round reads from where this one stopped
                log.warning("the live relay could not read the event log", exc_info=True)
                due = []
            finally:
                connections.close_all()
        if due:
            try:
                send_unsent(get_channel_layer(), due)
            except Exception:  # noqa: BLE001 - Redis away: these are lost, as a publisher's would be
                log.warning("the live relay could not send %d events", len(due), exc_info=True)
