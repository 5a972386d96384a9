"""Paths under /api/simulation/ (include this module there)."""

from django.urls import path

from .simulation_api import CoverageView, PredictView, TestJourneyView, ValidateWorkflowView

urlpatterns = [
    path("test-journey", TestJourneyView.as_view(), name="simulation-test-journey"),
    path("validate-workflow", ValidateWorkflowView.as_view(), name="simulation-validate-workflow"),
    path("coverage", CoverageView.as_view(), name="simulation-coverage"),
    path("predict", PredictView.as_view(), name="simulation-predict"),
]
