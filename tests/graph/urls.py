"""The project's URLs with the graph analytics included under /api/monitoring/, as they will
be: for the API tests and the OpenAPI check (test_analytics_api.py)."""

from django.urls import include, path

from gndp.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/monitoring/", include("processes.graph_urls")),
    *project_urlpatterns,
]
