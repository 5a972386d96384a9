"""How many times a completion and a start wait for PostgreSQL, read off libpq's trace of
the protocol: each time the client's messages are followed by the server's is one round
trip. The figures in docs/performance.md rest on these counts."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import yaml
from django.db import connection
from rest_framework.test import APIClient

from processes.services import start_process
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tasks.services import complete_task
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHAIN = """
format: gndp-journey/1
journey: {id: journey-chain, name: Chain}
roles: [{id: role-chain, name: Chain}]
atoms:
  - {id: atom-one, name: One, performed_by: role-chain}
  - {id: atom-two, name: Two, performed_by: role-chain}
  - {id: atom-three, name: Three, performed_by: role-chain}
edges:
  - {type: ENABLES, from: atom-one, to: atom-two}
  - {type: ENABLES, from: atom-two, to: atom-three}
"""


@contextmanager
def round_trips(tmp_path):
    """Count the round trips of the block on this thread's connection (`counted[0]`)."""
    from psycopg import pq

    counted = [0]
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    path = tmp_path / "protocol.trace"
    with open(path, "w") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            pgconn.untrace()
    lines = [line for line in path.read_text().splitlines() if line]
    # Up to the COMMIT's answer: what the commit sets off in this thread (the tests run the
    # workers' jobs eagerly) is not the operation's.
    commit = next(i for i, line in enumerate(lines) if line.startswith("F") and '"COMMIT"' in line)
    answered = next(i for i in range(commit, len(lines)) if lines[i].startswith("B"))
    directions = [line.split("\t", 1)[0] for line in lines[:answered + 1]]
    counted[0] = sum(1 for sent, answer in zip(directions, directions[1:]) if sent == "F" and answer == "B")


@pytest.fixture
def chain(db):
    publish_journey(yaml.safe_load(CHAIN))
    return UserFactory(username="worker", roles=["role-chain"])


def test_a_completion_whose_next_task_is_known_waits_twice(chain, tmp_path):
    process = start_process(workflow_id="journey-chain")
    task = TaskInstance.objects.get(process=process, atom_id="atom-one")
    complete_task(task.pk, user=chain)
    for other in [start_process(workflow_id="journey-chain") for _ in range(2)]:  # statements prepared
        complete_task(TaskInstance.objects.get(process=other, atom_id="atom-one").pk, user=chain)
    second = TaskInstance.objects.get(process=process, atom_id="atom-two")

    with round_trips(tmp_path) as counted:
        complete_task(second.pk, user=chain)

    # The BEGIN with the lock read and the next task's routing; the step's writes with the COMMIT.
    assert counted[0] == 2
    assert TaskInstance.objects.get(process=process, atom_id="atom-three").assigned_to == chain


SPLIT = """
format: gndp-journey/1
journey: {id: journey-split, name: Split}
roles: [{id: role-chain, name: Chain}]
atoms:
  - {id: atom-open, name: Open, performed_by: role-chain}
  - {id: atom-a, name: A, performed_by: role-chain}
  - {id: atom-b, name: B, performed_by: role-chain}
  - {id: atom-c, name: C, performed_by: role-chain}
edges:
  - {type: ENABLES, from: atom-open, to: atom-a}
  - {type: ENABLES, from: atom-open, to: atom-b}
  - {type: ENABLES, from: atom-open, to: atom-c}
"""


def test_a_completion_routes_the_parallel_tasks_it_could_not_foresee_in_one_round_trip(chain, tmp_path):
    from steps import lookahead

    publish_journey(yaml.safe_load(SPLIT))
    processes = [start_process(workflow_id="journey-split") for _ in range(4)]
    opened = [TaskInstance.objects.get(process=process, atom_id="atom-open") for process in processes]
    lookahead.forget_all()  # as if another server process had created them: nothing foreseen
    for task in opened[:3]:  # statements prepared
        complete_task(task.pk, user=chain)

    with round_trips(tmp_path) as counted:
        complete_task(opened[3].pk, user=chain)

    # The BEGIN with the lock read; the three new tasks' routing, together; the writes with the COMMIT.
    assert counted[0] == 3
    assert TaskInstance.objects.filter(process=processes[3], assigned_to=chain, status="pending").count() == 3


def test_a_start_waits_three_times(chain, tmp_path):
    for _ in range(3):  # its statements prepared (psycopg prepares one on its third run)
        start_process(workflow_id="journey-chain")

    with round_trips(tmp_path) as counted:
        process = start_process(workflow_id="journey-chain")

    # The latest version; the BEGIN with the process id and the first task's routing; the
    # writes with the COMMIT.
    assert counted[0] == 3
    assert TaskInstance.objects.get(process=process, atom_id="atom-one").assigned_to == chain


def test_a_retry_safe_api_completion_waits_six_times(chain, tmp_path):
    api = APIClient()
    api.force_authenticate(chain)
    processes = [start_process(workflow_id="journey-chain") for _ in range(4)]
    tasks = [TaskInstance.objects.get(process=process, atom_id="atom-one").pk for process in processes]
    for n, task_id in enumerate(tasks[:3]):  # its statements prepared
        assert api.post(f"/api/tasks/{task_id}/complete", {"result": {}}, format="json",
                        HTTP_IDEMPOTENCY_KEY=f"warm-{n}").status_code == 200

    with round_trips(tmp_path) as counted:
        response = api.post(f"/api/tasks/{tasks[3]}/complete", {"result": {}}, format="json",
                            HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 200
    # The BEGIN with the key's lookup; the service's savepoint; its lock read; its writes; the
    # savepoint's release; the key's record with the COMMIT.
    assert counted[0] == 6
    replay = api.post(f"/api/tasks/{tasks[3]}/complete", {"result": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.json() == response.json() and replay["Idempotent-Replayed"] == "true"
