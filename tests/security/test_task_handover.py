"""Who a task may be handed to: reassignment and escalation give a task only to someone who
can work it (an active member of its role, or the person its escalation goes to), through
the API, the admin's actions and the SLA sweep alike; a refusal never tells whether a user
exists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitoring import sla
from processes.models import ProcessEvent
from processes.services import start_process
from steps.changes import change_tasks
from tasks.models import Profile, RoleSettings, TaskInstance
from tasks.services import complete_task
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REFUSED_DETAIL = "no active user of this name may work this task"


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def team(small_version, clerk):
    """clara (role-clerk) reports to mona; clive is another clerk with no manager; bob is a
    borrower in no role; root is a superuser; ada a staff administrator who sees everything."""
    mona = UserFactory(username="mona")
    Profile.objects.filter(user=clerk).update(manager=mona)
    process = start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    assert task.assigned_to == clerk
    clive = UserFactory(username="clive", roles=["role-clerk"])
    bob = UserFactory(username="bob")
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    ada = UserFactory(username="ada", is_staff=True)
    ada.user_permissions.set(Permission.objects.filter(codename__in=["view_all_tasks", "view_all_processes"]))
    return {"clara": clerk, "mona": mona, "clive": clive, "bob": bob, "root": root, "ada": ada,
            "process": process, "task": task}


def fingerprint(task: TaskInstance) -> tuple:
    task.refresh_from_db()
    return task.assigned_to_id, task.status, task.version, ProcessEvent.objects.filter(task_id=task.pk).count()


@pytest.mark.parametrize("caller", ["mona", "ada", "root", "clara"])
def test_nobody_hands_a_task_to_someone_outside_its_role(team, caller):
    task = team["task"]
    before = fingerprint(task)

    response = api(team[caller]).post(f"/api/tasks/{task.pk}/reassign", {"new_assignee": "bob"}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"] == {"new_assignee": REFUSED_DETAIL}
    assert fingerprint(task) == before
    assert not api(team["bob"]).get(f"/api/tasks/{task.pk}").status_code == 200
    # the manager still sees the task: nothing left its team
    assert api(team["mona"]).get(f"/api/tasks/{task.pk}").status_code == 200


def test_unknown_inactive_and_ineligible_names_get_the_same_answer(team):
    task = team["task"]
    team["clive"].is_active = False
    team["clive"].save()
    mona = api(team["mona"])

    answers = {name: mona.post(f"/api/tasks/{task.pk}/reassign", {"new_assignee": name}, format="json")
               for name in ("bob", "clive", "nobody-by-this-name")}

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 400)
    assert answers["bob"].content == answers["clive"].content == answers["nobody-by-this-name"].content


def test_a_role_member_and_the_escalation_manager_may_take_it(team):
    task = team["task"]
    mona = api(team["mona"])

    to_clive = mona.post(f"/api/tasks/{task.pk}/reassign", {"new_assignee": "clive"}, format="json")
    # clive reports to nobody, so now only role members may take it; mona may hand it back
    back = api(team["clive"]).post(f"/api/tasks/{task.pk}/reassign", {"new_assignee": "clara"}, format="json")
    to_mona = mona.post(f"/api/tasks/{task.pk}/reassign", {"new_assignee": "mona"}, format="json")

    assert [to_clive.status_code, back.status_code, to_mona.status_code] == [200, 200, 200]
    assert to_mona.json()["assigned_to"] == "mona"
    assert api(team["mona"]).get(f"/api/tasks/{task.pk}").status_code == 200


def test_a_queued_task_goes_to_a_member_or_to_the_roles_escalation_manager(team, django_capture_on_commit_callbacks):
    # atom-manual waits in role-checker's queue (assignment: queue) after a low score; the
    # system step between runs when the completion commits
    with django_capture_on_commit_callbacks(execute=True):
        complete_task(team["task"].pk, user=team["clara"], result={"amount": 5, "score": 500})
    queued = TaskInstance.objects.get(process=team["process"], atom_id="atom-manual")
    assert queued.assigned_to is None
    chet = UserFactory(username="chet", roles=["role-checker"])
    rita = UserFactory(username="rita")
    RoleSettings.objects.create(group=Group.objects.get(name="role-checker"), escalation_manager=rita)
    root = api(team["root"])

    to_mona = root.post(f"/api/tasks/{queued.pk}/reassign", {"new_assignee": "mona"}, format="json")
    to_rita = root.post(f"/api/tasks/{queued.pk}/reassign", {"new_assignee": "rita"}, format="json")
    to_chet = root.post(f"/api/tasks/{queued.pk}/reassign", {"new_assignee": chet.username}, format="json")

    assert to_mona.status_code == 400 and to_mona.json()["error"]["details"] == {"new_assignee": REFUSED_DETAIL}
    assert to_rita.status_code == 200 and to_rita.json()["assigned_to"] == "rita"
    assert to_chet.status_code == 200 and to_chet.json()["assigned_to"] == "chet"


def test_the_admin_action_refuses_with_the_same_message(team):
    mona = team["mona"]
    mona.is_staff = True
    mona.save()
    task = team["task"]
    before = fingerprint(task)
    client = Client()
    client.force_login(mona)

    response = client.post("/admin/tasks/taskinstance/", {
        "action": "reassign", "_selected_action": [task.pk], "new_assignee": "bob", "index": 0,
    }, follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert f"#{task.pk}: the new assignee must be an active member of the task&#x27;s role" in page
    assert "Reassigned to bob" not in page
    assert fingerprint(task) == before


def test_escalation_never_goes_to_an_inactive_manager(team):
    task = team["task"]
    team["mona"].is_active = False
    team["mona"].save()
    before = fingerprint(task)

    response = api(team["clara"]).post(f"/api/tasks/{task.pk}/escalate")

    assert response.status_code == 409 and response.json()["error"]["code"] == "no_escalation_target"
    assert fingerprint(task) == before


def test_the_sla_sweep_records_the_breach_but_hands_nothing_to_an_inactive_manager(team):
    task = team["task"]
    team["mona"].is_active = False
    team["mona"].save()
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk=task.pk), due_date=now - timedelta(hours=2),
                                                   escalate_at=now - timedelta(hours=1))

    result = sla.sweep(now)

    task.refresh_from_db()
    assert (result.breached, result.escalated) == (1, 0)
    assert task.assigned_to == team["clara"] and task.sla_breached_at is not None
    assert not ProcessEvent.objects.filter(task_id=task.pk, type="task.escalated").exists()


def test_a_system_step_is_never_handed_to_a_person(team):
    # the step waits for a worker: this test's transaction never commits, so nothing was sent
    complete_task(team["task"].pk, user=team["clara"], result={"amount": 5, "score": 700})
    step = TaskInstance.objects.get(process=team["process"], atom_id="atom-score")
    assert step.status == "pending" and step.kind == "system"
    root = api(team["root"])

    reassigned = root.post(f"/api/tasks/{step.pk}/reassign", {"new_assignee": "clive"}, format="json")
    escalated = root.post(f"/api/tasks/{step.pk}/escalate")

    assert [reassigned.status_code, escalated.status_code] == [409, 409]
    assert {reassigned.json()["error"]["code"], escalated.json()["error"]["code"]} == {"system_task"}
    step.refresh_from_db()
    assert step.assigned_to is None and step.status == "pending"


def test_routing_never_hands_a_new_task_to_an_inactive_member(team, django_capture_on_commit_callbacks):
    # a regression guard: routing already reads active members only, at a start, at each step
    # (one statement on PostgreSQL) and in bulk starts (BatchRouter); here each is held to it
    from processes.services import start_processes

    for name in ("clara", "clive"):
        team[name].is_active = name == "clive"
        team[name].save()
    one = start_process(workflow_id="journey-small", user=team["root"])
    many = start_processes(workflow_id="journey-small", contexts=[{}] * 3, user=team["root"])
    # the steps after the system steps (atom-a for the clerks) are routed as the completion runs
    first = TaskInstance.objects.get(process=one, atom_id="atom-apply")
    with django_capture_on_commit_callbacks(execute=True):
        complete_task(first.pk, user=team["clive"], result={"amount": 5, "score": 700})

    routed = TaskInstance.objects.filter(kind="human", process__in=[one, *many]).exclude(assigned_to=None)
    assert set(routed.values_list("assigned_to__username", flat=True)) == {"clive"}
    assert routed.count() >= 5  # four first steps and atom-a
