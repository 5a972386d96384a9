"""Re-timing an atom's open tasks (after an SLA override) takes rows in the order every
transaction takes them: the processes' rows first, then their tasks' (monitoring.sla._retime).

A step holds its process row and writes its task; meanwhile the re-timing of the same atom
runs. Taking task rows without their processes' rows, it held the first process's task
while it waited for the second's, behind the step: task rows taken before process rows, the
one order no other transaction keeps, which is how a cycle closes. Now it waits for the
second process's row holding no task row at all.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from monitoring import sla
from monitoring.models import AtomSLAOverride
from tests.conftest import _database_url

from .conftest import start_small

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def other() -> psycopg.Connection:
    return psycopg.connect(_database_url().replace("postgres://", "postgresql://"))


def test_retiming_waits_for_a_busy_process_holding_no_task_row(small_version, clerk):
    (first, first_task), (second, second_task) = start_small(clerk), start_small(clerk)
    assert first_task.pk < second_task.pk
    AtomSLAOverride.objects.create(journey_id="journey-small", atom_id="atom-apply", target=timedelta(hours=2))
    outcome: dict = {}
    step = other()  # a step of the second process: its row, then its task
    try:
        step.execute("SELECT 1 FROM processes_processinstance WHERE id = %s FOR UPDATE", [second.pk])
        step.execute("UPDATE tasks_taskinstance SET version = version + 1 WHERE id = %s", [second_task.pk])

        def retime() -> None:
            try:
                outcome["moved"] = sla.retime_atom("journey-small", "atom-apply")
            finally:
                connection.close()

        thread = threading.Thread(target=retime)
        thread.start()
        deadline = time.monotonic() + 20
        while not outcome and not _waiting():
            assert time.monotonic() < deadline, "the re-timing neither waited nor finished"
            time.sleep(0.02)
        # Waiting for the second process, the re-timing holds no task row: the first task's
        # row can be taken at once.
        with other() as third:
            third.execute("SELECT 1 FROM tasks_taskinstance WHERE id = %s FOR UPDATE NOWAIT", [first_task.pk])
            third.rollback()
        assert "moved" not in outcome  # it waits for the step, as a sweep would
        step.commit()
        thread.join(20)
    finally:
        step.close()
    assert outcome["moved"] == 2
    first_task.refresh_from_db()
    assert first_task.due_date == first_task.created_at + timedelta(hours=2)


def _waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0
