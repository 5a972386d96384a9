"""The monitoring stream and the system-wide figures are scoped exactly as the dashboard is
(`monitoring.selectors.scope_for`): an administrator who sees every process hears and counts
everything, a manager its team's processes and tasks, and anyone else (staff included) is
refused."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission

from processes import live
from processes.services import start_process
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory

from .sockets import browser_of, drain, opened, refusal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def org(small_version):
    """mona manages clara; otto (staff) manages olga; both clerks. ada is staff and sees
    every process; stan is staff and nothing more; sam starts processes."""
    mona, otto = UserFactory(username="mona"), UserFactory(username="otto", is_staff=True)
    clara = UserFactory(username="clara", roles=["role-clerk"])
    olga = UserFactory(username="olga", roles=["role-clerk"])
    Profile.objects.filter(user=clara).update(manager=mona)
    Profile.objects.filter(user=olga).update(manager=otto)
    ada = UserFactory(username="ada", is_staff=True)
    ada.user_permissions.set(Permission.objects.filter(codename="view_all_processes"))
    return {"mona": mona, "otto": otto, "clara": clara, "olga": olga, "ada": ada,
            "stan": UserFactory(username="stan", is_staff=True), "sam": UserFactory(username="sam", permissions=[START_ANY_JOURNEY])}


def start_for(org, clerk: str):
    """A process of sam's whose first task goes to `clerk` (the other clerk is away)."""
    away = "olga" if clerk == "clara" else "clara"
    Profile.objects.filter(user=org[away]).update(available=False)
    process = start_process(workflow_id="journey-small", user=org["sam"])
    Profile.objects.filter(user=org[away]).update(available=True)
    assert TaskInstance.objects.get(process=process, atom_id="atom-apply").assigned_to == org[clerk]
    return process


def test_staff_who_manage_nobody_and_see_nothing_are_refused(org):
    assert async_to_sync(refusal)("/ws/monitoring/", browser_of(org["stan"])) == 4403
    assert async_to_sync(refusal)("/ws/monitoring/", browser_of(org["clara"])) == 4403


def test_each_manager_hears_its_own_teams_processes_and_the_administrator_all(org):
    browsers = {name: browser_of(org[name]) for name in ("mona", "otto", "ada")}

    async def scenario():
        sockets = {name: await opened("/ws/monitoring/", browser) for name, browser in browsers.items()}
        started = [await database_sync_to_async(start_for)(org, clerk) for clerk in ("clara", "olga")]
        heard = {name: await drain(socket, first=10) for name, socket in sockets.items()}
        for socket in sockets.values():
            await socket.disconnect()
        return started, heard

    (for_clara, for_olga), heard = async_to_sync(scenario)()

    processes = {name: sorted({event["process_id"] for event in events}) for name, events in heard.items()}
    assert processes == {"mona": [for_clara.pk], "otto": [for_olga.pk], "ada": sorted([for_clara.pk, for_olga.pk])}
    # the whole start, not a part of it
    assert [e["type"] for e in heard["mona"]] == [e["type"] for e in heard["ada"] if e["process_id"] == for_clara.pk]


def test_a_task_moved_off_the_team_takes_its_process_out_of_the_managers_stream(org):
    browser = browser_of(org["mona"])
    process = start_for(org, "clara")
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    live.flush()  # the start's events are out before the socket opens

    async def scenario():
        socket = await opened("/ws/monitoring/", browser)
        await database_sync_to_async(task_services.reassign_task)(task.pk, user=org["mona"], new_assignee="olga")
        moved = await drain(socket, first=10)
        # clara is away, so the steps that follow go to olga and the checkers' queue
        await database_sync_to_async(lambda: Profile.objects.filter(user=org["clara"]).update(available=False))()
        await database_sync_to_async(task_services.complete_task)(
            task.pk, user=org["olga"], result={"amount": 5, "score": 700})
        after = await drain(socket)
        await socket.disconnect()
        return moved, after

    moved, after = async_to_sync(scenario)()

    assert [e["type"] for e in moved] == ["task.reassigned"]  # taken from her team: she is told
    assert after == []  # olga's work on it is otto's team's business


def test_system_wide_figures_are_for_administrators_who_see_everything(org):
    def scrape(name):
        return browser_of(org[name]).get("/metrics").status_code

    assert {name: scrape(name) for name in ("stan", "otto", "ada")} == {"stan": 403, "otto": 403, "ada": 200}
