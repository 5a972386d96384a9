"""Workers' heartbeats: each Celery worker process writes its own row on a timer.

Celery's event heartbeats need a broker that carries events and somebody listening to
them; this is a row in the database, which every web process can read, the dashboard and
`/metrics` among them. `HeartbeatStep` (a worker bootstep, added in `gndp.celery`) starts a
thread in the worker's main process that inserts the row at startup, moves its
`last_seen_at` every `GNDP_WORKER_HEARTBEAT_SECONDS`, and sets `stopped_at` on a clean
shutdown. A worker killed with kill -9 simply stops beating.

The worker's main process forks its pool processes (at start, and again whenever one dies
or reaches its task limit), and this thread runs in that process. Hence:

- the beats use a connection of their own outside the connection pool (alias `HEARTBEAT`,
  opened and closed for each beat): a child must not inherit a pool, or a connection, that
  its parent goes on using;
- a fork waits until the thread is out of the database driver (`gndp.forksafe`): forked
  while this thread held SQLite's internal mutex, a pool process waited for ever on its
  first connection, and the worker took no more work.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
from datetime import timedelta

from celery import bootsteps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from gndp.forksafe import database_use

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)

HEARTBEAT = "heartbeat"
KEEP = timedelta(days=7)


def heartbeat_alias() -> str:
    """The database alias the beats are written through: the default's settings, unpooled."""
    if HEARTBEAT not in connections.settings:
        settings_dict = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
        settings_dict.get("OPTIONS", {}).pop("pool", None)
        settings_dict["CONN_MAX_AGE"] = 0
        connections.settings[HEARTBEAT] = settings_dict
    return HEARTBEAT


class Heartbeat:
    """One worker process's row, kept fresh by a daemon thread."""

    def __init__(self, node: str, interval: float | None = None) -> None:
        self.node = node
        self.interval = settings.GNDP_WORKER_HEARTBEAT_SECONDS if interval is None else interval
        self.row_id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gndp-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean shutdown: the last beat says the worker stopped, and when."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        self._write(stopped=True)

    def _run(self) -> None:
        self._write()
        self._forget_old()
        while not self._stop.wait(self.interval):
            self._write()

    def _write(self, *, stopped: bool = False) -> None:
        with database_use():
            self._write_row(stopped)

    def _write_row(self, stopped: bool) -> None:
        alias = heartbeat_alias()
        now = timezone.now()
        try:
            rows = WorkerHeartbeat.objects.using(alias)
            if self.row_id is None or not rows.filter(pk=self.row_id).update(
                    last_seen_at=now, **({"stopped_at": now} if stopped else {})):
                self.row_id = rows.create(node=self.node, hostname=socket.gethostname(), pid=os.getpid(),
                                          started_at=now, last_seen_at=now,
                                          stopped_at=now if stopped else None).pk
        except Exception:  # noqa: BLE001 - the next beat tries again; a missed beat is what the row tells
            log.warning("worker heartbeat could not be written", exc_info=True)
        finally:
            connections[alias].close()

    def _forget_old(self) -> None:
        alias = heartbeat_alias()
        with database_use():
            try:
                WorkerHeartbeat.objects.using(alias).filter(last_seen_at__lt=timezone.now() - KEEP).delete()
            except Exception:  # noqa: BLE001 - old rows are only clutter
                log.warning("old worker heartbeats could not be removed", exc_info=True)
            finally:
                connections[alias].close()


class HeartbeatStep(bootsteps.StartStopStep):
    """The worker bootstep that runs a `Heartbeat` for the worker's whole life."""

    label = "gndp heartbeat"

    def create(self, worker) -> Heartbeat:
        self.obj = Heartbeat(node=worker.hostname)
        return self.obj
