from django.contrib import admin
from django.urls import include, path
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from monitoring import views as monitoring_views
from gndp.login_throttle import LoginView, ThrottledAdminAuthenticationForm
from monitoring.exposition import metrics_view
from processes import views as process_views
from processes.api import JourneyViewSet, ProcessViewSet
from tasks import views as task_views
from tasks.api import TaskViewSet

admin.site.login_form = ThrottledAdminAuthenticationForm  # the lockout message on the admin's sign-in too

# Swagger UI comes from its CDN (drf-spectacular's default), with its page's script served
# from here (the split view) and a few rules in an inline <style>: that page alone may load
# from the CDN and use inline styles. It shows the schema, never user data.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
api_docs = csp_update({"script-src": [SWAGGER_CDN], "style-src": [SWAGGER_CDN, "'unsafe-inline'"],
                       "img-src": [SWAGGER_CDN]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))

router = DefaultRouter(trailing_slash=False)
router.include_format_suffixes = False
router.register("journeys", JourneyViewSet, basename="journey")
router.register("processes", ProcessViewSet, basename="process")
router.register("tasks", TaskViewSet, basename="task")

pages = [
    path("", process_views.home, name="home"),
    path("inbox/", task_views.inbox, name="inbox"),
    path("tasks/<int:task_id>/", task_views.task_detail, name="task-page"),
    path("tasks/<int:task_id>/claim/", task_views.task_claim, name="task-claim"),
    path("tasks/<int:task_id>/cancel/", task_views.task_cancel, name="task-cancel"),
    path("processes/", process_views.process_list, name="process-list-page"),
    path("processes/start/", process_views.start, name="process-start-page"),
    path("processes/<int:process_id>/", process_views.process_detail, name="process-page"),
    path("journeys/<str:journey_id>/", process_views.journey_detail, name="journey-detail-page"),
    path("simulate/", process_views.simulate, name="simulate-page"),
    path("dashboard/", monitoring_views.dashboard, name="dashboard-page"),
]

# The engine's API first: Django tries patterns in order and, for every include that does not
# match, records each of its patterns as tried; behind the root-level includes below, the
# hottest requests paid for failing through all of them.
urlpatterns = [path("api/", include(router.urls)), *pages] + [
    path("", include("notifications.urls")),
    path("", include("collaboration.urls")),
    path("", include("anomalies.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("api/simulation/", include("processes.simulation_urls")),
    path("api/monitoring/", include("monitoring.urls")),
    path("api/monitoring/", include("processes.graph_urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),  # with the sign-in lockout
    path("accounts/", include("django.contrib.auth.urls")),
    path("metrics", metrics_view, name="metrics"),
]

# Refusals and failures outside a view: the contract's JSON body under /api/, the error page
# elsewhere; never Django's debug pages (gndp.error_pages).
handler400 = "gndp.error_pages.bad_request"
handler403 = "gndp.error_pages.permission_denied"
handler404 = "gndp.error_pages.page_not_found"
handler500 = "gndp.error_pages.server_error"
