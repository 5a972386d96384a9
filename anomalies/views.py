"""The anomalies page and the panel the dashboard includes (`monitoring/_anomalies.html`)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from gndp.htmx import as_get

from . import selectors, services
from .models import AnomalyKind

PANEL_LIMIT = 50


def _context(request) -> dict:
    status = request.GET.get("status", "open")
    status = status if status in selectors.STATUSES else "open"
    kind = request.GET.get("kind") if request.GET.get("kind") in AnomalyKind.values else None
    found = selectors.anomalies(request.user, status=status, kind=kind)
    return {"anomalies": found[:PANEL_LIMIT], "anomalies_total": found.count(), "anomalies_loaded": True,
            "anomaly_status": status, "anomaly_kind": kind or "", "kinds": AnomalyKind.choices,
            "statuses": selectors.STATUSES}


@login_required
def anomaly_page(request):
    return render(request, "monitoring/anomalies.html", _context(request))


@login_required
def anomaly_panel(request):
    return render(request, "monitoring/_anomalies.html", _context(request))


@login_required
@require_POST
def anomaly_acknowledge(request, anomaly_id: int):
    services.anomaly_acknowledge(user=request.user, anomaly_id=anomaly_id, note=request.POST.get("note", ""))
    if request.htmx:
        return anomaly_panel(as_get(request))
    return redirect("anomalies-page")

