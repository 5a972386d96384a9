from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import Anomaly
from .selectors import anomaly_for


def anomaly_acknowledge(*, user, anomaly_id: Any, note: str = "") -> Anomaly:
    """Someone in whose scope the process is has looked at it. Acknowledging again changes
    nothing; a stuck process that comes back after resolving is a new occurrence."""
    anomaly = anomaly_for(user, anomaly_id)
    with transaction.atomic():
        anomaly = Anomaly.objects.select_for_update().get(pk=anomaly.pk)
        if anomaly.acknowledged_at is None:
            anomaly.acknowledged_at = timezone.now()
            anomaly.acknowledged_by = user
            anomaly.note = (note or "").replace("\x00", "").encode("utf-8", "replace").decode()[:500].strip()
            anomaly.save(update_fields=["acknowledged_at", "acknowledged_by", "note"])
    return anomaly
