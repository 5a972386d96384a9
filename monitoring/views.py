"""The dashboard page. The view parses the query, takes the caller's scope (403 for anyone
but managers and administrators), and renders what `selectors.dashboard` computed: the
whole page, the body alone for a change of filters, or the parts a live refresh asks for."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from gndp.api.validation import validated

from . import selectors
from .serializers import DashboardQuerySerializer

WINDOWS = [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days")]
DEFAULT_WINDOW = "7d"
FILTER_KEYS = ("journey_id", "window", "status")


def _query(request) -> tuple[dict, dict]:
    """(validated query, the raw filter values to carry into links); empty fields are unset."""
    raw = {key: value for key, value in request.GET.items() if value}
    query = validated(DashboardQuerySerializer, raw, "invalid dashboard filters")
    return query, {key: raw[key] for key in FILTER_KEYS if key in raw}


@login_required
def dashboard(request):
    scope = selectors.scope_for(request.user)
    query, chosen = _query(request)
    filters = selectors.Filters(journey_id=query.get("journey_id"),
                                window=query.get("window", selectors.DEFAULT_WINDOW))
    parts = query.get("parts") if request.htmx else None
    data = selectors.dashboard(scope, filters, parts=parts, health=query.get("status"),
                               process_id=query.get("process"))
    window = chosen.get("window", DEFAULT_WINDOW)
    context = {
        "dash": data,
        "chosen": chosen,
        "filter_query": urlencode(chosen),
        "window": window,
        "windows": WINDOWS if window in dict(WINDOWS) else [*WINDOWS, (window, window)],
        "health_states": selectors.HEALTH_STATES,
        # /ws/monitoring/ accepts whoever scope_for lets in, and sends each the events of its
        # own scope (monitoring.consumers); the page polls only where no socket is offered.
        "live": "socket",
    }
    if parts is not None:
        return render(request, "monitoring/_dashboard_parts.html", context)
    if request.htmx and request.htmx.target == "dashboard-body":
        return render(request, "monitoring/_dashboard_body.html", context)
    context["journeys"] = selectors.journey_choices()
    return render(request, "monitoring/dashboard.html", context)
