"""Every change of a task goes through the one writer (`steps.changes`), which moves its
version on: checked in the code (no other module writes a task) and in the database (the
suite's trigger refuses an UPDATE of a task that does not move its version on by one)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.db import DatabaseError, transaction

from processes import services
from processes.models import ProcessEvent
from tasks.models import TaskInstance, TaskUserObjectPermission
from tests.factories import UserFactory
from tests.source import parse

ROOT = Path(__file__).resolve().parent.parent.parent
WRITER = ROOT / "steps" / "changes.py"
WRITES = ("update", "bulk_update", "save")
TASKISH = re.compile(r"TaskInstance|\btasks?\b|\.tasks\b")


def task_writes_outside_the_writer() -> list[str]:
    """Calls that write a task (`.update`, `.bulk_update`, `.save` on something task-like, or
    a step's `writes.update(task, ...)`) in the project's own modules, but for the writer."""
    found = []
    for path in ROOT.rglob("*.py"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & {".venv", "tests", "var", "node_modules", "migrations"} or path == WRITER:
            continue
        source = path.read_text()
        for node in ast.walk(parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
                continue
            receiver = ast.get_source_segment(source, node.func.value) or ""
            first = ast.get_source_segment(source, node.args[0]) if node.args else ""
            if TASKISH.search(receiver) or (node.func.attr == "update" and TASKISH.search(first or "")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {receiver}.{node.func.attr}")
    return found


def test_no_module_but_the_writer_writes_a_task():
    # given the project's modules / when they are read / then only steps/changes.py writes tasks
    assert task_writes_outside_the_writer() == []


@pytest.mark.django_db(transaction=True)
def test_an_update_that_does_not_move_a_tasks_version_is_refused(small_version, clerk):
    # given a task
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")

    # when something writes it without moving its version on
    with pytest.raises(DatabaseError), transaction.atomic():
        TaskInstance.objects.filter(pk=task.pk).update(priority="high")

    # then the database refused it, and nothing changed
    task.refresh_from_db()
    assert (task.priority, task.version) == ("medium", 0)


@pytest.mark.django_db(transaction=True)
def test_abort_cancels_each_open_task_through_the_writer(small_version, clerk):
    # given a process whose first task is open, with its grant
    process = services.start_process(workflow_id="journey-small", user=clerk)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    admin = UserFactory(username="abort-admin", is_superuser=True, is_staff=True)
    assert TaskUserObjectPermission.objects.filter(content_object=task).exists()

    # when it is aborted
    services.abort_process(process.pk, user=admin, reason="withdrawn")

    # then the task moved once, by the declared move, with its event, and lost its grants
    task.refresh_from_db()
    assert (task.status, task.version) == ("cancelled", 1)
    cancelled = ProcessEvent.objects.get(process=process, type="task.cancelled")
    assert (cancelled.task_id, cancelled.payload["reason"], cancelled.payload["previous_status"]) == (
        task.pk, "withdrawn", "pending")
    assert not TaskUserObjectPermission.objects.filter(content_object=task).exists()


@pytest.mark.django_db(transaction=True)
def test_every_service_moves_each_task_it_changes_on_by_exactly_one(small_version, clerk):
    """The suite-wide trigger refuses any other UPDATE; here each service's count is read."""
    from tasks import services as task_services

    # given a process, its first task claimed, completed, the next one escalated and reassigned
    manager = UserFactory(username="one-writer-manager")
    clerk.workflow_profile.manager = manager
    clerk.workflow_profile.save()
    process = services.start_process(workflow_id="journey-small", user=clerk)
    first = TaskInstance.objects.get(process=process, atom_id="atom-apply")

    # when each service changes it
    task_services.start_task(first.pk, user=clerk)
    after_claim = TaskInstance.objects.get(pk=first.pk).version
    task_services.escalate_task(first.pk, user=clerk)
    after_escalation = TaskInstance.objects.get(pk=first.pk).version
    services.suspend_process(process.pk, user=clerk)
    services.resume_process(process.pk, user=clerk)
    after_clocks = TaskInstance.objects.get(pk=first.pk).version

    # then each change moved the version on by one (claim; escalation; pause and resume)
    assert (after_claim, after_escalation, after_clocks) == (1, 2, 4)
