"""S8 (tamper evidence): the event log's hash chain and `manage.py verify_audit`.

The tampering is done the way an intruder with the database superuser would: with the
triggers switched off for the transaction, straight in SQL.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from processes import hashchain
from steps.events import EventLog
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.races import race

# Committed transactions: the system steps run after each commit, as in production.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def verify_audit(*args: str) -> tuple[int, str]:
    """Run the command; (exit status, its one line of output)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, err.getvalue().strip()
    return 0, out.getvalue().strip()


def open_task(process, atom_id):
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def run_to_the_end(clerk, checker):
    process = start_process(workflow_id="journey-small", user=clerk)
    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 1, "score": 700})
    branch_b = open_task(process, "atom-b")
    task_services.start_task(branch_b.pk, user=checker)
    task_services.complete_task(branch_b.pk, user=checker)
    task_services.complete_task(open_task(process, "atom-a").pk, user=clerk)
    task_services.complete_task(open_task(process, "atom-join").pk, user=clerk)
    process.refresh_from_db()
    assert process.status == "completed"
    return process


def tamper(sql: str, params: list) -> None:
    """As the superuser, with every trigger (the append-only one, the foreign keys of the
    rows that point at events) off for this transaction only."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


@pytest.fixture
def finished(small_version, clerk, checker):
    return run_to_the_end(clerk, checker), run_to_the_end(clerk, checker)


def test_a_normal_run_is_chained_and_verifies(finished):
    first, second = finished

    events = list(ProcessEvent.objects.filter(process=first).order_by("id"))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert len({event.row_hash for event in events}) == len(events)
    assert all(len(event.row_hash) == 64 for event in events)
    total = ProcessEvent.objects.count()
    assert verify_audit() == (0, f"OK: {total} events of 2 processes, hash chain intact")
    assert verify_audit("--process", str(first.pk)) == (0, f"OK: {len(events)} events of 1 processes, hash chain intact")


def test_a_changed_row_is_found(finished):
    first, second = finished
    completed = ProcessEvent.objects.get(process=second, type="task.completed", atom_id="atom-apply")

    tamper("UPDATE processes_processevent SET username = 'mallory' WHERE id = %s", [completed.pk])

    status, line = verify_audit()
    assert status == 1
    assert line == (f"BROKEN: process {second.pk}: event {completed.pk} (seq {completed.seq}, task.completed) "
                    "does not match its hash: changed after it was written")
    assert verify_audit("--process", str(first.pk))[0] == 0


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link(finished):
    """An intruder who knows the algorithm rewrites the row and its hash: the chain still
    catches it at the next event, whose hash covers the old one."""
    first, _ = finished
    events = list(ProcessEvent.objects.filter(process=first).order_by("id"))
    victim, after = events[3], events[4]
    forged_payload = {**victim.payload, "role": "role-forged"}
    forged = hashchain.link(events[2].row_hash, hashchain.canonical(
        process_id=victim.process_id, seq=victim.seq, type=victim.type, timestamp=victim.timestamp,
        user_id=victim.user_id, username=victim.username, task_id=victim.task_id, atom_id=victim.atom_id,
        payload=forged_payload))

    tamper("UPDATE processes_processevent SET payload = %s::jsonb, row_hash = %s WHERE id = %s",
           [json.dumps(forged_payload), forged, victim.pk])

    status, line = verify_audit("--process", str(first.pk))
    assert status == 1
    assert line.startswith(f"BROKEN: process {first.pk}: event {after.pk} (seq {after.seq}, ")
    assert line.endswith("does not match its hash: changed after it was written")


@pytest.mark.parametrize("position", [0, 5])
def test_a_deleted_row_is_found(finished, position):
    first, _ = finished
    events = list(ProcessEvent.objects.filter(process=first).order_by("id"))

    tamper("DELETE FROM processes_processevent WHERE id = %s", [events[position].pk])

    after = events[position + 1]
    assert verify_audit() == (1, f"BROKEN: process {first.pk}: event {after.pk} has seq {after.seq} where "
                                 f"{position + 1} was expected: 1 event(s) before it were deleted")


def test_a_row_taken_out_of_the_chain_is_found(finished):
    first, _ = finished
    victim = ProcessEvent.objects.filter(process=first).order_by("id")[2]

    tamper("UPDATE processes_processevent SET seq = NULL, row_hash = '' WHERE id = %s", [victim.pk])

    assert verify_audit() == (1, f"BROKEN: process {first.pk}: event {victim.pk} ({victim.type}) is not in the "
                                 "hash chain: its seq and hash were removed")


def test_the_process_row_keeps_its_chain_head_whoever_appends(small_version, clerk):
    """The services take the head from the locked row; other writers (the manager, as the
    SLA sweep and comments use it) lock the row and move the head too; a full save of a row
    read earlier does not move it back."""
    process = start_process(workflow_id="journey-small", user=clerk)
    stale = ProcessInstance.objects.get(pk=process.pk)

    def newest():
        event = ProcessEvent.objects.filter(process=process).latest("seq")
        return event.seq, event.row_hash

    ProcessEvent.objects.create(process=process, type="sla.warning", payload={"n": 1})
    ProcessEvent.objects.bulk_create([ProcessEvent(process=process, type="sla.warning", payload={"n": n})
                                      for n in (2, 3)])
    stale.failure = "a full save of a row read before those appends"
    stale.save()
    process.refresh_from_db()
    assert (process.event_seq, process.event_head) == newest()

    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 1, "score": 700})
    process.refresh_from_db()
    assert (process.event_seq, process.event_head) == newest()
    assert verify_audit("--process", str(process.pk))[0] == 0


def test_events_written_before_the_chain_was_on_are_counted_not_checked(small_version, clerk):
    with override_settings(GNDP_AUDIT_HASH_CHAIN=False):
        process = start_process(workflow_id="journey-small", user=clerk)
    legacy = ProcessEvent.objects.filter(process=process).count()
    assert set(ProcessEvent.objects.filter(process=process).values_list("seq", "row_hash")) == {(None, "")}

    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 1, "score": 1})

    chained = list(ProcessEvent.objects.filter(process=process, seq__isnull=False).values_list("seq", flat=True))
    assert chained == list(range(1, len(chained) + 1)) and chained
    assert verify_audit() == (0, f"OK: {legacy + len(chained)} events of 1 processes, hash chain intact; "
                                 f"{legacy} earlier events predate the chain")


def test_concurrent_appends_to_one_process_keep_one_chain(small_version, clerk, checker):
    """Writers that do not lock the process row themselves (ProcessEvent's manager does),
    and real completions of parallel branches racing each other."""
    process = start_process(workflow_id="journey-small", user=clerk)

    def append(i: int) -> int:
        with transaction.atomic():
            log = EventLog(clerk)
            for n in range(3):
                log.add(process, "sla.warning", writer=i, n=n)
            return len(log.flush())

    outcomes = race(8, append)

    assert outcomes == [3] * 8, outcomes
    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 1, "score": 700})
    branch_a, branch_b = open_task(process, "atom-a"), open_task(process, "atom-b")
    task_services.start_task(branch_b.pk, user=checker)
    outcomes = race(2, lambda i: task_services.complete_task((branch_a, branch_b)[i].pk, user=(clerk, checker)[i]))
    assert all(isinstance(o, TaskInstance) for o in outcomes), outcomes
    seqs = list(ProcessEvent.objects.filter(process=process).order_by("id").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify_audit("--process", str(process.pk)) == (0, f"OK: {len(seqs)} events of 1 processes, hash chain intact")


def test_heads_kept_outside_catch_what_a_whole_chain_cannot_show(finished, tmp_path):
    """Deleting the newest event, or rewriting one with a freshly computed hash, leaves a
    chain that is whole; the heads recorded earlier (outside the database) still catch both."""
    first, second = finished
    recorded = tmp_path / "heads.txt"
    assert verify_audit("--heads", str(recorded))[0] == 0
    lines = recorded.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{first.pk} ")

    last = ProcessEvent.objects.filter(process=first).order_by("-id").first()
    tamper("DELETE FROM processes_processevent WHERE id = %s", [last.pk])
    newest = ProcessEvent.objects.filter(process=second).order_by("-id")
    victim, before = newest[0], newest[1]
    forged_payload = {"forged": True}
    forged = hashchain.link(before.row_hash, hashchain.canonical(
        process_id=victim.process_id, seq=victim.seq, type=victim.type, timestamp=victim.timestamp,
        user_id=victim.user_id, username=victim.username, task_id=victim.task_id, atom_id=victim.atom_id,
        payload=forged_payload))
    tamper("UPDATE processes_processevent SET payload = %s::jsonb, row_hash = %s WHERE id = %s",
           [json.dumps(forged_payload), forged, victim.pk])

    assert verify_audit()[0] == 0  # the chains alone look whole
    assert verify_audit("--against", str(recorded)) == (
        1, f"BROKEN: process {first.pk}: event seq {last.seq}, recorded earlier, is gone: events were deleted from its end")
    assert verify_audit("--process", str(second.pk), "--against", str(recorded)) == (
        1, f"BROKEN: process {second.pk}: event seq {victim.seq} has another hash than recorded earlier: "
           "its history was rewritten")


def test_recorded_heads_stay_valid_as_histories_grow(finished, clerk, tmp_path):
    first, _ = finished
    recorded = tmp_path / "heads.txt"
    verify_audit("--heads", str(recorded))

    start_process(workflow_id="journey-small", user=clerk)  # more events, another process

    status, line = verify_audit("--against", str(recorded))
    assert status == 0 and line.endswith("hash chain intact; all 2 recorded heads present")
