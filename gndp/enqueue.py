"""Handing work to the Celery workers by the job's registered name.

The jobs (`<app>/jobs.py`) call the services; a service that hands work on after its commit
names the job instead of importing it, so the imports point one way.
"""

from __future__ import annotations

import threading

from celery import Task

from gndp.celery import app

_registering = threading.Lock()


def job(name: str) -> Task:
    """The registered job of this name, to `.delay` or `.apply_async` (eager in tests, as
    a direct call would be): a process that is not a worker registers the jobs the first
    time one is asked for."""
    if name not in app.tasks:
        # One thread at a time: Celery's autodiscovery returns at once, having imported
        # nothing, to a thread that calls it while another is inside it.
        with _registering:
            if name not in app.tasks:
                app.loader.import_default_modules()
    return app.tasks[name]
