"""Comments and files reach everyone viewing the process or the task, live."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from collaboration.services import comment_add
from gndp.asgi import application

from .conftest import queued_checker_task

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


async def drain(socket, settle: float = 1.5) -> list[dict]:
    received = []
    while not await socket.receive_nothing(timeout=settle):
        received.append(await socket.receive_json_from())
    return received


def connects(path: str, user) -> bool:
    session = cookie(user)

    async def attempt():
        socket = WebsocketCommunicator(application, path, headers=[ORIGIN, session])
        connected, _ = await socket.connect(timeout=5)
        await socket.disconnect()
        return connected

    return async_to_sync(attempt)()


def test_a_process_comment_reaches_every_viewer_of_the_process(world):
    sam_cookie, clara_cookie = cookie(world.sam), cookie(world.clara)

    async def scenario():
        viewers = [WebsocketCommunicator(application, f"/ws/processes/{world.process.pk}/", headers=[ORIGIN, c])
                   for c in (sam_cookie, clara_cookie)]
        for viewer in viewers:
            assert (await viewer.connect(timeout=5))[0]
        comment = await database_sync_to_async(comment_add)(user=world.sam, process_id=world.process.pk,
                                                            body="@clara the appraisal is in")
        heard = [await drain(viewer) for viewer in viewers]
        for viewer in viewers:
            await viewer.disconnect()
        return comment, heard

    comment, heard = async_to_sync(scenario)()

    for events in heard:
        added = [e for e in events if e["type"] == "comment.added"]
        assert len(added) == 1
        assert added[0]["payload"]["comment_id"] == comment.pk and added[0]["user_id"] == "sam"


def test_a_task_comment_reaches_a_colleague_who_sees_only_the_task(world):
    queued = queued_checker_task(world)
    cheryl_cookie = cookie(world.cheryl)
    assert not connects(f"/ws/processes/{world.process.pk}/", world.cheryl)

    async def scenario():
        socket = WebsocketCommunicator(application, f"/ws/tasks/{queued.pk}/", headers=[ORIGIN, cheryl_cookie])
        assert (await socket.connect(timeout=5))[0]
        await database_sync_to_async(comment_add)(user=world.chet, task_id=queued.pk, body="taking it?")
        events = await drain(socket)
        await socket.disconnect()
        return events

    events = async_to_sync(scenario)()

    assert [e["type"] for e in events] == ["comment.added"]
    assert events[0]["task_id"] == queued.pk


def test_only_those_who_see_the_task_may_listen_to_it(world):
    assert connects(f"/ws/tasks/{world.task.pk}/", world.clara)
    assert connects(f"/ws/tasks/{world.task.pk}/", world.mona)
    assert not connects(f"/ws/tasks/{world.task.pk}/", world.stranger)
    assert not connects(f"/ws/tasks/{world.task.pk}/", world.sam)
