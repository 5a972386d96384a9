"""Server-rendered pages and the admin, through Django's test client."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from processes.models import ProcessInstance
from processes.services import start_process
from tasks.models import TaskInstance


@pytest.fixture
def demo(db, demo_version):
    call_command("seed_demo", verbosity=0)


def client_for(username: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_pages_need_a_login(demo):
    response = Client().get("/inbox/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_inbox_task_and_process_pages_render(demo):
    from django.contrib.auth import get_user_model

    olivia = get_user_model().objects.get(username="olivia")
    process = start_process(workflow_id="phase-processing", user=olivia)
    task = TaskInstance.objects.get(process=process)
    priya = client_for(task.assigned_to.username)

    inbox = priya.get("/inbox/")
    page = priya.get(f"/tasks/{task.pk}/")
    process_page = client_for("olivia").get(f"/processes/{process.pk}/")

    assert inbox.status_code == 200 and task.name in inbox.content.decode()
    assert page.status_code == 200 and 'name="documents_received"' in page.content.decode()
    assert process_page.status_code == 200 and 'id="graph-data"' in process_page.content.decode()


def test_form_errors_are_shown_inline_and_nothing_changes(demo):
    from django.contrib.auth import get_user_model

    process = start_process(workflow_id="phase-processing", user=get_user_model().objects.get(username="olivia"))
    task = TaskInstance.objects.get(process=process)

    response = client_for(task.assigned_to.username).post(f"/tasks/{task.pk}/", {"processor_notes": "x"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    task.refresh_from_db()
    assert task.status == "pending"


def test_someone_elses_task_page_is_a_404_page(demo):
    from django.contrib.auth import get_user_model

    process = start_process(workflow_id="phase-processing", user=get_user_model().objects.get(username="olivia"))
    task = TaskInstance.objects.get(process=process)

    response = client_for("chloe").get(f"/tasks/{task.pk}/")

    assert response.status_code == 404 and "Not found" in response.content.decode()


def test_start_page_reports_bad_json_without_starting(demo):
    response = client_for("olivia").post("/processes/start/", {"workflow_id": "journey-purchase-fha", "context": "{"},
                                         follow=True)

    assert "not valid JSON" in response.content.decode()
    assert not ProcessInstance.objects.exists()


def test_admin_lists_the_managers_team_and_its_actions_call_services(demo):
    from django.contrib.auth import get_user_model

    olivia = get_user_model().objects.get(username="olivia")
    process = start_process(workflow_id="phase-processing", user=olivia)
    task = TaskInstance.objects.get(process=process)
    manager = client_for("manager")

    changelist = manager.get("/admin/tasks/taskinstance/?team=mine")
    manager.post("/admin/processes/processinstance/", {"action": "suspend", "_selected_action": [process.pk]})
    admin_pages = [client_for("admin").get(url).status_code for url in (
        "/admin/", "/admin/processes/processinstance/", "/admin/processes/processevent/",
        "/admin/processes/workflowversion/", "/admin/auth/user/", "/admin/tasks/rolesettings/",
        f"/admin/processes/workflowversion/{process.version_id}/change/")]

    assert changelist.status_code == 200 and task.name in changelist.content.decode()
    process.refresh_from_db()
    assert process.status == "suspended"
    assert admin_pages == [200] * 7


def test_simulation_page_draws_the_path_and_the_prediction(demo):
    results = '{"atom-lo-record-credit-results": {"credit_score": 580, "monthly_debts": 1}}'

    response = client_for("olivia").post("/simulate/", {"workflow_id": "module-credit", "results": results,
                                                         "fill": "1"})
    bad = client_for("olivia").post("/simulate/", {"workflow_id": "module-credit", "context": "[1]"})

    body = response.content.decode()
    assert response.status_code == 200 and 'id="graph-data"' in body
    assert "atom-uw-manual-credit-review" in body and "Predicted cycle time" in body and "Completes" in body
    assert "must be a JSON object" in bad.content.decode()
