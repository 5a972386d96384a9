"""Included by gndp.urls under `api/monitoring/`."""

from django.urls import path

from . import api

app_name = "monitoring"

urlpatterns = [
    path("active-processes", api.ActiveProcessesView.as_view(), name="active-processes"),
    path("metrics", api.MetricsView.as_view(), name="metrics"),
    path("sla-compliance", api.SlaComplianceView.as_view(), name="sla-compliance"),
    path("bottlenecks", api.BottlenecksView.as_view(), name="bottlenecks"),
]
