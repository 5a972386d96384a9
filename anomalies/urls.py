"""Included by gndp.urls at the root: the page, the dashboard panel and the API."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("anomalies/", views.anomaly_page, name="anomalies-page"),
    path("anomalies/panel/", views.anomaly_panel, name="anomalies-panel"),
    path("anomalies/<int:anomaly_id>/acknowledge/", views.anomaly_acknowledge, name="anomaly-acknowledge-page"),
    path("api/monitoring/anomalies", api.AnomalyListView.as_view(), name="anomaly-list"),
    path("api/monitoring/anomalies/<str:anomaly_id>/acknowledge", api.AcknowledgeView.as_view(),
         name="anomaly-acknowledge"),
]
