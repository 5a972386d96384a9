"""A step committed by a process that never published it (a worker killed between its commit
and its publish) still reaches the browsers on Redis: the server's relay reads the event log
and sends what no publisher noted as sent (`processes.live_relay`), once.

The server runs on a private Redis; the step is completed in this test's own process, whose
publisher sends to another Redis (the suite's): for the server's Redis, it was never sent.
"""

from __future__ import annotations

from collections import Counter

import pytest

from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.background.test_live_across_processes import received
from tests.reliability import journeys
from tests.reliability.test_redis_outage import inbox_socket

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_step_whose_publisher_died_reaches_the_inbox_once(cluster, publish, rel_clerk):
    publish(journeys.FLOW)
    cluster.start_redis()
    server = cluster.server("relay", GNDP_LIVE_RELAY_SECONDS="0.5")
    server.wait_ready()
    clerk = rel_clerk.user
    process = start_process(workflow_id="rel-flow", user=clerk)
    fill = TaskInstance.objects.get(process=process, atom_id="flow-fill")

    with inbox_socket(server, clerk) as socket:
        received(socket, 1.0)  # the relay starts with the socket, at the end of the event log
        task_services.complete_task(fill.pk, user=clerk, result={"amount": 3})
        seen = received(socket, 6.0)

    completed = [f for f in seen if f.get("type") == "task.completed" and f.get("task_id") == fill.pk]
    assert len(completed) == 1, [f.get("type") for f in seen]
    assert [i for i, n in Counter(f["id"] for f in seen if "id" in f).items() if n > 1] == []
