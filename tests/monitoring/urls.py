"""The project's URLs plus the monitoring ones, as gndp.urls will include them."""

from django.urls import include, path

from gndp.urls import urlpatterns as project_urlpatterns
from monitoring.exposition import metrics_view

urlpatterns = [
    path("api/monitoring/", include("monitoring.urls")),
    path("metrics", metrics_view, name="metrics"),
    *project_urlpatterns,
]
