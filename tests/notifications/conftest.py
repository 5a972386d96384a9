from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from gndp.asgi import application

from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory


@dataclass
class People:
    sam: object  # starts processes (with the permission to start any journey); in no role
    clara: object  # role-clerk, reports to mona
    clive: object  # role-clerk, joins after clara (routing picks clara first)
    chet: object  # role-checker (a queue)
    mona: object  # clara's and clive's manager
    stranger: object


@pytest.fixture
def people(small_version) -> People:
    sam = UserFactory(username="sam", email="sam@example.com", permissions=[START_ANY_JOURNEY])
    mona = UserFactory(username="mona", email="mona@example.com")
    clara = UserFactory(username="clara", roles=["role-clerk"], email="clara@example.com")
    clive = UserFactory(username="clive", roles=["role-clerk"], email="clive@example.com")
    chet = UserFactory(username="chet", roles=["role-checker"], email="chet@example.com")
    stranger = UserFactory(username="stranger", email="stranger@example.com")
    Profile.objects.filter(user__in=[clara, clive]).update(manager=mona)
    return People(sam=sam, clara=clara, clive=clive, chet=chet, mona=mona, stranger=stranger)


def open_task(process, atom_id: str) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def run_to_end(process, people: People, *, score: int = 700):
    """Work every open human task the way its people would, until the process is final."""
    from tasks import services as task_services
    from tests.driver import drive

    def act(task, result):
        if task.assigned_to is None:
            task_services.start_task(task.pk, user=people.chet if task.role == "role-checker" else people.clara)
            task.refresh_from_db()
        task_services.complete_task(task.pk, user=task.assigned_to, result=result)

    return drive(process, act, overrides={"score": score})


def inbox_socket_hears(user, act: Callable[[], object]) -> tuple[list[dict], threading.Thread]:
    """What `user`'s inbox WebSocket hears while `act` runs (on a thread, as a request's
    work does) and until it has been quiet for 1.5 s; and the thread its loop ran on."""
    client = Client()
    client.force_login(user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    origin = (b"origin", b"http://127.0.0.1:8000")
    listening: list[threading.Thread] = []

    async def scenario():
        listening.append(threading.current_thread())
        socket = WebsocketCommunicator(application, "/ws/inbox/", headers=[origin, cookie])
        assert (await socket.connect(timeout=5))[0]
        await database_sync_to_async(act)()
        messages = []
        # receive_nothing waits without cancelling the application, where a timed-out
        # receive_json_from would
        while not await socket.receive_nothing(timeout=1.5):
            messages.append(await socket.receive_json_from())
        await socket.disconnect()
        return messages

    return async_to_sync(scenario)(), listening[0]
