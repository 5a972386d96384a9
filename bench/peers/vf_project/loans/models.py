"""The loan process: a proxy of Viewflow's Process whose fields live in its `data` JSON
(`viewflow.jsonstore`), the model Viewflow's quick start recommends (no extra join)."""

from viewflow import jsonstore
from viewflow.workflow.models import Process


class LoanProcess(Process):
    applicant_no = jsonstore.IntegerField(default=0)
    loan_amount = jsonstore.IntegerField(default=0)
    credit_score = jsonstore.IntegerField(null=True)
    credit_decision = jsonstore.CharField(max_length=10, blank=True)
    review_decision = jsonstore.CharField(max_length=10, blank=True)
    appraised_value = jsonstore.IntegerField(null=True)
    title_clear = jsonstore.BooleanField(default=False)
    income_verified = jsonstore.BooleanField(default=False)
    underwriting_ok = jsonstore.BooleanField(default=False)
    approved = jsonstore.BooleanField(default=False)
    disclosure_sent = jsonstore.BooleanField(default=False)
    closed = jsonstore.BooleanField(default=False)
    funded = jsonstore.BooleanField(default=False)

    class Meta:
        proxy = True
