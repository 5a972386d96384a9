"""The Viewflow peer's URLs: the flow's viewset, as Viewflow's quick start mounts it."""

from django.urls import path
from viewflow.workflow.flow import FlowViewset

from loans.flows import LoanFlow

urlpatterns = [path("loan/", FlowViewset(LoanFlow).urls)]
