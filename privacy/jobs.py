"""Celery beat work of the data protection: the retention purge. The job's name is explicit:
queued messages and the beat schedule carry it."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="privacy.tasks.purge_expired_processes", acks_late=True)
def purge_expired_processes(limit: int = 500) -> int:
    """The periodic retention purge (beat, hourly). Idempotent: a purged process is not
    selected again."""
    erasure = services.purge_expired(limit=limit)
    return erasure.processes if erasure else 0
