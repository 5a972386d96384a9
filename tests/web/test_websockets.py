"""Live updates over WebSockets: who may connect, and who hears what."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from gndp.asgi import application
from processes.services import start_process
from tasks.models import TaskInstance
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(path: str, *headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=list(headers))


def connects(path, *headers) -> bool:
    async def attempt():
        ws = communicator(path, *headers)
        connected, _ = await ws.connect(timeout=5)
        await ws.disconnect()
        return connected

    return async_to_sync(attempt)()


def test_anonymous_and_cross_origin_connections_are_refused(small_version, clerk):
    assert not connects("/ws/inbox/", ORIGIN)
    assert not connects("/ws/inbox/", (b"origin", b"http://evil.example"), session_cookie(clerk))
    assert connects("/ws/inbox/", ORIGIN, session_cookie(clerk))


def test_process_and_monitoring_channels_check_access(small_version, clerk, checker):
    process = start_process(workflow_id="journey-small", user=clerk)

    assert connects(f"/ws/processes/{process.pk}/", ORIGIN, session_cookie(clerk))
    assert not connects(f"/ws/processes/{process.pk}/", ORIGIN, session_cookie(checker))
    assert not connects("/ws/monitoring/", ORIGIN, session_cookie(clerk))


def test_a_user_hears_its_own_inbox_events_and_never_another_users(small_version):
    alice = UserFactory(username="alice", roles=["role-clerk"])
    bob = UserFactory(username="bob", roles=["role-clerk"])
    alice_cookie, bob_cookie = session_cookie(alice), session_cookie(bob)

    async def scenario():
        alice_ws = communicator("/ws/inbox/", ORIGIN, alice_cookie)
        bob_ws = communicator("/ws/inbox/", ORIGIN, bob_cookie)
        assert (await alice_ws.connect(timeout=5))[0] and (await bob_ws.connect(timeout=5))[0]
        # least_busy with no history: alice (lowest id) gets the first task, bob the second.
        first = await database_sync_to_async(start_process)(workflow_id="journey-small", user=alice)
        alice_events = await drain(alice_ws)
        bob_events = await drain(bob_ws)
        await alice_ws.disconnect()
        await bob_ws.disconnect()
        return first, alice_events, bob_events

    first, alice_events, bob_events = async_to_sync(scenario)()

    task = TaskInstance.objects.get(process=first)
    assert task.assigned_to.username == "alice"
    # Sent to her inbox group as one batch (processes.live), received as frames in order.
    assert [e["type"] for e in alice_events] == ["task.created", "task.assigned"]
    assert all(e["process_id"] == first.pk for e in alice_events)
    assert bob_events == []


async def drain(ws, settle: float = 1.5) -> list[dict]:
    """Everything the socket receives until it has been quiet for `settle` seconds.

    `receive_nothing` waits without cancelling the application, where a timed-out
    `receive_json_from` would."""
    events = []
    while not await ws.receive_nothing(timeout=settle):
        events.append(await ws.receive_json_from())
    return events
