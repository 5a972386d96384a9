"""gndp.urls with the simulation endpoints, until gndp.urls includes them itself."""

from django.urls import include, path

from gndp.urls import urlpatterns as base

urlpatterns = [path("api/simulation/", include("processes.simulation_urls")), *base]
