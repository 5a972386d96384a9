"""Nothing told anyone that system steps were not being run. Now each worker process writes
its own heartbeat row; the dashboard, /metrics and the anomaly detector read them together
with the system steps waiting, and the web servers look for such steps themselves."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from django.utils import timezone

from anomalies.detection import detect, detect_waiting_system_steps
from anomalies.models import Anomaly
from monitoring import exposition
from monitoring.models import WorkerHeartbeat
from monitoring.workers import worker_health
from processes.services import start_process
from steps.changes import change_tasks
from tasks.models import TaskInstance
from tests.background.conftest import Supervised, alive, app_env, wait_until, worker_argv
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def last_seen(pid: int):
    return WorkerHeartbeat.objects.filter(pid=pid).values_list("last_seen_at", flat=True).first()


def beating(pid: int, over: float = 1.0) -> bool:
    before = last_seen(pid)
    time.sleep(over)
    return before is not None and last_seen(pid) > before


def test_each_worker_process_beats_a_killed_one_stops_and_a_clean_stop_says_so(transactional_db, tmp_path, settings):
    settings.GNDP_WORKER_STALE_SECONDS = 2
    # given a worker under make run's supervisor, beating every 0.3 s
    supervised = Supervised(tmp_path, worker_argv("beating"), "--min-backoff", "0.5",
                            env=app_env(tmp_path, GNDP_WORKER_HEARTBEAT_SECONDS="0.3"))
    try:
        wait_until(lambda: supervised.logged().count("ready.") == 1, 60, "the worker to be ready")
        first = supervised.started_pids()[0]
        wait_until(lambda: last_seen(first), 10, "the first heartbeat")
        assert beating(first)
        assert (worker_health().alive, worker_health().state) == (1, "ok")
        # when it is killed with kill -9 (and the supervisor starts another)
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: supervised.started_pids()[1:], 30, "the restart")[0]
        wait_until(lambda: last_seen(second), 30, "the second worker's heartbeat")
        # then the killed one stopped beating without saying so, the new one beats
        assert not beating(first, over=1.0)
        assert WorkerHeartbeat.objects.get(pid=first).stopped_at is None
        assert beating(second)
        time.sleep(2)
        health = worker_health()
        assert (health.alive, health.last_pid, health.state) == (1, second, "ok")
    finally:
        # and a clean stop (SIGTERM) writes the last beat with the time it stopped
        assert supervised.stop() == 0
    assert not alive(second)
    stopped = WorkerHeartbeat.objects.get(pid=second)
    assert stopped.stopped_at is not None and stopped.stopped_at == stopped.last_seen_at
    health = worker_health()
    assert (health.alive, health.last_stopped, health.state) == (0, True, "down")
    assert sorted(WorkerHeartbeat.objects.values_list("pid", flat=True)) == sorted([first, second])


def test_pool_processes_forked_while_the_heartbeat_writes_still_take_work(children, background_version, purge_broker):
    # given a prefork worker that forks a new pool process after every task (as it does when
    # one dies), while its heartbeat thread is in the database nearly all the time
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    children.worker("forking", argv=("--pool=prefork", "--concurrency=2", "--max-tasks-per-child=1"),
                    GNDP_WORKER_HEARTBEAT_SECONDS="0.002")
    # when forty system steps are sent to it
    processes = [start_process(workflow_id="journey-bg", user=admin) for _ in range(40)]
    # then every one of them is run: no pool process hangs on a lock inherited mid-beat
    steps = TaskInstance.objects.filter(process__in=processes, atom_id="bg-check")
    wait_until(lambda: steps.filter(status="completed").count() == 40, 120,
               "forty system steps run by freshly forked pool processes", interval=0.5)


def metric(body: str, name: str) -> str:
    return re.search(rf"^{name} (\S+)$", body, re.M)[1]


def test_a_system_step_no_worker_runs_is_shown_and_flagged_until_a_worker_runs_it(
        children, background_version, purge_broker, client, settings):
    settings.GNDP_SYSTEM_STEP_WAIT_SECONDS = 1
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.force_login(admin)
    # given a process whose first step is a system step, and no worker anywhere
    process = start_process(workflow_id="journey-bg", user=admin)
    step = TaskInstance.objects.get(process=process, atom_id="bg-check")
    time.sleep(1.2)

    # then the dashboard opens with a red banner, and counts the process as blocked
    page = client.get("/dashboard/").content.decode()
    assert 'data-worker-state="down"' in page
    assert "No worker has ever reported: system steps are not being run." in page
    assert 'data-waiting="1"' in page
    assert re.search(r'data-card="blocked">1<', page) and re.search(r'data-card="on_track">0<', page)
    # and /metrics says the same
    exposition._cache.clear()
    body = client.get("/metrics").content.decode()
    assert (metric(body, "gndp_workers_alive"), metric(body, "gndp_system_steps_waiting"),
            metric(body, "gndp_worker_last_seen_seconds")) == ("0.0", "1.0", "+Inf")
    # and the detector flags the step, with why
    assert detect_waiting_system_steps().opened == 1
    anomaly = Anomaly.objects.get(kind="system_step_waiting", task_id=step.pk, resolved_at__isnull=True)
    assert anomaly.reason.startswith("System step “Credit check” has waited ")
    assert anomaly.reason.endswith("for a worker: no worker has ever reported, so system steps are not being run. "
                                   "Start one: celery -A gndp worker --beat.")
    # which /anomalies/ and the dashboard's panel list
    for path in ("/anomalies/", "/anomalies/panel/"):
        listed = client.get(path).content.decode()
        assert f'id="anomaly-{anomaly.pk}" data-anomaly-kind="system_step_waiting"' in listed
        assert "System step not run" in listed and "has waited" in listed

    # when a worker starts
    worker = children.worker(GNDP_WORKER_HEARTBEAT_SECONDS="0.3")
    # then it runs the step from the queue, and everything says all is well again
    wait_until(lambda: TaskInstance.objects.get(pk=step.pk).status == "completed", 30, "the step to be run")
    wait_until(lambda: worker_health().alive, 10, "the worker's heartbeat")
    page = client.get("/dashboard/").content.decode()
    assert 'data-worker-state="ok"' in page and "1 worker running" in page
    exposition._cache.clear()
    body = client.get("/metrics").content.decode()
    assert (metric(body, "gndp_workers_alive"), metric(body, "gndp_system_steps_waiting")) == ("1.0", "0.0")
    assert float(metric(body, "gndp_worker_last_seen_seconds")) < 5
    assert detect().resolved == 1
    anomaly.refresh_from_db()
    assert anomaly.resolved_at is not None
    assert worker.proc.poll() is None


def test_when_the_last_worker_is_gone_the_reason_names_it(children, background_version, purge_broker, settings):
    settings.GNDP_SYSTEM_STEP_WAIT_SECONDS = 1
    settings.GNDP_WORKER_STALE_SECONDS = 1
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    # given a worker that beat and was killed
    worker = children.worker("gone", GNDP_WORKER_HEARTBEAT_SECONDS="0.3")
    wait_until(lambda: last_seen(worker.pid), 10, "the heartbeat")
    worker.stop(signal.SIGKILL)
    node = WorkerHeartbeat.objects.get(pid=worker.pid).node
    # when a system step then waits
    process = start_process(workflow_id="journey-bg", user=admin)
    time.sleep(1.3)
    detect_waiting_system_steps()
    # then the anomaly says for how long no worker reported, and which was the last
    reason = Anomaly.objects.get(kind="system_step_waiting", process=process).reason
    assert re.search(rf": no worker has reported for \d+s \(the last: {re.escape(node)}, pid {worker.pid}\), so "
                     r"system steps are not being run\.$", reason), reason


def test_workers_that_beat_but_do_not_take_the_work_are_told_apart(children, background_version, purge_broker, client,
                                                                    settings):
    settings.GNDP_SYSTEM_STEP_WAIT_SECONDS = 1
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.force_login(admin)
    # given a worker that beats but consumes another queue than the system steps'
    worker = children.worker("elsewhere", queues="elsewhere", GNDP_WORKER_HEARTBEAT_SECONDS="0.3")
    wait_until(lambda: last_seen(worker.pid), 10, "the heartbeat")
    # when a system step waits
    process = start_process(workflow_id="journey-bg", user=admin)
    time.sleep(1.2)
    # then the banner is amber, not red, and the anomaly says workers report but none ran it
    page = client.get("/dashboard/").content.decode()
    assert 'data-worker-state="lagging"' in page and 'data-waiting="1"' in page
    assert "1 worker reports (the last " in page
    detect_waiting_system_steps()
    reason = Anomaly.objects.get(kind="system_step_waiting", process=process).reason
    assert re.search(r": 1 worker reports \(the last \d+s ago\) but none has run it: its message may have been lost",
                     reason), reason


def test_sla_timers_that_no_beat_fires_are_shown_too(children, background_version, purge_broker, client):
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    UserFactory(username="bea", roles=["role-bg"])
    client.force_login(admin)
    # given a worker without a beat, which ran the system step before the review
    children.worker("no-beat", GNDP_WORKER_HEARTBEAT_SECONDS="0.3")
    process = start_process(workflow_id="journey-bg", user=admin)
    review = wait_until(lambda: TaskInstance.objects.filter(process=process, atom_id="bg-review").first(), 30,
                        "the review")
    # when the review's SLA target passed five minutes ago and nothing fired it
    change_tasks(TaskInstance.objects.filter(pk=review.pk), due_date=timezone.now() - timezone.timedelta(minutes=5))
    # then the banner is amber and names the beat, and /metrics counts the timer
    page = client.get("/dashboard/").content.decode()
    assert 'data-worker-state="lagging"' in page and 'data-timers-late="1"' in page
    assert "1 SLA timer</span> more than 2m past due and not fired." in page
    exposition._cache.clear()
    assert metric(client.get("/metrics").content.decode(), "gndp_sla_timers_late") == "1.0"
    # and once the sweep runs (sent to the worker as the beat would), all is well again
    from monitoring.jobs import sweep_sla

    sweep_sla.delay()
    wait_until(lambda: TaskInstance.objects.get(pk=review.pk).sla_warned_at, 30, "the warning to fire")
    assert 'data-worker-state="ok"' in client.get("/dashboard/").content.decode()


def test_a_server_notices_system_steps_no_worker_runs_by_itself(children, background_version, purge_broker):
    # given a web server and no worker at all (so no beat runs the detector either)
    children.server(GNDP_WATCHDOG_SECONDS="0.5", GNDP_SYSTEM_STEP_WAIT_SECONDS="1")
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    # when a system step waits
    process = start_process(workflow_id="journey-bg", user=admin)
    step = TaskInstance.objects.get(process=process, atom_id="bg-check")
    # then the server's own watchdog flags it within seconds
    anomaly = wait_until(lambda: Anomaly.objects.filter(kind="system_step_waiting", task_id=step.pk).first(), 20,
                         "the server to flag the step")
    assert anomaly.detected_at - step.created_at < timezone.timedelta(seconds=10)
