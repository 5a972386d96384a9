"""The graph analytics, relative to /api/monitoring/ (include this module there)."""

from django.urls import path

from .graph_api import GraphHotspotsView, TravelledPathsView

urlpatterns = [
    path("graph-hotspots", GraphHotspotsView.as_view(), name="monitoring-graph-hotspots"),
    path("travelled-paths", TravelledPathsView.as_view(), name="monitoring-travelled-paths"),
]
