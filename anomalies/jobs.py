"""The periodic detection run (Celery beat, `GNDP_ANOMALY_INTERVAL` seconds)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import detection

log = logging.getLogger(__name__)


@shared_task(name="anomalies.tasks.detect_anomalies", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def detect_anomalies() -> dict:
    result = detection.detect()
    if result.opened or result.resolved:
        log.info("anomaly detection: %s", result.as_dict())
    return result.as_dict()
