"""Drive a process to its end the way people would: fill each open task's form."""

from __future__ import annotations

import time
from typing import Any, Callable

from processes import versions
from processes.models import ProcessInstance
from tasks.models import TaskInstance

SAMPLE = {"string": "sample", "number": 250000, "integer": 700, "boolean": True, "date": "2026-11-25"}


def fill_form(process: ProcessInstance, atom_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid result for the atom's form, with `overrides` applied where the form has the field."""
    atom = versions.get_blueprint(process.version_id, process.workflow_id).atoms[atom_id]
    overrides = overrides or {}
    result = {}
    for field in atom.form:
        if field.name in overrides:
            result[field.name] = overrides[field.name]
        elif field.type == "choice":
            result[field.name] = field.choices[0]
        else:
            result[field.name] = SAMPLE[field.type]
    return result


def open_human_tasks(process: ProcessInstance) -> list[TaskInstance]:
    return list(TaskInstance.objects.filter(process=process, kind="human", status__in=["pending", "in_progress"])
                .select_related("assigned_to").order_by("pk"))


def drive(
    process: ProcessInstance,
    act: Callable[[TaskInstance, dict[str, Any]], None],
    overrides: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> ProcessInstance:
    """Complete open human tasks (via `act`) until the process is final; system steps are
    left to whoever runs them (eagerly, or a worker: then we wait for them)."""
    deadline = time.monotonic() + timeout
    while True:
        process.refresh_from_db()
        if process.status in ("completed", "failed", "aborted"):
            return process
        tasks = open_human_tasks(process)
        if not tasks:
            if time.monotonic() > deadline:
                raise AssertionError(f"process {process.pk} stuck: {process.status}")
            time.sleep(0.05)
            continue
        for task in tasks:
            act(task, fill_form(process, task.atom_id, overrides))
