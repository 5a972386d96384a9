"""Part 2's rework loops, live: a file sent back for rework, the loop's limit as an incident an
administrator lets through, and what the API, the simulator and the pages show of it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import UserFactory
from tests.processes.steps import ROLE, api, desk, open_task, work  # noqa: F401 (desk: a fixture)

APPROVED = {"field": "approved", "operator": "eq", "value": True}

# Prepare a file, review it; the reviewer sends it back until it is approved, at most twice.
REWORK = {
    "format": "gndp-journey/1",
    "journey": {"id": "journey-rework", "name": "Rework"},
    "roles": [{"id": ROLE, "name": "Desk"}],
    "atoms": [
        {"id": "intake", "name": "Intake", "performed_by": ROLE},
        {"id": "prepare", "name": "Prepare", "performed_by": ROLE},
        {"id": "review", "name": "Review", "performed_by": ROLE,
         "form": [{"name": "approved", "type": "boolean", "required": True}]},
        {"id": "close", "name": "Close", "performed_by": ROLE},
    ],
    "edges": [
        {"type": "ENABLES", "from": "intake", "to": "prepare"},
        {"type": "ENABLES", "from": "prepare", "to": "review"},
        {"type": "ENABLES", "from": "review", "to": "close", "condition": APPROVED},
        {"type": "ENABLES", "from": "review", "to": "prepare", "loop": True, "default": True, "max_iterations": 2},
    ],
}


@pytest.fixture
def rework_version(db):
    return publish_journey(REWORK).version


def sent_back_once(user):
    """A process whose file was prepared, reviewed and sent back once."""
    process = start_process(workflow_id="journey-rework", user=user)
    work(process, "intake", user)
    work(process, "prepare", user)
    work(process, "review", user, {"approved": False})
    return process


@pytest.mark.django_db
def test_a_file_sent_back_is_prepared_and_reviewed_again(rework_version, desk):
    process = sent_back_once(desk)

    process.refresh_from_db()
    assert process.atom_states == {"intake": "completed", "prepare": "active", "review": "waiting",
                                   "close": "waiting"}
    assert process.loops == {"review>prepare": {"iteration": 2}}
    again = open_task(process, "prepare")
    assert again.iteration == 2
    assert list(TaskInstance.objects.filter(process=process, atom_id="prepare").values_list("status", "iteration")
                .order_by("pk")) == [("completed", 1), ("pending", 2)]
    repeated = ProcessEvent.objects.get(process=process, type="loop.repeated")
    assert repeated.payload == {"from": "review", "to": "prepare", "iteration": 2}

    work(process, "prepare", desk)
    work(process, "review", desk, {"approved": True})
    work(process, "close", desk)
    process.refresh_from_db()
    assert process.status == "completed" and process.context == {"approved": True}
    assert TaskInstance.objects.filter(process=process, atom_id="review").count() == 2


@pytest.mark.django_db
def test_the_loops_limit_is_an_incident_an_administrators_retry_lets_through(rework_version, desk):
    admin = UserFactory(username="root", is_superuser=True)
    process = start_process(workflow_id="journey-rework", user=desk)
    work(process, "intake", desk)
    for _ in range(2):
        work(process, "prepare", desk)
        review = work(process, "review", desk, {"approved": False})

    review.refresh_from_db()
    process.refresh_from_db()
    assert review.status == "failed" and review.last_error == "loop_limit: the loop review -> prepare reached its limit (2 runs)"
    assert review.result == {"approved": False}  # held, not lost
    assert process.status == "failed"
    assert process.atom_states == {"intake": "completed", "prepare": "completed", "review": "active",
                                   "close": "waiting"}  # nothing changed but the incident
    assert process.loops == {"review>prepare": {"iteration": 2}}
    failed = ProcessEvent.objects.get(process=process, type="process.failed")
    assert {key: failed.payload[key] for key in ("code", "atom", "to", "iteration")} == {
        "code": "loop_limit", "atom": "review", "to": "prepare", "iteration": 2}

    answer = api(admin).post(f"/api/tasks/{review.pk}/retry", format="json")

    assert answer.status_code == 200, answer.content
    review.refresh_from_db()
    process.refresh_from_db()
    assert review.status == "completed" and review.last_error == ""
    assert process.status == "running" and process.loops == {"review>prepare": {"iteration": 3, "extra": 1}}
    assert open_task(process, "prepare").iteration == 3
    work(process, "prepare", desk)
    work(process, "review", desk, {"approved": True})
    work(process, "close", desk)
    process.refresh_from_db()
    assert process.status == "completed"


@pytest.mark.django_db
def test_visualize_draws_the_back_edge_and_the_run(rework_version, desk):
    process = sent_back_once(desk)

    graph = api(desk).get(f"/api/processes/{process.pk}/visualize").json()

    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes["prepare"]["iteration"] == 2 and nodes["intake"]["iteration"] == 1
    back = next(edge for edge in graph["edges"] if edge["loop"])
    assert (back["from"], back["to"], back["fired"]) == ("review", "prepare", None)  # undecided again
    page = APIClient()
    page.force_login(desk)
    html = page.get(f"/processes/{process.pk}/").content.decode()
    assert "Back edge: runs the steps again" in html


@pytest.mark.django_db
def test_simulate_takes_the_nth_result_of_a_step_in_a_loop(rework_version, capsys):
    results = {"review": [{"approved": False}, {"approved": True}]}

    call_command("simulate", "journey-rework", "--results", json.dumps(results))

    outcome = json.loads(capsys.readouterr().out)
    assert outcome["success"] is True
    assert outcome["visited_atoms"] == ["intake", "prepare", "review", "prepare", "review", "close"]
    with pytest.raises(SystemExit):
        call_command("simulate", "journey-rework", "--results", json.dumps({"review": [{"approved": False}]}))
    stopped = json.loads(capsys.readouterr().out)
    assert stopped["errors"] == ["review: loop_limit: the loop review -> prepare reached its limit (2 runs)"]


@pytest.mark.django_db
def test_a_result_list_of_no_objects_is_refused_by_the_api(rework_version, desk):
    answer = api(desk).post("/api/simulation/test-journey",
                            {"journey_id": "journey-rework", "results": {"review": [1]}}, format="json")

    assert answer.status_code == 400 and "results" in answer.json()["error"]["details"]


@pytest.mark.django_db
def test_processes_keep_no_loop_state_until_a_loop_repeats(rework_version, desk):
    process = start_process(workflow_id="journey-rework", user=desk)

    assert ProcessInstance.objects.get(pk=process.pk).loops == {}
