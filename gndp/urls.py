from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from processes.api import JourneyViewSet, ProcessViewSet
from tasks.api import TaskViewSet

router = DefaultRouter(trailing_slash=False)
router.include_format_suffixes = False
router.register("journeys", JourneyViewSet, basename="journey")
router.register("processes", ProcessViewSet, basename="process")
router.register("tasks", TaskViewSet, basename="task")

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include(router.urls)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
