"""The database drops the app's connections, or goes away altogether: never a 500, nothing
lost, and the same processes recover on their own (gndp.db_faults).

R4c: two clients work against one server while `pg_terminate_backend` keeps ending the
server's idle backends, including the ones a request holds between two statements. A
request that meets a dropped connection before it wrote anything runs once more on a new
one; one that cannot answers 503 with Retry-After, and the client sends it again under the
same Idempotency-Key. R4d: the database is cut off (a TCP forwarder in front of it goes
down) and comes back. R4e: a Celery worker's connections are ended while it runs system
steps. R4f: the background thread that delivers notifications loses its connection in the
middle of a delivery.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import psycopg
import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from processes.models import ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability import journeys
from tests.reliability.conftest import NO_PROXY, wait_for
from tests.reliability.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DRILL_REQUESTS = int(os.environ.get("REL_DROP_REQUESTS", "1200"))


def backends(app_name: str, *, state: str | None = None) -> list[int]:
    sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"
    params = [app_name]
    if state is not None:
        sql += " AND state = %s"
        params.append(state)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def terminate(pids) -> int:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(pids)


class Killer:
    """Ends the `state` backends of `app_name` every `low`..`high` seconds until stopped."""

    def __init__(self, app_name: str, low: float, high: float, state: str | None = "idle") -> None:
        self.app_name, self.low, self.high, self.state = app_name, low, high, state
        self.killed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Its own connection: Django's are per thread, and this one must not be the test's.
        try:
            while not self._stop.wait(random.uniform(self.low, self.high)):
                self.killed += terminate(backends(self.app_name, state=self.state))
        finally:
            connection.close()

    def __enter__(self) -> "Killer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def is_unavailable_answer(response) -> bool:
    return (response.status_code == 503 and response.headers.get("Retry-After") == "1"
            and response.json()["error"]["code"] == "database_unavailable")


def assert_open(live) -> None:
    """The socket answers a ping: it is open (a live update may arrive on it meanwhile)."""
    assert live.ping().wait(10), "the socket did not answer a ping"


def test_r4c_dropped_connections_never_answer_500_and_lose_nothing(cluster, publish, rel_clerk):
    publish(journeys.FLOW)
    server = cluster.server("r4c", redis=False, eager=True).wait_ready()
    codes: Counter = Counter()
    unexpected: list[tuple[str, int, str]] = []
    completed: dict[int, dict] = {}  # task id -> the result acknowledged with a 200
    started: list[int] = []
    lock = threading.Lock()

    def send(method: str, path: str, body=None, key: str | None = None):
        """A client that honours Retry-After: a 503 is sent again, with the same key."""
        for _ in range(20):
            response = (rel_clerk.post(server.url, path, body, key=key) if method == "POST"
                        else rel_clerk.get(server.url, path))
            with lock:
                codes[response.status_code] += 1
            if response.status_code == 503 and is_unavailable_answer(response):
                time.sleep(0.05)
                continue
            if response.status_code >= 500 or response.status_code == 503:
                with lock:
                    unexpected.append((path, response.status_code, response.text[:300]))
            return response
        raise AssertionError(f"{method} {path}: still 503 after 20 tries")

    def client(n: int, count: int) -> None:
        try:
            work(n, count)
        finally:
            connection.close()  # this thread's own

    def work(n: int, count: int) -> None:
        sent = 0
        while sent < count and len(unexpected) < 3:  # broken: fail soon, not after the drill
            start = send("POST", "/api/processes/start", {"journey_id": "rel-flow"}, key=f"s-{n}-{sent}")
            sent += 1
            if start.status_code != 201:
                continue
            process_id = start.json()["id"]
            with lock:
                started.append(process_id)
            send("GET", "/api/tasks/inbox")
            sent += 1
            for _ in range(3):
                send("GET", f"/api/processes/{process_id}")
                sent += 1
            task_id = TaskInstance.objects.get(process_id=process_id, atom_id="flow-fill").pk
            result = {"amount": n * 1000 + sent}
            done = send("POST", f"/api/tasks/{task_id}/complete", {"result": result}, key=f"c-{n}-{task_id}")
            sent += 1
            if done.status_code == 200:
                with lock:
                    completed[task_id] = result
            send("GET", f"/api/tasks/{task_id}")
            sent += 1

    with Killer("rel-r4c", 0.05, 0.3) as killer:
        clients = [threading.Thread(target=client, args=(n, DRILL_REQUESTS // 2)) for n in range(2)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(600)

    assert killer.killed >= 20, killer.killed  # the drill did drop connections
    assert not unexpected, (codes, unexpected[:5], server.log(6000))
    assert set(codes) <= {200, 201, 503}, codes
    # Every acknowledged write is there, once; the same server, never restarted, goes on.
    assert started and len(completed) == len(started), (len(started), len(completed), codes)
    for task_id, result in completed.items():
        task = TaskInstance.objects.get(pk=task_id)
        assert (task.status, task.result) == ("completed", result)
    assert all(count == 1 for count in Counter(
        ProcessEvent.objects.filter(type="task.completed").values_list("task_id", flat=True)).values())
    assert ProcessInstance.objects.filter(pk__in=started).count() == len(started)
    assert server.alive and server.starts == 1
    assert rel_clerk.get(server.url, "/api/tasks/inbox").status_code == 200


def test_r4d_database_down_answers_503_and_the_same_server_recovers(cluster, publish, rel_clerk):
    from django.test import Client

    publish(journeys.FLOW)
    database = urlparse(cluster.database_url)
    proxy = TcpProxy(database.hostname or "127.0.0.1", database.port or 5432).up()
    cluster.cleanups.append(proxy.down)
    through_proxy = cluster.database_url.replace(f":{database.port or 5432}/", f":{proxy.port}/")
    server = cluster.server("r4d", redis=False, eager=True, DATABASE_URL=through_proxy,
                            DATABASE_POOL_TIMEOUT="2").wait_ready()
    process_id = rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-flow"}).json()["id"]
    fill = TaskInstance.objects.get(process_id=process_id, atom_id="flow-fill")
    body = {"result": {"amount": 7}}
    browser = Client()
    browser.force_login(rel_clerk.user)
    cookie = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    ws_url = server.url.replace("http://", "ws://") + "/ws/inbox/"

    def socket():
        return connect(ws_url, origin=server.url, proxy=None, additional_headers=cookie, open_timeout=15)

    with socket() as live:  # up: the handshake goes through and the socket stays open
        assert_open(live)

    proxy.down()
    began = time.monotonic()
    answers = [
        rel_clerk.get(server.url, f"/api/tasks/{fill.pk}"),
        rel_clerk.post(server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4d-key"),
        rel_clerk.get(server.url, "/api/processes", status="running"),
    ]
    page = rel_clerk.session.get(server.url + "/", headers=cookie, timeout=30)
    for answer in answers:
        assert is_unavailable_answer(answer), (answer.status_code, answer.text[:300])
    assert page.status_code == 503 and page.headers.get("Retry-After") == "1", (page.status_code, page.text[:300])
    assert "Traceback" not in page.text
    # A socket whose handshake cannot reach the database is told to come back later.
    with pytest.raises(ConnectionClosed) as closed:
        with socket() as down_socket:
            down_socket.recv(timeout=15)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
    assert time.monotonic() - began < 30  # each waited for the pool's 2 s, not for ever

    proxy.up()
    # The same server process, never restarted, answers again once the database is back.
    wait_for(lambda: rel_clerk.get(server.url, f"/api/tasks/{fill.pk}").status_code == 200, 60,
             interval=0.5, what="the server to reach the database again")
    done = rel_clerk.post(server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4d-key")
    again = rel_clerk.post(server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4d-key")
    assert done.status_code == 200, done.text
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert ProcessEvent.objects.filter(task_id=fill.pk, type="task.completed").count() == 1
    with socket() as live:
        assert_open(live)
    assert server.alive and server.starts == 1


@pytest.mark.worker
def test_r4e_worker_jobs_survive_dropped_connections_without_the_sweep(cluster, publish, rel_clerk):
    publish(journeys.CHAIN)
    cluster.start_redis()
    server = cluster.server("r4e-web").wait_ready()
    cluster.worker("r4e", GNDP_JOB_DB_RETRY_BACKOFF="0.1").wait_ready()
    with Killer("rel-r4e", 0.05, 0.25, state=None) as killer:
        ids = [rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-chain"}).json()["id"]
               for _ in range(30)]

        def chains_done() -> bool:
            return TaskInstance.objects.filter(process_id__in=ids, atom_id="chain-end").count() == len(ids)

        # No sweep is sent: each job has to get through the dropped connections on its own.
        wait_for(chains_done, 120, interval=0.2, what="every chain to reach its person's step")
    assert killer.killed >= 10, killer.killed
    steps = TaskInstance.objects.filter(process_id__in=ids, kind="system")
    assert steps.count() == 4 * len(ids) and set(steps.values_list("status", flat=True)) == {"completed"}
    completions = Counter(ProcessEvent.objects.filter(process_id__in=ids, type="task.completed")
                          .values_list("task_id", flat=True))
    assert len(completions) == 4 * len(ids) and set(completions.values()) == {1}
    for task in steps.filter(atom_id__in=["chain-1", "chain-3"]):
        assert cluster.effects(task.pk) == 1
    assert not ProcessInstance.objects.filter(pk__in=ids, status="failed").exists()


def test_r4f_background_notification_delivery_runs_again_after_a_dropped_connection(transactional_db):
    from notifications import relay
    from notifications.models import DeliveredEvent, Notification
    from processes import services
    from processes.versions import publish_journey
    from tests.factories import START_ANY_JOURNEY, UserFactory

    import yaml

    publish_journey(yaml.safe_load(journeys.FLOW))
    starter, clerk = UserFactory(username="r4f-starter", permissions=[START_ANY_JOURNEY]), UserFactory(username="r4f-clerk", roles=["role-rel"])
    process = services.start_process(workflow_id="rel-flow", user=starter)
    assigned = ProcessEvent.objects.get(process=process, type="task.assigned")
    assert assigned.payload["assigned_to_id"] == clerk.pk
    # Delivered at commit already (the suite delivers inline): made undelivered again.
    Notification.objects.filter(event_id=assigned.pk).delete()
    DeliveredEvent.objects.filter(event_id=assigned.pk).delete()

    # The delivery thread's claim of the event waits behind this uncommitted one; the test
    # ends exactly that backend while it waits, in the middle of the delivery.
    blocker = psycopg.connect(_database_url())
    try:
        blocker.execute("INSERT INTO notifications_deliveredevent (event_id, delivered_at) VALUES (%s, now())",
                        [assigned.pk])
        relay._deliveries.put([assigned])
        waiting = wait_for(lambda: _lock_waiters("notifications_deliveredevent"), 20,
                           what="the delivery to wait on its claim")
        assert len(waiting) == 1, waiting
        terminate(waiting)
    finally:
        blocker.rollback()
        blocker.close()
    assert relay.flush(20)
    notifications = Notification.objects.filter(event_id=assigned.pk)
    assert [(n.recipient_id, n.kind) for n in notifications] == [(clerk.pk, "task_assigned")]
    assert DeliveredEvent.objects.filter(event_id=assigned.pk).count() == 1


def _database_url() -> str:
    from tests.conftest import _database_url as url

    return url().replace("postgres://", "postgresql://")


def _lock_waiters(table: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                       " AND query ILIKE %s AND pid <> pg_backend_pid()", [f"%{table}%"])
        return [row[0] for row in cursor.fetchall()]


def test_r4g_a_command_without_its_database_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.reliability.conftest import free_port

    nowhere = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    env = {**os.environ, "DATABASE_URL": nowhere, "DATABASE_POOL_TIMEOUT": "1", "GNDP_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "validate_journey", "journey-small"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    # The pool logs its failed connection attempts; the command itself says one line.
    own = [line for line in done.stderr.splitlines()
           if not line.startswith(("error connecting in", "\tIs the server running"))]
    assert done.returncode == 1
    assert own == ["the database is unavailable; try again shortly (couldn't get a connection after 1.00 sec)"], (
        done.stderr)
