"""Abort: every open task is cancelled as any task change is made (the guarded writer, its
grants revoked, a `task.cancelled` event each, its assignee told), and every active atom
becomes `cancelled`, a final state: an aborted process has no current steps
(journey-format.md, "Withdrawing, cancelling and aborting"). And C3, the catalogue's race of
a completion, an abort and an SLA escalation of the same task at once.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from notifications.models import Notification
from processes import services
from processes.engine import core
from processes.errors import Conflict, ServiceError
from processes.graph import mirror
from processes.models import ProcessEvent, ProcessInstance
from tasks import services as task_services
from tasks.models import Profile, TaskInstance, TaskUserObjectPermission
from tests.factories import UserFactory
from tests.races import race

ROUNDS = 40


def to_the_split(clerk) -> ProcessInstance:
    """journey-small up to its parallel split: atom-a routed to the clerk, atom-b queued."""
    process = services.start_process(workflow_id="journey-small", user=clerk)
    apply = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    task_services.complete_task(apply.pk, user=clerk, result={"amount": 5, "score": 700})
    process.refresh_from_db()
    return process


def grants(task_ids) -> int:
    return TaskUserObjectPermission.objects.filter(content_object_id__in=task_ids).count()


@pytest.mark.django_db(transaction=True)
def test_abort_cancels_each_open_task_through_the_guarded_writer_and_cancels_the_active_atoms(
        small_version, clerk, checker):
    process = to_the_split(clerk)
    open_tasks = {t.atom_id: t for t in TaskInstance.objects.filter(process=process, status="pending")}
    assert set(open_tasks) == {"atom-a", "atom-b"} and open_tasks["atom-b"].assigned_to_id is None
    assert grants([t.pk for t in open_tasks.values()]) == 2  # view + change: the clerk's (a queued task has none)
    admin = UserFactory(username="abort-admin")
    admin.is_superuser = admin.is_staff = True
    admin.save()

    services.abort_process(process.pk, user=admin, reason="customer withdrew")

    process.refresh_from_db()
    assert process.status == "aborted" and process.completed_at is not None
    assert process.steps_in("active") == []
    assert {atom for atom, state in process.atom_states.items() if state == "cancelled"} == {"atom-a", "atom-b"}
    for atom_id, before in open_tasks.items():
        task = TaskInstance.objects.get(pk=before.pk)
        assert (task.status, task.version) == ("cancelled", before.version + 1)  # the guarded writer's bump
        assert task.completed_at == process.completed_at
        assert task.assigned_to_id == before.assigned_to_id  # who held it still sees it
    assert grants([t.pk for t in open_tasks.values()]) == 0
    cancelled = ProcessEvent.objects.filter(process=process, type="task.cancelled").order_by("task_id")
    assert [(e.atom_id, e.payload["reason"], e.payload["assigned_to_id"], e.username) for e in cancelled] == [
        ("atom-a", "customer withdrew", clerk.pk, "abort-admin"), ("atom-b", "customer withdrew", None, "abort-admin")]
    aborted = ProcessEvent.objects.get(process=process, type="process.aborted")
    assert aborted.pk > max(e.pk for e in cancelled)
    assert sorted(aborted.payload["cancelled_atoms"]) == ["atom-a", "atom-b"]
    # The assignee hears of it (in the app); the queue's task had nobody to tell.
    told = Notification.objects.filter(process=process, kind="task_cancelled")
    assert [(n.recipient_id, n.task_id) for n in told] == [(clerk.pk, open_tasks["atom-a"].pk)]
    assert "customer withdrew" in told[0].body and "abort-admin" in told[0].body
    with pytest.raises(Conflict):
        services.abort_process(process.pk, user=admin)


@pytest.mark.django_db(transaction=True)
def test_the_api_page_and_graph_show_no_current_step_and_draw_cancelled_atoms(small_version, clerk):
    process = to_the_split(clerk)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=clerk)[0].key}")

    assert api.post(f"/api/processes/{process.pk}/abort", {"reason": "no"}, format="json").status_code == 200

    body = api.get(f"/api/processes/{process.pk}").json()
    assert (body["status"], body["current_steps"]) == ("aborted", [])
    graph = api.get(f"/api/processes/{process.pk}/visualize").json()
    states = {node["id"]: node["state"] for node in graph["nodes"]}
    assert (states["atom-a"], states["atom-b"], states["atom-apply"], states["atom-join"]) == (
        "cancelled", "cancelled", "completed", "waiting")
    fired = {(e["from"], e["to"]): e["fired"] for e in graph["edges"] if e["type"] == "ENABLES"}
    assert fired[("atom-a", "atom-join")] is False and fired[("atom-open", "atom-a")] is True
    browser = Client()
    browser.force_login(clerk)
    page = browser.get(f"/processes/{process.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '"state": "cancelled"' in html and "Cancelled (aborted)" in html
    open_section = html.split('id="open-title"')[1].split("Context")[0]
    assert "None." in open_section and "Branch A" not in open_section


def test_the_core_cancels_active_atoms_only_and_their_edges_never_fire():
    runtime = core.Runtime(states={"a": "completed", "b": "active", "c": "waiting", "d": "skipped"},
                           fired={"a": frozenset({"b"}), "d": frozenset()})
    step = core.abort(runtime, {"x": 1})
    assert step.runtime.states == {"a": "completed", "b": "cancelled", "c": "waiting", "d": "skipped"}
    assert (step.changed, step.activated, step.completed, step.context) == (["b"], [], False, {"x": 1})
    assert step.runtime.edge_fired("b", "c") is False and step.runtime.edge_fired("a", "b") is True
    assert step.runtime.edge_fired("c", "d") is None
    with pytest.raises(core.AtomNotActive):
        core.complete(None, step.runtime, {}, "b")


def test_the_mirror_draws_no_step_of_an_aborted_process():
    drawn = set(mirror._relationships("aborted", {"a": "completed", "b": "cancelled", "c": "waiting"}, {"a": "t"}))
    assert drawn == {("COMPLETED", "a", "t")}


@pytest.mark.django_db(transaction=True)
def test_processes_aborted_before_keep_no_active_atom(small_version, clerk):
    """The data migration: an abort of the old kind left its atoms active."""
    from importlib import import_module

    process = to_the_split(clerk)
    ProcessInstance.objects.filter(pk=process.pk).update(status="aborted")  # as the old abort left it
    running = to_the_split(clerk)
    migration = import_module("processes.migrations.0011_cancel_active_atoms_of_aborted_processes")

    migration.cancel_active_atoms(apps, None)
    migration.cancel_active_atoms(apps, None)  # again: nothing more changes

    process.refresh_from_db()
    running.refresh_from_db()
    assert process.steps_in("active") == [] and sorted(process.steps_in("cancelled")) == ["atom-a", "atom-b"]
    assert sorted(running.steps_in("active")) == ["atom-a", "atom-b"]


# --- C3: complete vs abort vs escalate --------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_c3_complete_abort_and_escalate_at_once_give_one_consistent_outcome(small_version, clerk):
    manager = UserFactory(username="c3-manager")
    Profile.objects.filter(user=clerk).update(manager=manager)
    admin = UserFactory(username="c3-admin")
    admin.is_superuser = admin.is_staff = True
    admin.save()
    patterns = []
    for round_ in range(ROUNDS):
        process = services.start_process(workflow_id="journey-small", user=clerk)
        task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
        created = task.version

        outcomes = race(3, lambda i: (
            lambda: task_services.complete_task(task.pk, user=clerk, result={"amount": round_, "score": 700}),
            lambda: services.abort_process(process.pk, user=admin, reason="c3"),
            lambda: task_services.escalate_task(task.pk, automatic=True),  # the SLA sweep's escalation
        )[i]())

        completed, aborted, escalated = (not isinstance(o, Exception) for o in outcomes)
        # A loser is refused as the API refuses (409, or 403/404 for a task no longer yours).
        assert all(isinstance(o, ServiceError) for o in outcomes if isinstance(o, Exception)), outcomes
        assert aborted, outcomes  # nothing can close the process first: abort always lands
        patterns.append((completed, escalated))
        process.refresh_from_db()
        tasks = {t.atom_id: t for t in TaskInstance.objects.filter(process=process)}
        events = list(ProcessEvent.objects.filter(process=process).order_by("pk"))
        kinds = [e.type for e in events]
        assert process.status == "aborted" and kinds.count("process.aborted") == 1
        # No open task under the closed process, no active atom, and nothing after the abort.
        assert {t.status for t in tasks.values()} <= {"completed", "cancelled"}, tasks
        assert process.steps_in("active") == []
        assert kinds[-1] == "process.aborted"
        cancelled = [t for t in tasks.values() if t.status == "cancelled"]
        assert sorted(e.task_id for e in events if e.type == "task.cancelled") == sorted(t.pk for t in cancelled)
        assert sorted(process.steps_in("cancelled")) == sorted(t.atom_id for t in cancelled)
        assert grants([t.pk for t in cancelled]) == 0
        apply = tasks["atom-apply"]
        if completed:
            # It won before the abort: the steps after it (a system step may have run before
            # the abort) are cancelled where they were open, and no person's step is done.
            assert apply.status == "completed" and apply.completed_by_id == clerk.pk
            later = [t for atom_id, t in tasks.items() if atom_id != "atom-apply"]
            assert later and all(t.status == "cancelled" or t.kind == "system" for t in later), tasks
        else:
            assert apply.status == "cancelled" and set(tasks) == {"atom-apply"}
            assert "task.completed" not in kinds
        if escalated:
            assert kinds.index("task.escalated") < kinds.index("process.aborted")
            assert apply.escalated and apply.assigned_to_id == manager.pk
            assert not completed  # the clerk no longer held it
        assert apply.version > created
    # The race was real: the rounds did not all end the same way.
    assert len(set(patterns)) >= 2, patterns


# --- siblings: other changes of a task's assignee ---------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_admin_never_deletes_a_person_who_held_a_task(small_version, clerk):
    """Deleting a user unassigned its tasks by the database's cascade (SET NULL): no guarded
    write, no event, no grant for the queue, and the history lost who did the work. A person
    who held or completed a task is kept (PROTECT), open task or not: deactivated instead."""
    from django.contrib.auth import get_user_model

    # given a clerk who holds an open task, and an administrator in the admin
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    admin = UserFactory(username="delete-admin")
    admin.is_superuser = admin.is_staff = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    events = ProcessEvent.objects.filter(process=process).count()

    # when the administrator deletes the clerk, one at a time and in bulk
    single = browser.post(f"/admin/auth/user/{clerk.pk}/delete/", {"post": "yes"})
    bulk = browser.post("/admin/auth/user/", {"action": "delete_selected", "_selected_action": [clerk.pk],
                                              "post": "yes"})

    # then both are refused, and nothing changed
    assert single.status_code == 200 and bulk.status_code == 200  # the refusal page, not a redirect
    for page in (single.content.decode(), bulk.content.decode()):
        assert "Cannot delete user" in page
    assert get_user_model().objects.filter(pk=clerk.pk).exists()
    task.refresh_from_db()
    assert (task.assigned_to_id, task.version) == (clerk.pk, 0)
    assert ProcessEvent.objects.filter(process=process).count() == events
    # and a closed task keeps its person too: the history says who worked it
    services.abort_process(process.pk, user=admin)
    assert "Cannot delete user" in browser.get(f"/admin/auth/user/{clerk.pk}/delete/").content.decode()
