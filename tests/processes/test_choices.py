"""Part 2's choices and withdrawal, live: an exclusive choice, a race whose first finisher
withdraws the others, and a manager's cancel of one step, through the services and the API."""

from __future__ import annotations

import pytest

from notifications.models import Notification
from processes.errors import Conflict
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory
from tests.processes.steps import ROLE, api, desk, open_task, work  # noqa: F401 (desk: a fixture)
from tests.races import race



def human(atom_id, **keys):
    return {"id": atom_id, "name": atom_id.title(), "performed_by": ROLE, **keys}


def enables(a, b, **keys):
    return {"type": "ENABLES", "from": a, "to": b, **keys}


# An offer the borrower accepts or declines; whichever answer comes first ends the race, and
# the file closes after it. A rate band chosen exclusively: a high score gets only the best band.
OFFER = {
    "format": "gndp-journey/1",
    "journey": {"id": "journey-offer", "name": "Offer"},
    "roles": [{"id": ROLE, "name": "Desk", "assignment": "queue"}],
    "atoms": [
        human("apply", choose="first", form=[{"name": "score", "type": "integer", "required": True}]),
        human("best-band"), human("good-band"), human("manual-band"),
        human("offer", then="first_done"),
        human("accept"), human("decline"), human("close"),
    ],
    "edges": [
        enables("apply", "best-band", condition={"field": "score", "operator": "gte", "value": 760}),
        enables("apply", "good-band", condition={"field": "score", "operator": "gte", "value": 620}),
        enables("apply", "manual-band", default=True),
        enables("best-band", "offer"), enables("good-band", "offer"), enables("manual-band", "offer"),
        enables("offer", "accept"), enables("offer", "decline"),
        enables("accept", "close"), enables("decline", "close"),
    ],
}


@pytest.fixture
def offer_version(db):
    return publish_journey(OFFER).version





def to_the_race(user) -> ProcessInstance:
    process = start_process(workflow_id="journey-offer", user=user)
    work(process, "apply", user, {"score": 800})
    work(process, "best-band", user)
    work(process, "offer", user)
    return process


@pytest.mark.django_db
def test_an_exclusive_choice_takes_only_the_first_band_that_holds(offer_version, desk):
    process = start_process(workflow_id="journey-offer", user=desk)

    work(process, "apply", desk, {"score": 800})  # holds for both the best and the good band

    process.refresh_from_db()
    assert process.steps_in("active") == ["best-band"]
    assert set(process.steps_in("skipped")) == {"good-band", "manual-band"}


@pytest.mark.django_db(transaction=True)  # notifications go out after the commit
def test_the_first_answer_wins_and_the_other_is_withdrawn(offer_version, desk):
    colleague = UserFactory(username="colin", roles=[ROLE])
    process = to_the_race(desk)
    decline = open_task(process, "decline")
    task_services.start_task(decline.pk, user=colleague)

    work(process, "accept", desk)

    decline.refresh_from_db()
    process.refresh_from_db()
    assert decline.status == "cancelled" and decline.completed_at is not None
    assert process.atom_states["decline"] == "skipped" and process.steps_in("active") == ["close"]
    withdrawn = ProcessEvent.objects.get(process=process, type="task.withdrawn")
    assert withdrawn.task_id == decline.pk and withdrawn.payload["previous_status"] == "in_progress"
    assert Notification.objects.filter(recipient=colleague, kind="task_cancelled", title__contains="withdrawn").exists()
    with pytest.raises(Conflict):
        task_services.complete_task(decline.pk, user=colleague, result={})
    work(process, "close", desk)
    process.refresh_from_db()
    assert process.status == "completed"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_racers_completed_at_once_leave_exactly_one_winner(offer_version):
    people = [UserFactory(username=f"racer{i}", roles=[ROLE]) for i in range(2)]
    for _ in range(8):
        process = to_the_race(people[0])
        racers = [open_task(process, "accept"), open_task(process, "decline")]
        for task, person in zip(racers, people):
            task_services.start_task(task.pk, user=person)

        outcomes = race(2, lambda i: task_services.complete_task(racers[i].pk, user=people[i], result={}))

        winners = [o for o in outcomes if isinstance(o, TaskInstance)]
        assert len(winners) == 1 and isinstance(next(o for o in outcomes if o not in winners), Conflict), outcomes
        statuses = sorted(TaskInstance.objects.filter(pk__in=[t.pk for t in racers]).values_list("status", flat=True))
        assert statuses == ["cancelled", "completed"]
        process.refresh_from_db()
        assert sorted(process.atom_states[a] for a in ("accept", "decline")) == ["completed", "skipped"]
        assert TaskInstance.objects.filter(process=process, atom_id="close").count() == 1


