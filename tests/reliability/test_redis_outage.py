"""R5 redis_outage: the Redis a live server uses (channel layer and Celery broker; a private
one on a spare port) goes down for a few seconds under load and comes back.

While it is down, starts and completions over HTTP keep answering 201/200 (publishing and
enqueueing happen after the commit and are best effort). When it is back, a reconnecting
WebSocket client gets live events again, REST shows everything that happened meanwhile, and
the system steps whose enqueue was lost are re-sent by the beat sweep and finish.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from websockets.sync.client import connect

from processes.models import ProcessInstance
from tasks.models import TaskInstance
from tests.reliability import journeys
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OUTAGE = 5.0  # seconds Redis stays down


def inbox_socket(server, user):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return connect(server.url.replace("http://", "ws://") + "/ws/inbox/", origin=server.url, proxy=None,
                   additional_headers={"Cookie": cookie}, open_timeout=5)


def receive_until(socket, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(event):
            return event


def test_r5_redis_outage_completions_keep_working_and_live_updates_and_system_work_resume(
        cluster, publish, rel_clerk):
    publish(journeys.FLOW)
    redis = cluster.start_redis()
    server = cluster.server("r5")
    worker = cluster.worker("r5-worker")
    server.wait_ready(), worker.wait_ready()
    api = rel_clerk
    process_ids = [api.post(server.url, "/api/processes/start", {"journey_id": "rel-flow"}).json()["id"]
                   for _ in range(7)]
    fills = {pid: TaskInstance.objects.get(process_id=pid, atom_id="flow-fill").pk for pid in process_ids}

    # Redis up: a completion is pushed live, and its system step runs.
    with inbox_socket(server, api.user) as socket:
        assert api.post(server.url, f"/api/tasks/{fills[process_ids[0]]}/complete",
                        {"result": {"amount": 0}}).status_code == 200
        receive_until(socket, lambda e: e["type"] == "task.completed" and e["task_id"] == fills[process_ids[0]])
    wait_for(lambda: TaskInstance.objects.filter(process_id=process_ids[0], atom_id="flow-check").exists(), 10,
             what="the system step before the outage")

    redis.kill()
    down_at = time.monotonic()
    answers = []
    for i, pid in enumerate(process_ids[1:6], start=1):
        sent = time.monotonic()
        response = api.post(server.url, f"/api/tasks/{fills[pid]}/complete", {"result": {"amount": i}})
        answers.append((response.status_code, time.monotonic() - sent))
        sent = time.monotonic()
        response = api.post(server.url, "/api/processes/start", {"journey_id": "rel-flow"})
        answers.append((response.status_code, time.monotonic() - sent))
        process_ids.append(response.json()["id"] if response.status_code == 201 else None)
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
    redis.start()

    assert [code for code, _ in answers] == [200, 201] * 5, answers
    assert max(seconds for _, seconds in answers) < 5, answers
    print("answers while Redis was down (status, seconds):", [(c, round(t, 2)) for c, t in answers])
    for i, pid in enumerate(process_ids[1:6], start=1):  # every acknowledged completion is there
        task = TaskInstance.objects.get(pk=fills[pid])
        assert task.status == "completed" and task.result == {"amount": i}

    # Back up: a client that reconnects gets live events again ...
    with wait_for(lambda: _try(lambda: inbox_socket(server, api.user)), 10, 0.2, "the WebSocket to reconnect") \
            as socket:
        last = fills[process_ids[6]]
        assert api.post(server.url, f"/api/tasks/{last}/complete", {"result": {"amount": 6}}).status_code == 200
        receive_until(socket, lambda e: e["type"] == "task.completed" and e["task_id"] == last)
    # ... the system steps the outage kept from the queue are re-sent by the sweep and run ...
    cluster.sweep()
    wait_for(lambda: TaskInstance.objects.filter(process_id__in=process_ids[:7], atom_id="flow-check").count() == 7,
             20, 0.1, "the backlog of system steps to drain")
    for pid in process_ids[:7]:
        assert ProcessInstance.objects.get(pk=pid).context["checked"] is True
    # ... and REST shows the whole state.
    inbox = {(t["process_instance_id"], t["atom_id"]) for t in api.get(server.url, "/api/tasks/inbox").json()}
    assert inbox == {(pid, "flow-check") for pid in process_ids[:7]} | {(pid, "flow-fill")
                                                                        for pid in process_ids[7:]}


def _try(make):
    try:
        return make()
    except Exception:  # noqa: BLE001 - not up yet
        return None
