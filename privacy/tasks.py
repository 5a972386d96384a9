from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def purge_expired_processes(limit: int = 500) -> int:
    """The periodic retention purge (beat, hourly). Idempotent: a purged process is not
    selected again."""
    erasure = services.purge_expired(limit=limit)
    return erasure.processes if erasure else 0
