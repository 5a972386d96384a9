"""The monitoring endpoints (api-contract.md, "Monitoring"). Views parse the query, pick
the caller's scope, and return what the selectors computed."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.validation import validated

from . import selectors
from .serializers import (
    ActiveProcessesQuerySerializer,
    ActiveProcessSerializer,
    BottlenecksQuerySerializer,
    BottlenecksSerializer,
    MetricsSerializer,
    MonitoringQuerySerializer,
    SlaComplianceSerializer,
)
from .stats import report_transaction

TAGS = ["monitoring"]


def _read(serializer_class, request):
    """The caller's scope (403 for anyone but managers and administrators) and the filters."""
    scope = selectors.scope_for(request.user)
    query = validated(serializer_class, request.query_params, "invalid query parameters")
    return scope, selectors.Filters(journey_id=query.get("journey_id"),
                                    window=query.get("window", selectors.DEFAULT_WINDOW)), query


def _window(filters: selectors.Filters) -> dict:
    return {"window_seconds": filters.window.total_seconds(), "since": filters.since, "until": filters.now}


class ActiveProcessesView(APIView):
    @extend_schema(tags=TAGS, parameters=[ActiveProcessesQuerySerializer],
                   responses=ActiveProcessSerializer(many=True),
                   description="Open processes, most urgent first: `status` is on-track, delayed or blocked. "
                               "The total travels in `X-Total-Count`.")
    def get(self, request):
        scope, filters, query = _read(ActiveProcessesQuerySerializer, request)
        with report_transaction():
            rows, total = selectors.active_processes(scope, filters, health=query.get("status"),
                                                     limit=query["limit"], offset=query["offset"])
        response = Response(rows)
        response["X-Total-Count"] = str(total)
        return response


class MetricsView(APIView):
    @extend_schema(tags=TAGS, parameters=[MonitoringQuerySerializer], responses=MetricsSerializer,
                   description="Throughput per day, cycle time p50/p95, task completion and error rates, "
                               "queue depth by role, over the window.")
    def get(self, request):
        scope, filters, _ = _read(MonitoringQuerySerializer, request)
        with report_transaction():
            return Response(selectors.metrics(scope, filters))


class SlaComplianceView(APIView):
    @extend_schema(tags=TAGS, parameters=[MonitoringQuerySerializer], responses=SlaComplianceSerializer,
                   description="Per atom: the target in force, actual p50/p95 time in step and the share "
                               "completed within target over the window; and the share per day.")
    def get(self, request):
        scope, filters, _ = _read(MonitoringQuerySerializer, request)
        with report_transaction():
            return Response({**_window(filters), "atoms": selectors.sla_compliance(scope, filters),
                             "series": selectors.sla_compliance_series(scope, filters)})


class BottlenecksView(APIView):
    @extend_schema(tags=TAGS, parameters=[BottlenecksQuerySerializer], responses=BottlenecksSerializer,
                   description="Atoms ranked by the waiting time in their queues, with queue depth and time "
                               "in step against the target.")
    def get(self, request):
        scope, filters, query = _read(BottlenecksQuerySerializer, request)
        with report_transaction():
            atoms = selectors.bottlenecks(scope, filters, limit=query["limit"])
        return Response({**_window(filters), "atoms": atoms})

