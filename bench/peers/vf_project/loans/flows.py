"""The 12-step loan journey as a Viewflow 2 flow (bench/peers/workload.py describes it).

Modelled the way Viewflow's documentation shows: a Start view is the submission, human
steps are `flow.View` nodes assigned on creation, system steps are `flow.Function` nodes
run synchronously in the activating transaction, `flow.If` is the credit branch, and
`flow.Split`/`flow.Join` are the parallel block. The lock is `select_for_update_lock`, the
one the documentation recommends on PostgreSQL for flows with a Join.
"""

from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.flow import views

from workload import THRESHOLD, credit_score

from .models import LoanProcess


def _view(*fields):
    return views.UpdateProcessView.as_view(fields=list(fields))


class LoanFlow(flow.Flow):
    process_class = LoanProcess
    lock_impl = lock.select_for_update_lock

    submit = (
        flow.Start(views.CreateProcessView.as_view(fields=["applicant_no", "loan_amount"]))
        .Permission(auto_create=True)
        .Next(this.credit_pull)
    )
    credit_pull = flow.Function(this.pull_credit).Next(this.credit_check)
    credit_check = (
        flow.If(lambda activation: activation.process.credit_score >= THRESHOLD)
        .Then(this.auto_clear)
        .Else(this.manual_review)
    )
    auto_clear = flow.Function(this.clear_credit).Next(this.verification)
    manual_review = flow.View(_view("review_decision")).Assign(username="peer-underwriter").Next(this.verification)

    verification = flow.Split().Next(this.appraisal).Next(this.title_search).Next(this.income_verification)
    appraisal = flow.View(_view("appraised_value")).Assign(username="peer-processor").Next(this.verified)
    title_search = flow.View(_view("title_clear")).Assign(username="peer-processor").Next(this.verified)
    income_verification = (
        flow.View(_view("income_verified")).Assign(username="peer-processor").Next(this.verified)
    )
    verified = flow.Join().Next(this.underwriting)

    underwriting = flow.View(_view("underwriting_ok")).Assign(username="peer-underwriter").Next(this.approval)
    approval = flow.View(_view("approved")).Assign(username="peer-underwriter").Next(this.disclosure)
    disclosure = flow.View(_view("disclosure_sent")).Assign(username="peer-closer").Next(this.closing)
    closing = flow.View(_view("closed")).Assign(username="peer-closer").Next(this.funding)
    funding = flow.View(_view("funded")).Assign(username="peer-closer").Next(this.end)
    end = flow.End()

    def pull_credit(self, activation):
        process = activation.process
        process.credit_score = credit_score(process.applicant_no)
        process.save()

    def clear_credit(self, activation):
        activation.process.credit_decision = "auto"
        activation.process.save()
