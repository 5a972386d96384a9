"""The services on the database: one transaction per operation, events in it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from processes import services
from processes.errors import Conflict, InvalidInput, NotFound
from processes.models import ProcessEvent, ProcessInstance
from tasks import services as task_services
from tasks.models import TaskInstance

pytestmark = pytest.mark.django_db(transaction=True)


def open_task(process, atom_id):
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def event_types(process):
    return list(ProcessEvent.objects.filter(process=process).order_by("id").values_list("type", flat=True))


def test_start_routes_the_first_task_to_the_role(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)

    task = open_task(process, "atom-apply")
    assert process.status == "running"
    assert task.assigned_to == clerk
    assert task.due_date is not None and task.escalate_at is not None
    assert event_types(process) == ["process.started", "task.created", "task.assigned"]


def test_good_score_runs_to_completed_through_both_system_steps(small_version, clerk, checker):
    process = services.start_process(workflow_id="journey-small", user=clerk, context={"channel": "web"})

    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 1000, "score": 700})
    # atom-score and atom-open ran eagerly after commit; the split created two tasks.
    branch_b = open_task(process, "atom-b")
    assert branch_b.assigned_to is None  # role-checker uses the queue strategy
    task_services.start_task(branch_b.pk, user=checker)
    task_services.complete_task(branch_b.pk, user=checker)
    task_services.complete_task(open_task(process, "atom-a").pk, user=clerk)
    task_services.complete_task(open_task(process, "atom-join").pk, user=clerk)

    process.refresh_from_db()
    states = process.atom_states
    assert process.status == "completed"
    assert states["atom-manual"] == "skipped"
    assert process.context == {"channel": "web", "amount": 1000, "score": 700, "scored": True, "status": "closed"}
    assert event_types(process)[-1] == "process.completed"


def test_low_score_takes_the_manual_review_branch(small_version, clerk, checker):
    process = services.start_process(workflow_id="journey-small", user=clerk)

    task_services.complete_task(open_task(process, "atom-apply").pk, user=clerk, result={"amount": 10, "score": 500})

    manual = open_task(process, "atom-manual")
    assert manual.priority == "high"
    process.refresh_from_db()
    assert process.atom_states["atom-open"] == "waiting"


def test_invalid_result_is_refused_and_changes_nothing(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = open_task(process, "atom-apply")
    before = event_types(process)

    with pytest.raises(InvalidInput) as exc:
        task_services.complete_task(task.pk, user=clerk, result={"amount": "lots"})

    assert exc.value.details == {"amount": "must be a number", "score": "is required"}
    task.refresh_from_db()
    assert task.status == "pending"
    assert event_types(process) == before


def test_completing_twice_is_a_conflict(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = open_task(process, "atom-apply")
    task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 700})

    with pytest.raises(Conflict):
        task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 700})


def test_someone_else_cannot_see_the_task(small_version, clerk, checker):
    process = services.start_process(workflow_id="journey-small", user=clerk)

    with pytest.raises(NotFound):
        task_services.complete_task(open_task(process, "atom-apply").pk, user=checker, result={})


def test_suspended_process_refuses_completion_and_resume_continues(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = open_task(process, "atom-apply")
    services.suspend_process(process.pk, user=clerk)

    with pytest.raises(Conflict):
        task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 700})
    services.resume_process(process.pk, user=clerk)
    task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 700})

    assert open_task(process, "atom-a")


def test_abort_cancels_open_tasks(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)

    services.abort_process(process.pk, user=clerk, reason="customer withdrew")

    process.refresh_from_db()
    assert process.status == "aborted"
    assert list(TaskInstance.objects.filter(process=process).values_list("status", flat=True)) == ["cancelled"]
    with pytest.raises(Conflict):
        services.abort_process(process.pk, user=clerk)


def test_start_of_a_phase_runs_only_its_atoms(small_version, checker):
    process = services.start_process(workflow_id="phase-review", context={"score": 1})

    assert set(process.atom_states) == {
        "atom-manual", "atom-open", "atom-a", "atom-b", "atom-join", "atom-done"}
    assert open_task(process, "atom-manual")


def test_unknown_workflow_and_bad_context_are_refused(small_version):
    with pytest.raises(NotFound):
        services.start_process(workflow_id="journey-nope")
    with pytest.raises(InvalidInput):
        services.start_process(workflow_id="journey-small", context=["not", "an", "object"])


def test_business_key_is_unique_while_open(small_version, clerk):
    services.start_process(workflow_id="journey-small", user=clerk, business_key="loan-42")

    with pytest.raises(Conflict):
        services.start_process(workflow_id="journey-small", user=clerk, business_key="loan-42")


def test_role_without_members_leaves_the_task_unroutable(small_version):
    process = services.start_process(workflow_id="journey-small")

    task = open_task(process, "atom-apply")
    assert task.assigned_to is None
    assert "task.unroutable" in event_types(process)


def test_failing_handler_retries_then_fails_the_process_and_admin_retry_resumes(db, clerk, admin_user):
    from processes.versions import publish_journey

    publish_journey({
        "format": "gndp-journey/1",
        "journey": {"id": "journey-fail", "name": "Fails", "start": {"by": ["role-clerk"]}},  # no atom's role
        "roles": [{"id": "role-clerk", "name": "Clerk"}],
        "atoms": [{"id": "atom-boom", "name": "Boom", "kind": "system", "handler": "fail", "retries": 2,
                   "params": {"message": "bank is down"}}],
        "edges": [],
    })
    process = services.start_process(workflow_id="journey-fail", user=clerk)

    process.refresh_from_db()
    task = TaskInstance.objects.get(process=process)
    assert process.status == "failed"
    assert task.status == "failed" and task.attempts == 3
    assert "bank is down" in task.last_error
    assert event_types(process)[-2:] == ["task.failed", "process.failed"]

    task_services.retry_task(task.pk, user=admin_user)  # fails again, eagerly: retries spent anew
    assert "task.retried" in event_types(process)


@pytest.mark.postgres
def test_event_log_refuses_update_delete_and_truncate(small_version, clerk):
    process = services.start_process(workflow_id="journey-small", user=clerk)
    event = ProcessEvent.objects.filter(process=process).first()

    for statement in (
        "UPDATE processes_processevent SET type = 'x' WHERE id = %s",
        "DELETE FROM processes_processevent WHERE id = %s",
        "TRUNCATE processes_processevent CASCADE",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [event.pk] if "%s" in statement else None)
    assert ProcessEvent.objects.filter(pk=event.pk, type=event.type).exists()
