"""Celery beat work of the monitoring app.

The sweep is safe to run concurrently and to repeat (see `monitoring.sla`), so beat firing
it twice, or two beats running by mistake, changes nothing; `expires` drops runs that sat
in the queue past the next one, since that one fires everything due anyway.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import sla

log = logging.getLogger(__name__)


@shared_task(name="monitoring.tasks.sweep_sla", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sweep_sla() -> dict:
    result = sla.sweep()
    if result.warned or result.breached:
        log.info("SLA sweep: %s", result.as_dict())
    return result.as_dict()
