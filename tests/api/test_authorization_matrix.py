"""Every endpoint of the URLconf, called by every kind of caller on someone else's objects.

The table below must name every route the API has: a new endpoint without an expectation
fails `test_every_route_has_an_expectation`, so nobody can add one and forget its access.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from gndp.urls import router
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

CALLERS = ["assignee", "colleague", "manager", "stranger", "staff", "anonymous"]
APPLY_RESULT = {"result": {"amount": 1000, "score": 700}}

# route name -> (method, url template, body, {caller: expected status})
MATRIX = {
    "api-root": ("get", "/api/", None,
                 dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    "journey-list": ("get", "/api/journeys", None,
                     dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    "journey-detail": ("get", "/api/journeys/journey-small", None,
                       dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    "journey-import-journey": ("post", "/api/journeys/import", {"format": "gndp-journey/1"},
                               dict(assignee=403, colleague=403, manager=403, stranger=403, staff=403, anonymous=401)),
    "process-list": ("get", "/api/processes", None,
                     dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    # journey-small is started by the roles that perform its atoms (clerk, checker): the
    # manager, the stranger and the staff member hold none of them, nor start_any_journey.
    "process-start": ("post", "/api/processes/start", {"journey_id": "journey-small"},
                      dict(assignee=201, colleague=201, manager=403, stranger=403, staff=403, anonymous=401)),
    "process-start-bulk": ("post", "/api/processes/start-bulk", {"journey_id": "journey-small", "contexts": [{}]},
                           dict(assignee=201, colleague=201, manager=403, stranger=403, staff=403, anonymous=401)),
    "process-detail": ("get", "/api/processes/{process}", None,
                       dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "process-history": ("get", "/api/processes/{process}/history", None,
                        dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "process-visualize": ("get", "/api/processes/{process}/visualize", None,
                          dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "process-suspend": ("post", "/api/processes/{process}/suspend", None,
                        dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "process-resume": ("post", "/api/processes/{process}/resume", None,
                       dict(assignee=409, colleague=404, manager=409, stranger=404, staff=409, anonymous=401)),
    "process-abort": ("post", "/api/processes/{process}/abort", {"reason": "test"},
                      dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "task-inbox": ("get", "/api/tasks/inbox", None,
                   dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    "task-stats": ("get", "/api/tasks/stats", None,
                   dict(assignee=200, colleague=200, manager=200, stranger=200, staff=200, anonymous=401)),
    "task-detail": ("get", "/api/tasks/{task}", None,
                    dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "task-start": ("post", "/api/tasks/{task}/start", None,
                   dict(assignee=200, colleague=409, manager=403, stranger=404, staff=403, anonymous=401)),
    "task-complete": ("post", "/api/tasks/{task}/complete", APPLY_RESULT,
                      dict(assignee=200, colleague=404, manager=403, stranger=404, staff=403, anonymous=401)),
    "task-reassign": ("post", "/api/tasks/{task}/reassign", {"new_assignee": "colleague"},
                      dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "task-escalate": ("post", "/api/tasks/{task}/escalate", None,
                      dict(assignee=200, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    # The assignee's manager and an administrator withdraw a step; its assignee may not.
    "task-cancel": ("post", "/api/tasks/{task}/cancel", {"reason": "test"},
                    dict(assignee=403, colleague=404, manager=200, stranger=404, staff=200, anonymous=401)),
    "task-retry": ("post", "/api/tasks/{task}/retry", None,
                   dict(assignee=403, colleague=404, manager=403, stranger=404, staff=409, anonymous=401)),
}


def test_every_route_has_an_expectation():
    assert {url.name for url in router.urls} == set(MATRIX)


@pytest.fixture
def world(db, small_version):
    boss = UserFactory(username="boss")
    assignee = UserFactory(username="assignee", roles=["role-clerk"])
    Profile.objects.filter(user=assignee).update(manager=boss)
    process = start_process(workflow_id="journey-small", user=assignee)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    assert task.assigned_to == assignee
    # Created after routing, so the task is not theirs.
    colleague = UserFactory(username="colleague", roles=["role-clerk"])
    staff = UserFactory(username="staff")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(codename__in=[
        "view_all_tasks", "view_all_processes", "change_processinstance"]))
    users = dict(assignee=assignee, colleague=colleague, manager=boss, stranger=UserFactory(username="stranger"),
                 staff=staff, anonymous=None)
    return users, process, task


def fingerprint(process: ProcessInstance) -> tuple:
    process.refresh_from_db()
    tasks = tuple(TaskInstance.objects.filter(process=process).order_by("pk")
                  .values_list("status", "assigned_to_id", "priority", "version"))
    return process.status, process.lock_version, tasks, ProcessEvent.objects.filter(process=process).count()


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_access(world, route, caller):
    users, process, task = world
    method, template, body, expected = MATRIX[route]
    client = APIClient()
    if users[caller] is not None:
        client.force_authenticate(users[caller])
    before = fingerprint(process)
    processes_before = ProcessInstance.objects.count()

    response = getattr(client, method)(template.format(process=process.pk, task=task.pk), body, format="json")

    assert response.status_code == expected[caller], response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert fingerprint(process) == before, "a refused call changed something"
        assert ProcessInstance.objects.count() == processes_before, "a refused call started a process"
    if response.status_code == 404:
        # A foreign id and an id that does not exist are told apart by nothing.
        unknown = getattr(client, method)(template.format(process=999999, task=999999), body, format="json")
        assert unknown.status_code == 404
        assert response.content.decode().replace(str(task.pk if "{task}" in template else process.pk), "999999") \
            == unknown.content.decode()


@pytest.mark.parametrize("caller", ["colleague", "stranger"])
def test_lists_never_hold_foreign_objects(world, caller):
    users, process, task = world
    client = APIClient()
    client.force_authenticate(users[caller])

    processes = client.get("/api/processes").json()
    inbox = client.get("/api/tasks/inbox").json()

    assert process.pk not in [p["id"] for p in processes]
    assert task.pk not in [t["id"] for t in inbox]


def test_other_users_inbox_needs_to_be_their_manager(world):
    users, process, task = world
    client = APIClient()

    client.force_authenticate(users["manager"])
    as_manager = client.get("/api/tasks/inbox", {"user_id": "assignee"})
    client.force_authenticate(users["stranger"])
    as_stranger = client.get("/api/tasks/inbox", {"user_id": "assignee"})
    unknown = client.get("/api/tasks/inbox", {"user_id": "nobody-by-this-name"})

    assert [t["id"] for t in as_manager.json()] == [task.pk]
    # Whether the named user exists is not the stranger's business: the same 404 either way.
    assert as_stranger.status_code == 404
    assert as_stranger.content == unknown.content
