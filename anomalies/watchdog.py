"""The web server's own look for system steps that no worker runs.

The detector's periodic run is a Celery beat job: it runs in a worker, so when the workers
are gone it is gone too, and nothing would record that system steps are not being run.
Each web server process therefore runs `detection.detect_waiting_system_steps` itself, on a
daemon thread, every `GNDP_WATCHDOG_SECONDS` (0 turns it off). It is one indexed query when
all is well; several servers doing it at once record each anomaly once (a unique key, and
the rows locked while they are refreshed).
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import connections

from gndp.forksafe import database_use

from .detection import detect_waiting_system_steps

log = logging.getLogger(__name__)

_started: dict[int, threading.Thread] = {}  # by process id: a forked server starts its own
_lock = threading.Lock()


def start() -> bool:
    """Start this process's watchdog thread once; False when it is turned off."""
    interval = settings.GNDP_WATCHDOG_SECONDS
    if interval <= 0:
        return False
    with _lock:
        if os.getpid() not in _started:
            thread = threading.Thread(target=_run, args=(interval,), name="gndp-watchdog", daemon=True)
            _started[os.getpid()] = thread
            thread.start()
    return True


def _run(interval: float) -> None:
    stop = threading.Event()
    while not stop.wait(interval):
        check()


def check() -> None:
    with database_use():  # a server forked from this process waits for the round (gndp.forksafe)
        try:
            result = detect_waiting_system_steps()
            if result.opened:
                log.warning("system steps not run: %s", result.as_dict())
            elif result.resolved:
                log.info("system steps not run: %s", result.as_dict())
        except Exception:  # noqa: BLE001 - the next round tries again
            log.warning("the watchdog could not look for system steps not run", exc_info=True)
        finally:
            # Its own connection, given back between rounds (a pooled one, on PostgreSQL).
            connections.close_all()