# --- a manager withdraws one step: POST /api/tasks/{id}/cancel ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_manager_cancels_a_step_and_the_flow_goes_on(offer_version, desk):
    boss = UserFactory(username="boss")
    Profile.objects.filter(user=desk).update(manager=boss)
    process = to_the_race(desk)
    accept = open_task(process, "accept")
    task_services.start_task(accept.pk, user=desk)

    answer = api(boss).post(f"/api/tasks/{accept.pk}/cancel", {"reason": "borrower withdrew"}, format="json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "cancelled"
    process.refresh_from_db()
    assert process.atom_states["accept"] == "skipped"
    assert process.steps_in("active") == ["decline"]  # the race goes on with the other answer
    event = ProcessEvent.objects.get(process=process, type="task.cancelled")
    assert event.payload["reason"] == "borrower withdrew" and event.username == "boss"
    assert Notification.objects.filter(recipient=desk, kind="task_cancelled", body__contains="withdrew it").exists()

    again = api(boss).post(f"/api/tasks/{accept.pk}/cancel", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


@pytest.mark.django_db
def test_only_the_tasks_manager_or_an_administrator_may_cancel_it(offer_version, desk):
    colleague = UserFactory(username="colin", roles=[ROLE])
    stranger = UserFactory(username="stan")
    admin = UserFactory(username="root", is_superuser=True)
    process = start_process(workflow_id="journey-offer", user=desk)
    task = open_task(process, "apply")

    assert api(colleague).post(f"/api/tasks/{task.pk}/cancel", {}, format="json").status_code == 403
    assert api(stranger).post(f"/api/tasks/{task.pk}/cancel", {}, format="json").status_code == 404
    too_long = api(admin).post(f"/api/tasks/{task.pk}/cancel", {"reason": "x" * 1001}, format="json")
    assert too_long.status_code == 400 and "reason" in too_long.json()["error"]["details"]
    task.refresh_from_db()
    assert task.status == "pending"

    assert api(admin).post(f"/api/tasks/{task.pk}/cancel", {}, format="json").status_code == 200
    process.refresh_from_db()
    assert process.status == "completed"  # the only way on was withdrawn: everything after is skipped


@pytest.mark.django_db
def test_the_task_page_offers_the_withdrawal_to_the_manager_only(offer_version, desk):
    from django.test import Client

    boss = UserFactory(username="boss")
    Profile.objects.filter(user=desk).update(manager=boss)
    process = start_process(workflow_id="journey-offer", user=desk)
    task = open_task(process, "apply")
    task_services.start_task(task.pk, user=desk)
    pages = {}
    for user in (desk, boss):
        pages[user.username] = Client()
        pages[user.username].force_login(user)

    assert "Withdraw this step" not in pages["dana"].get(f"/tasks/{task.pk}/").content.decode()
    assert "Withdraw this step" in pages["boss"].get(f"/tasks/{task.pk}/").content.decode()
    refused = pages["dana"].post(f"/tasks/{task.pk}/cancel/", {"reason": "mine"}, follow=True)
    task.refresh_from_db()
    assert task.status == "in_progress" and "manager or an administrator" in refused.content.decode()

    done = pages["boss"].post(f"/tasks/{task.pk}/cancel/", {"reason": "duplicate file"}, follow=True)

    task.refresh_from_db()
    assert task.status == "cancelled" and "was withdrawn" in done.content.decode()
    assert ProcessEvent.objects.get(process=process, type="task.cancelled").payload["reason"] == "duplicate file"
