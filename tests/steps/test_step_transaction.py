"""The step transaction's own promises: nothing runs after its commit inside its block, a
step inside another transaction leaves the commit to it, and what a step changes is all
there, or none of it."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from processes import services
from processes.errors import Conflict
from processes.models import EventType, ProcessEvent, ProcessInstance
from steps.transaction import StatementAfterCommit, step
from tasks.models import TaskInstance

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_statement_after_the_steps_commit_is_refused_at_once(small_version, clerk):
    # given a step that has committed its event
    process = services.start_process(workflow_id="journey-small", user=clerk)
    with step(process=process.pk, actor=clerk) as s:
        s.event(EventType.PROCESS_RESUMED, note="committed")
        s.commit()

        # when a newcomer adds a statement after the commit, in the block
        with pytest.raises(StatementAfterCommit, match="would run outside its transaction"):
            ProcessInstance.objects.filter(pk=process.pk).update(failure="written after the commit")

    # then the step's writes are there, the late statement's are not, and the block is over
    process.refresh_from_db()
    assert process.failure == ""
    assert ProcessEvent.objects.filter(process=process, type=EventType.PROCESS_RESUMED).count() == 1
    assert ProcessInstance.objects.filter(pk=process.pk).count() == 1  # after the block: allowed


def test_a_step_inside_another_transaction_leaves_the_commit_to_it(small_version, clerk):
    # given a step inside an outer transaction (as an Idempotency-Key's record shares it)
    process = services.start_process(workflow_id="journey-small", user=clerk)
    with transaction.atomic():
        with step(process=process.pk, actor=clerk) as s:
            s.event(EventType.PROCESS_RESUMED, note="inner")

        # when the outer block goes on after the step
        ProcessInstance.objects.filter(pk=process.pk).update(failure="the outer block's own")

    # then both are committed together
    process.refresh_from_db()
    assert process.failure == "the outer block's own"
    assert ProcessEvent.objects.filter(process=process, type=EventType.PROCESS_RESUMED).count() == 1


def test_a_refused_step_leaves_nothing_behind(small_version, clerk):
    # given an open task
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    events = ProcessEvent.objects.filter(process=process).count()

    # when a step changes it and records an event, then refuses
    with pytest.raises(Conflict):
        with step(task=task.pk, actor=clerk) as s:
            s.change_task(s.task, priority="high")
            s.event(EventType.TASK_ESCALATED, task=s.task)
            raise Conflict("refused after the changes", code="refused")

    # then none of it reached the database
    task.refresh_from_db()
    assert (task.priority, task.version) == ("medium", 0)
    assert ProcessEvent.objects.filter(process=process).count() == events


def test_a_change_made_against_a_stale_read_is_refused(small_version, clerk):
    # given a task read by a step, and changed by another writer meanwhile
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    stale = TaskInstance.objects.get(pk=task.pk)
    services.suspend_process(process.pk, user=clerk)  # moves the task's version on (its clock)

    # when the stale read is changed through the writer
    with pytest.raises(Conflict) as refusal:
        with step(process=process.pk, actor=clerk) as s:
            s.change_task(stale, priority="high")

    # then 409 stale_task, and the task keeps the other writer's change alone
    assert refusal.value.code == "stale_task"
    task.refresh_from_db()
    assert (task.priority, task.version) == ("medium", 1)
    assert connection.vendor in {"postgresql", "sqlite"}


def test_a_task_status_moves_only_as_declared(small_version, clerk):
    # given a completed task
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    with step(task=task.pk, actor=clerk) as s:
        s.change_task(s.task, move="cancel")

    # when a step tries a move its status does not allow
    with pytest.raises(Conflict) as refusal:
        with step(task=task.pk, actor=clerk) as s:
            s.change_task(s.task, move="claim")

    # then 409 invalid_state, naming the status
    assert (refusal.value.code, refusal.value.details) == ("invalid_state", {"status": "cancelled"})
