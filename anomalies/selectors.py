"""Reads of the anomalies, in the caller's monitoring scope (managers: their team's
processes; administrators: all; anyone else: 403, as for the rest of monitoring)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from monitoring.selectors import Scope, scope_for
from processes.errors import NotFound

from .models import Anomaly

STATUSES = ("open", "acknowledged", "resolved", "all")


def anomalies_for(scope: Scope) -> QuerySet[Anomaly]:
    anomalies = Anomaly.objects.select_related("acknowledged_by")
    return anomalies if scope.everything else anomalies.filter(process__in=scope.processes())


def anomalies(user, *, status: str = "open", kind: str | None = None, journey_id: str | None = None,
              process_id: int | None = None) -> QuerySet[Anomaly]:
    found = anomalies_for(scope_for(user))
    if status == "open":
        found = found.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
    elif status == "acknowledged":
        found = found.filter(resolved_at__isnull=True, acknowledged_at__isnull=False)
    elif status == "resolved":
        found = found.filter(resolved_at__isnull=False)
    if kind:
        found = found.filter(kind=kind)
    if journey_id:
        found = found.filter(Q(journey_id=journey_id) | Q(workflow_id=journey_id))
    if process_id:
        found = found.filter(process_id=process_id)
    return found.order_by("-detected_at", "-id")


def anomaly_for(user, anomaly_id: Any) -> Anomaly:
    try:
        number = int(anomaly_id)
    except (TypeError, ValueError):
        number = -1
    scope = scope_for(user)
    try:
        if not 0 < number < 2**63:
            raise Anomaly.DoesNotExist
        return anomalies_for(scope).get(pk=number)
    except Anomaly.DoesNotExist:
        raise NotFound(f"anomaly {anomaly_id} not found") from None
