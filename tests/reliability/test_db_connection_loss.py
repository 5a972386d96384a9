"""R4 db_connection_loss: PostgreSQL drops the app's connection (pg_terminate_backend) in the
middle of a completion; the request fails with a 5xx and leaves nothing behind, and the
same server answers the next request without a restart.

"In the middle" is made exact from outside the app: the test holds an uncommitted
idempotency record with the key the request will carry, so the request runs the whole
completion (task update, events, new tasks, process row) and then waits on the unique
index for its own idempotency record, the last statement before its commit. The test sees
that wait in pg_stat_activity and terminates exactly that backend.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from processes.models import IdempotencyRecord, ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability import journeys
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def server_backends(app_name: str, *, waiting: bool = False) -> list[tuple[int, str]]:
    from django.db import connection

    sql = ("SELECT pid, query FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"
           + (" AND wait_event_type = 'Lock'" if waiting else ""))
    with connection.cursor() as cursor:
        cursor.execute(sql, [app_name])
        return cursor.fetchall()


def terminate(pids) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for pid in pids:  # each gone when this returns (it waits up to 10 s), not merely signalled
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])


def test_r4_connection_killed_during_a_completion_leaves_no_partial_state_and_the_server_recovers(
        cluster, publish, rel_clerk):
    publish(journeys.FLOW)
    server = cluster.server("r4", redis=False, eager=True).wait_ready()
    process_id = rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-flow"}).json()["id"]
    fill = TaskInstance.objects.get(process_id=process_id, atom_id="flow-fill")
    before = ProcessInstance.objects.get(pk=process_id)
    events_before = ProcessEvent.objects.filter(process_id=process_id).count()
    body = {"result": {"amount": 42}}

    # 1. Connections dropped while idle between requests: the next request must not use one.
    assert rel_clerk.get(server.url, f"/api/tasks/{fill.pk}").status_code == 200
    terminate(pid for pid, _ in server_backends("rel-r4"))
    assert rel_clerk.get(server.url, f"/api/tasks/{fill.pk}").status_code == 200

    # 2. The connection dropped in the middle of a completion.
    blocker = psycopg.connect(cluster.database_url.replace("postgres://", "postgresql://"))
    try:
        blocker.execute(
            "INSERT INTO processes_idempotencyrecord (user_id, key, request_hash, status_code, response, created_at)"
            " VALUES (%s, 'r4-key', 'blocker', 200, 'null', now())", [rel_clerk.user.pk])
        outcome = {}
        client = threading.Thread(target=lambda: outcome.setdefault("response", rel_clerk.post(
            server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4-key")))
        client.start()
        waiting = wait_for(lambda: server_backends("rel-r4", waiting=True), 20,
                           what="the completion to wait on its idempotency record")
        assert len(waiting) == 1 and "processes_idempotencyrecord" in waiting[0][1], waiting
        terminate([waiting[0][0]])
        client.join(20)
    finally:
        blocker.rollback()
        blocker.close()

    failed = outcome["response"]
    assert failed.status_code >= 500, failed.text
    assert "Traceback" not in failed.text and "INSERT" not in failed.text  # generic error body
    # Nothing of the completion survived: not the task's change, not the events, not the
    # next steps, not the process row, not an idempotency record.
    fill.refresh_from_db()
    after = ProcessInstance.objects.get(pk=process_id)
    assert fill.status == "pending" and fill.version == 0 and fill.result is None
    assert ProcessEvent.objects.filter(process_id=process_id).count() == events_before
    assert TaskInstance.objects.filter(process_id=process_id).count() == 1
    assert (after.lock_version, after.atom_states, after.context) == (
        before.lock_version, before.atom_states, before.context)
    assert not IdempotencyRecord.objects.filter(user=rel_clerk.user, key="r4-key").exists()

    # 3. The same server, not restarted, completes the retry, once.
    retry = rel_clerk.post(server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4-key")
    again = rel_clerk.post(server.url, f"/api/tasks/{fill.pk}/complete", body, key="r4-key")

    assert server.alive and server.starts == 1
    assert retry.status_code == 200, retry.text
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert ProcessEvent.objects.filter(task_id=fill.pk, type="task.completed").count() == 1
    assert sorted(TaskInstance.objects.filter(process_id=process_id).values_list("atom_id", "status")) == [
        ("flow-check", "pending"), ("flow-fill", "completed"), ("flow-sys", "completed")]
    assert ProcessInstance.objects.get(pk=process_id).context == {"amount": 42, "checked": True}
