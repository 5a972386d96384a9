"""R7 poison_job: a system step whose handler always raises (the engine's `fail` handler,
retries: 2) is tried 1 + 2 times with a growing backoff, then the step and its process are
`failed` (an incident an administrator sees and can retry), and it is never run again by
itself; healthy system steps started while it is retrying flow through the same worker.
"""

from __future__ import annotations

import time

import pytest

from processes.models import ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability import journeys
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BACKOFF = 0.5  # GNDP_RETRY_BACKOFF_BASE: the retries wait 0.5 s, then 1 s


def test_r7_poison_step_gets_bounded_retries_then_an_incident_while_other_work_flows(
        cluster, publish, rel_clerk):
    publish(journeys.POISON), publish(journeys.GOOD)
    cluster.start_redis()
    server = cluster.server("r7")
    worker = cluster.worker("r7-worker", GNDP_RETRY_BACKOFF_BASE=str(BACKOFF))
    server.wait_ready(), worker.wait_ready()

    began = time.monotonic()
    poison_id = rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-poison"}).json()["id"]
    poison = TaskInstance.objects.get(process_id=poison_id, atom_id="poison-step")
    wait_for(lambda: TaskInstance.objects.get(pk=poison.pk).attempts >= 1, 15, what="the first failed attempt")
    # Healthy work, started while the poison step waits for its retries.
    good_ids = [rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-good"}).json()["id"]
                for _ in range(4)]
    wait_for(lambda: ProcessInstance.objects.get(pk=poison_id).status == "failed", 20,
             what="the poison step to run out of retries")
    failed_after = time.monotonic() - began

    poison.refresh_from_db()
    process = ProcessInstance.objects.get(pk=poison_id)
    assert poison.status == "failed" and poison.attempts == 3  # the first try and two retries
    assert "poison" in poison.last_error
    assert process.failure == "poison-step: HandlerFailed: poison"
    assert failed_after >= BACKOFF * (1 + 2)  # it backed off between the attempts
    types = list(ProcessEvent.objects.filter(process_id=poison_id).values_list("type", flat=True))
    assert types.count("task.failed") == 1 and types.count("process.failed") == 1
    assert not TaskInstance.objects.filter(process_id=poison_id, atom_id="poison-after").exists()
    # Healthy steps went through meanwhile, each once.
    for good_id in good_ids:
        step = wait_for(lambda: TaskInstance.objects.filter(process_id=good_id, atom_id="good-step",
                                                            status="completed").first(), 10,
                        what="the healthy step to run")
        assert cluster.effects(step.pk) == 1 and cluster.attempts(step.pk) == 1
        assert TaskInstance.objects.filter(process_id=good_id, atom_id="good-after", status="pending").count() == 1
    # ... before the poison step had even run out of retries: no head-of-line blocking.
    failed_at = ProcessEvent.objects.get(process_id=poison_id, type="process.failed").timestamp
    assert max(TaskInstance.objects.filter(process_id__in=good_ids, atom_id="good-step")
               .values_list("completed_at", flat=True)) < failed_at
    # The incident is visible to those who run the process.
    incidents = rel_clerk.get(server.url, "/api/processes", status="failed").json()
    assert [p["id"] for p in incidents] == [poison_id]

    # No redelivery loop: neither the worker nor the beat sweep runs it again.
    events = ProcessEvent.objects.filter(process_id=poison_id).count()
    cluster.sweep()
    wait_for(lambda: "requeue_stale_system_tasks" in worker.log() and cluster.queue_empty(), 10,
             what="the sweep to run")
    time.sleep(3 * BACKOFF)
    poison.refresh_from_db()
    assert poison.status == "failed" and poison.attempts == 3
    assert ProcessEvent.objects.filter(process_id=poison_id).count() == events
    assert worker.log(100_000).count(f"(task {poison.pk}) attempt") == 3
