"""An open WebSocket stops when its session ends or its user loses sight of what it listens
to: a sign-out, a deleted or expired session, an account made inactive or given a new
password close the session's sockets (4401); a process or task socket whose user may no
longer see it closes with 4403 before it delivers anything more; the inbox's role groups
follow the user's roles. Against the real ASGI application and channel layer (Redis when
REDIS_URL is set)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.utils import timezone

from collaboration.services import comment_add
from processes.services import start_process
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory

from .sockets import browser_of, drain, opened, until_closed

pytestmark = pytest.mark.django_db(transaction=True)

SIGNED_OUT, FORBIDDEN = 4401, 4403


@pytest.fixture
def world(small_version):
    """sam started the process; its first task went to clara (role-clerk), who reports to
    mona; clive is a clerk too (created after the routing); chet and cheryl are checkers."""
    sam = UserFactory(username="sam", permissions=[START_ANY_JOURNEY])
    mona = UserFactory(username="mona")
    clara = UserFactory(username="clara", roles=["role-clerk"])
    Profile.objects.filter(user=clara).update(manager=mona)
    process = start_process(workflow_id="journey-small", user=sam)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    assert task.assigned_to == clara
    return {"sam": sam, "mona": mona, "clara": clara, "process": process, "task": task,
            "clive": UserFactory(username="clive", roles=["role-clerk"]),
            "chet": UserFactory(username="chet", roles=["role-checker"]),
            "cheryl": UserFactory(username="cheryl", roles=["role-checker"])}


def comment_by(user, process):
    return lambda: comment_add(user=user, body="any news?", process_id=process.pk)


def test_signing_out_closes_that_sessions_sockets_and_no_other(world):
    process = world["process"]
    browser, elsewhere = browser_of(world["sam"]), browser_of(world["sam"])

    async def scenario():
        inbox = await opened("/ws/inbox/", browser)
        watching = await opened(f"/ws/processes/{process.pk}/", browser)
        other = await opened(f"/ws/processes/{process.pk}/", elsewhere)
        response = await database_sync_to_async(browser.post)("/accounts/logout/")
        ends = [await until_closed(inbox), await until_closed(watching)]
        await database_sync_to_async(comment_by(world["sam"], process))()
        heard_elsewhere = await drain(other)
        await other.disconnect()
        return response.status_code, ends, heard_elsewhere

    status, ends, heard_elsewhere = async_to_sync(scenario)()

    assert status == 200  # Django's signed-out page
    assert ends == [([], SIGNED_OUT), ([], SIGNED_OUT)]
    assert [event["type"] for event in heard_elsewhere] == ["comment.added"]


def test_a_session_deleted_or_expired_closes_its_sockets(world):
    process = world["process"]
    deleted, expiring = browser_of(world["sam"]), browser_of(world["sam"])
    soon = timezone.now() + timedelta(seconds=2)
    Session.objects.filter(pk=expiring.cookies["sessionid"].value).update(expire_date=soon)

    async def scenario():
        first = await opened(f"/ws/processes/{process.pk}/", deleted)
        second = await opened(f"/ws/processes/{process.pk}/", expiring)
        await database_sync_to_async(lambda: Session.objects.get(pk=deleted.cookies["sessionid"].value).delete())()
        first_end = await until_closed(first)
        # nothing is delivered meanwhile: the socket closes at its session's expiry on its own
        second_end = await until_closed(second, timeout=6)
        return first_end, second_end, timezone.now()

    first_end, second_end, ended_at = async_to_sync(scenario)()

    assert first_end == ([], SIGNED_OUT)
    assert second_end == ([], SIGNED_OUT) and ended_at >= soon


def test_an_account_made_inactive_or_given_a_new_password_is_signed_out_of_its_sockets(world):
    process = world["process"]
    sam, clara = world["sam"], world["clara"]
    sam_browser, clara_browser = browser_of(sam), browser_of(clara)

    async def scenario():
        inactive = await opened(f"/ws/processes/{process.pk}/", sam_browser)
        repassworded = await opened("/ws/inbox/", clara_browser)

        def change_accounts():
            sam.is_active = False
            sam.save()
            clara.set_password("a new one")
            clara.save()

        await database_sync_to_async(change_accounts)()
        return await until_closed(inactive), await until_closed(repassworded)

    assert async_to_sync(scenario)() == (([], SIGNED_OUT), ([], SIGNED_OUT))


def test_a_process_socket_closes_before_it_tells_a_reassigned_assignee_anything_more(world):
    process, task = world["process"], world["task"]
    clara_browser = browser_of(world["clara"])

    async def scenario():
        watching = await opened(f"/ws/processes/{process.pk}/", clara_browser)
        inbox = await opened("/ws/inbox/", clara_browser)
        await database_sync_to_async(task_services.reassign_task)(task.pk, user=world["mona"], new_assignee="clive")
        ended = await until_closed(watching)
        told = await drain(inbox)
        await inbox.disconnect()
        return ended, told

    ended, told = async_to_sync(scenario)()

    assert ended == ([], FORBIDDEN)  # not even the reassignment: she no longer sees the process
    # her inbox hears that the task left it (and the bell, that she was told)
    events = [(event["type"], event["payload"]["previous_assignee"]) for event in told if "payload" in event]
    assert events == [("task.reassigned", "clara")]


def test_a_task_socket_closes_when_a_colleague_claims_the_queued_task(world, django_capture_on_commit_callbacks):
    clara = world["clara"]
    with django_capture_on_commit_callbacks(execute=True):
        task_services.complete_task(world["task"].pk, user=clara, result={"amount": 1000, "score": 700})
    queued = TaskInstance.objects.get(process=world["process"], atom_id="atom-b")
    assert queued.assigned_to is None
    chet_browser = browser_of(world["chet"])

    async def scenario():
        watching = await opened(f"/ws/tasks/{queued.pk}/", chet_browser)
        await database_sync_to_async(task_services.start_task)(queued.pk, user=world["cheryl"])
        return await until_closed(watching)

    assert async_to_sync(scenario)() == ([], FORBIDDEN)


def test_a_manager_replaced_in_the_admin_stops_watching_the_teams_process(world):
    process = world["process"]
    mona_browser = browser_of(world["mona"])

    async def scenario():
        watching = await opened(f"/ws/processes/{process.pk}/", mona_browser)

        def new_manager():
            profile = Profile.objects.get(user=world["clara"])
            profile.manager = world["sam"]
            profile.save()

        await database_sync_to_async(new_manager)()
        return await until_closed(watching)

    assert async_to_sync(scenario)() == ([], FORBIDDEN)


def test_a_change_nothing_announces_is_found_by_the_periodic_check(world, settings):
    settings.GNDP_SOCKET_RECHECK_SECONDS = 0.5
    process = world["process"]
    mona_browser = browser_of(world["mona"])

    async def scenario():
        watching = await opened(f"/ws/processes/{process.pk}/", mona_browser)
        first = await drain(watching, settle=0.3)
        # an UPDATE that no signal hears: mona no longer manages clara
        await database_sync_to_async(lambda: Profile.objects.filter(user=world["clara"]).update(manager=None))()
        await database_sync_to_async(lambda: __import__("time").sleep(0.6))()
        await database_sync_to_async(comment_by(world["sam"], process))()
        return first, await until_closed(watching)

    first, ended = async_to_sync(scenario)()

    assert first == [] and ended == ([], FORBIDDEN)


def test_the_inbox_follows_the_users_roles(world):
    clara = world["clara"]
    checkers = Group.objects.get(name="role-checker")
    clara_browser = browser_of(clara)

    def queue_a_checker_task():
        process = start_process(workflow_id="journey-small", user=world["sam"])
        task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
        task_services.complete_task(task.pk, user=task.assigned_to, result={"amount": 5, "score": 500})
        return process

    async def scenario():
        inbox = await opened("/ws/inbox/", clara_browser)
        await database_sync_to_async(lambda: clara.groups.add(checkers))()
        await drain(inbox, settle=0.5)
        as_checker = await database_sync_to_async(queue_a_checker_task)()
        heard_as_checker = await drain(inbox)
        await database_sync_to_async(lambda: checkers.user_set.remove(clara))()
        await drain(inbox, settle=0.5)
        after = await database_sync_to_async(queue_a_checker_task)()
        heard_after = await drain(inbox)
        await inbox.disconnect()
        return as_checker, heard_as_checker, after, heard_after

    as_checker, heard_as_checker, after, heard_after = async_to_sync(scenario)()

    def queued(events, process):
        return [e["atom_id"] for e in events if e["process_id"] == process.pk and e["payload"].get("queued")]

    assert queued(heard_as_checker, as_checker) == ["atom-manual"]
    assert queued(heard_after, after) == []
