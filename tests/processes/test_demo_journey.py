"""The demo journey end to end on the services, with a real Celery worker for system steps."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from processes.services import start_process
from tasks import services as task_services
from tests.driver import drive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def demo(demo_version):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    return demo_version


def work(task, result):
    """The assignee completes it; a queued task is claimed by the first member of its role."""
    user = task.assigned_to or get_user_model().objects.filter(groups__name=task.role).order_by("pk").first()
    if task.assigned_to is None:
        task_services.start_task(task.pk, user=user)
    task_services.complete_task(task.pk, user=user, result=result)


@pytest.mark.parametrize(
    "overrides, manual_review",
    [
        pytest.param({"credit_score": 700, "ltv_percent": 95.0}, "skipped", id="score-above-threshold"),
        pytest.param({"credit_score": 580, "decision": "approve", "ltv_percent": 97.0}, "completed",
                     id="score-below-threshold-manual-review"),
    ],
)
def test_demo_process_runs_to_completed_with_a_real_worker(demo, celery_worker, overrides, manual_review):
    olivia = get_user_model().objects.get(username="olivia")
    process = start_process(workflow_id="journey-purchase-fha", user=olivia, context={"channel": "branch"})

    process = drive(process, work, overrides)

    states = process.atom_states
    assert process.status == "completed", process.failure
    assert states["atom-uw-manual-credit-review"] == manual_review
    assert states["atom-sys-close-loan"] == "completed"
    assert process.context["loan_status"] == "closed"
    assert "succeeded" in celery_worker.log_path.read_text()
