"""R2 celery_worker_kill_mid_job: a worker is SIGKILLed in the middle of a system step; the
step is delivered again, finished by a worker, its outside effect applied once, and the
process advanced once.

The step's handler (`rel_slow`, registered in the worker through GNDP_HANDLER_MODULES)
writes one ledger line per call and creates its effect file with O_EXCL, keyed by task id;
it sleeps on its first call so that the kill lands inside it.

Two ways back:
- the whole worker dies (kill -9 of its process group): the message stays unacknowledged
  in Redis until its visibility timeout, which settings fix at 3600 s (no environment
  override), so redelivery comes from the durable row instead: the beat sweep
  `requeue_stale_system_tasks` re-sends open system steps. The test sends that sweep to the
  restarted worker, then also replays the dead worker's unacknowledged message the way the
  transport would once its timeout passed (a late duplicate), which must change nothing;
- only the pool process dies (prefork): the worker itself sees WorkerLostError, and
  acks_late + reject_on_worker_lost requeue the message at once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from processes.models import ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def start_slow_step(cluster, server, api) -> tuple[int, TaskInstance]:
    """A process whose system step `rel-slow` a worker has begun (and is sleeping in)."""
    process_id = api.post(server.url, "/api/processes/start", {"journey_id": "rel-crash"}).json()["id"]
    fill = TaskInstance.objects.get(process_id=process_id, atom_id="rel-fill")
    done = api.post(server.url, f"/api/tasks/{fill.pk}/complete", {"result": {"amount": 7}})
    assert done.status_code == 200, done.text
    slow = TaskInstance.objects.get(process_id=process_id, atom_id="rel-slow")
    wait_for(lambda: cluster.attempts(slow.pk) == 1, 20, what="a worker to begin the system step")
    return process_id, slow


def assert_advanced_once(cluster, process_id: int, slow: TaskInstance) -> None:
    slow.refresh_from_db()
    assert slow.status == "completed"
    assert cluster.effects(slow.pk) == 1
    assert ProcessEvent.objects.filter(task_id=slow.pk, type="task.completed").count() == 1
    assert TaskInstance.objects.filter(process_id=process_id, atom_id="rel-check").count() == 1
    process = ProcessInstance.objects.get(pk=process_id)
    assert process.atom_states == {"rel-fill": "completed", "rel-slow": "completed", "rel-check": "active"}
    assert process.context == {"amount": 7, "slow_done": True}


def engine_jobs_done(worker) -> int:
    return sum(1 for line in worker.log(100_000).splitlines()
               if " succeeded in " in line and "processes.tasks." in line)


def test_r2_worker_killed_mid_step_the_sweep_redelivers_and_the_effect_is_applied_once(
        cluster, crash_journey, rel_clerk):
    cluster.start_redis()
    server = cluster.server("r2")
    first = cluster.worker("r2-worker-a")
    server.wait_ready(), first.wait_ready()
    process_id, slow = start_slow_step(cluster, server, rel_clerk)

    first.kill()
    second = cluster.worker("r2-worker-b").wait_ready()
    time.sleep(1)
    # Nothing comes back by itself: the message waits out its visibility timeout.
    slow.refresh_from_db()
    assert slow.status == "pending" and cluster.attempts(slow.pk) == 1 and cluster.effects(slow.pk) == 0

    cluster.sweep()
    wait_for(lambda: TaskInstance.objects.get(pk=slow.pk).status == "completed", 20,
             what="the swept step to finish")

    assert cluster.attempts(slow.pk) == 2  # at-least-once: the handler ran twice ...
    assert_advanced_once(cluster, process_id, slow)  # ... and its effect and the step once
    events = ProcessEvent.objects.filter(process_id=process_id).count()

    # The dead worker's message, put back as the transport does once its timeout passes.
    assert cluster.redeliver_unacked().count("processes.tasks.run_system_task") == 1
    # Worker B has now run three engine jobs: the sweep, the swept step, and the duplicate
    # (notification deliveries run beside them and are not counted).
    wait_for(lambda: cluster.queue_empty() and engine_jobs_done(second) == 3, 15,
             what="the late duplicate to be consumed")

    assert cluster.attempts(slow.pk) == 2  # the duplicate ran no handler ...
    assert "'closed'" in second.log()  # ... it found the step closed
    assert ProcessEvent.objects.filter(process_id=process_id).count() == events
    assert_advanced_once(cluster, process_id, slow)


def test_r2_pool_process_killed_mid_step_is_requeued_at_once(cluster, crash_journey, rel_clerk):
    cluster.start_redis()
    server = cluster.server("r2b")
    worker = cluster.worker("r2b-worker", pool="prefork")
    server.wait_ready(), worker.wait_ready()
    process_id, slow = start_slow_step(cluster, server, rel_clerk)

    # The ledger line names the pool process that runs the handler.
    child = int((cluster.ledger / f"attempts-{slow.pk}").read_text().split()[0])
    assert child != worker.pid
    os.kill(child, signal.SIGKILL)

    wait_for(lambda: TaskInstance.objects.get(pk=slow.pk).status == "completed", 20,
             what="the requeued step to finish")
    assert worker.alive
    assert cluster.attempts(slow.pk) == 2
    assert_advanced_once(cluster, process_id, slow)
