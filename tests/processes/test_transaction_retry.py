"""A transaction PostgreSQL aborts to break a deadlock (40P01) or a serialization conflict
(40001) runs again, whole, a bounded number of times, and only while nothing left the
database (gndp.db_faults.retry_transaction). Every abort here is provoked for real, on real
connections: two transactions locking rows in opposite orders, and a REPEATABLE READ
transaction whose row another one changed.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import yaml
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gndp import db_faults
from gndp.api.exceptions import handle
from notifications.models import RelayCursor
from processes import events as process_events
from processes.models import IdempotencyRecord, ProcessEvent, ProcessInstance
from processes.services import start_process
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.conftest import _database_url
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

FLOW = """
format: gndp-journey/1
journey: {id: retry-flow, name: Retry}
roles:
  - {id: role-retry, name: Clerk}
phases:
  - id: phase-retry
    name: Retry
    modules:
      - {id: module-retry, name: Retry, atoms: [retry-fill, retry-check]}
atoms:
  - id: retry-fill
    name: Fill
    performed_by: role-retry
    form:
      - {name: amount, type: number, required: true}
  - {id: retry-check, name: Check, performed_by: role-retry}
edges:
  - {type: ENABLES, from: retry-fill, to: retry-check}
"""


def outside() -> psycopg.Connection:
    """A connection of another program: its own deadlock_timeout is long, so that the app's
    transaction is the one PostgreSQL picks to abort."""
    conn = psycopg.connect(_database_url().replace("postgres://", "postgresql://"))
    conn.execute("SET deadlock_timeout = '10s'")
    return conn


def lock_waiters(fragment: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND query ILIKE %s AND pid <> pg_backend_pid()",
                       [f"%{fragment}%"])
        return [row[0] for row in cursor.fetchall()]


def wait_for(predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


@pytest.fixture
def flow(transactional_db):
    publish_journey(yaml.safe_load(FLOW))
    clerk = UserFactory(username="retry-clerk", roles=["role-retry"])
    process = start_process(workflow_id="retry-flow", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="retry-fill")
    return clerk, process, task


@pytest.fixture
def published():
    """Event ids handed to subscribers after each commit (on-commit hooks)."""
    seen: list[int] = []

    def note(events) -> None:
        seen.extend(event.pk for event in events)

    process_events.subscribe(note)
    yield seen
    process_events._subscribers.remove(note)


def deadlock_against(run, process, clerk):
    """Run `run()` in a thread while another transaction takes the locks it needs in the
    opposite order: that one holds the profile row the completion stamps last, and asks for
    the process row the completion locked first. Returns what `run` returned or raised."""
    outcome: dict = {}
    blocker = outside()
    try:
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM tasks_profile WHERE user_id = %s FOR UPDATE", [clerk.pk])

        def target():
            try:
                outcome["value"] = run()
            except Exception as exc:  # noqa: BLE001 - asserted on below
                outcome["error"] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        wait_for(lambda: lock_waiters("tasks_profile"))  # the completion waits on the profile
        # The cycle: PostgreSQL aborts the completion (its deadlock_timeout runs out first).
        blocker.execute("SELECT 1 FROM processes_processinstance WHERE id = %s FOR UPDATE", [process.pk])
        blocker.execute("COMMIT")
        thread.join(30)
    finally:
        blocker.close()
    return outcome


def test_a_completion_aborted_by_a_deadlock_runs_again_and_completes_once(flow, published, caplog):
    clerk, process, task = flow
    before = ProcessInstance.objects.get(pk=process.pk)
    events_before = set(ProcessEvent.objects.filter(process=process).values_list("pk", flat=True))

    with caplog.at_level("INFO", logger="gndp.db_faults"):
        outcome = deadlock_against(
            lambda: task_services.complete_task(task.pk, user=clerk, result={"amount": 5}), process, clerk)

    assert "error" not in outcome, outcome
    assert any("40P01" in record.getMessage() for record in caplog.records)  # it was aborted, then ran again
    task.refresh_from_db()
    assert (task.status, task.result) == ("completed", {"amount": 5})
    new_events = ProcessEvent.objects.filter(process=process).exclude(pk__in=events_before)
    assert sorted(new_events.values_list("type", flat=True)) == sorted(
        ["task.started", "task.completed", "task.created", "task.assigned"])
    assert TaskInstance.objects.filter(process=process, atom_id="retry-check").count() == 1
    after = ProcessInstance.objects.get(pk=process.pk)
    assert after.lock_version == before.lock_version + 1 and after.context == {"amount": 5}
    # Only the attempt that committed ran its after-commit hooks: every event published is
    # in the log, once.
    assert sorted(published) == sorted(new_events.values_list("pk", flat=True))


def test_through_the_api_the_idempotency_record_runs_again_with_the_write(flow):
    clerk, process, task = flow
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=clerk)[0].key}")

    outcome = deadlock_against(lambda: api.post(f"/api/tasks/{task.pk}/complete", {"result": {"amount": 9}},
                                                format="json", HTTP_IDEMPOTENCY_KEY="deadlock-key"), process, clerk)

    response = outcome["value"]
    assert response.status_code == 200, response.content
    replay = api.post(f"/api/tasks/{task.pk}/complete", {"result": {"amount": 9}}, format="json",
                      HTTP_IDEMPOTENCY_KEY="deadlock-key")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == response.json()
    assert IdempotencyRecord.objects.filter(user=clerk, key="deadlock-key").count() == 1
    assert ProcessEvent.objects.filter(task_id=task.pk, type="task.completed").count() == 1


# --- the helper, on a real connection ------------------------------------------------------------

@pytest.fixture
def row(transactional_db):
    return RelayCursor.objects.create(name="retry-row", last_event_id=0)


def conflicting_update(row, attempts: list[int], hooks: list[int], *, conflicts: int, effect: bool = False):
    """A REPEATABLE READ transaction that reads the row and then, in its first `conflicts`
    attempts, finds it changed by another transaction since its snapshot: 40001."""

    def body() -> int:
        attempts.append(len(attempts) + 1)
        attempt = len(attempts)
        with transaction.atomic():
            value = RelayCursor.objects.get(pk=row.pk).last_event_id  # the snapshot is taken
            if effect:
                db_faults.note_outside_effect()
            if attempt <= conflicts:
                with outside() as other:
                    other.execute("UPDATE notifications_relaycursor SET last_event_id = last_event_id + 100"
                                  " WHERE name = %s", [row.pk])
            RelayCursor.objects.filter(pk=row.pk).update(last_event_id=value + 1)
            transaction.on_commit(lambda: hooks.append(attempt))
        return value + 1

    return body


def repeatable_read(func):
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        return func()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")


def test_a_serialization_failure_runs_the_transaction_again(row):
    attempts, hooks = [], []
    result = repeatable_read(db_faults.retry_transaction(conflicting_update(row, attempts, hooks, conflicts=1)))
    assert attempts == [1, 2] and hooks == [2]  # the failed attempt's on-commit hook never ran
    assert result == 101 and RelayCursor.objects.get(pk=row.pk).last_event_id == 101


@override_settings(GNDP_TRANSACTION_RETRIES=2)
def test_retries_are_bounded_and_the_api_answers_503(row):
    attempts, hooks = [], []
    with pytest.raises(Exception) as raised:
        repeatable_read(db_faults.retry_transaction(conflicting_update(row, attempts, hooks, conflicts=10)))
    assert db_faults.sqlstate(raised.value) == "40001"
    assert attempts == [1, 2, 3] and hooks == []
    assert RelayCursor.objects.get(pk=row.pk).last_event_id == 300  # only the other program's
    response = handle(raised.value, {})
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response.data["error"]["code"] == "contention"


def test_nothing_runs_again_once_something_left_the_database(row):
    attempts, hooks = [], []
    with pytest.raises(Exception) as raised:
        repeatable_read(db_faults.retry_transaction(
            conflicting_update(row, attempts, hooks, conflicts=1, effect=True)))
    assert db_faults.sqlstate(raised.value) == "40001" and attempts == [1] and hooks == []


def test_inside_another_transaction_the_outermost_one_runs_again(row):
    attempts, hooks, outer = [], [], []
    inner = db_faults.retry_transaction(conflicting_update(row, attempts, hooks, conflicts=1))

    @db_faults.retry_transaction
    def whole() -> int:
        outer.append(len(outer) + 1)
        with transaction.atomic():
            return inner()

    assert repeatable_read(whole) == 101
    assert outer == [1, 2] and attempts == [1, 2] and hooks == [2]
