"""Stopping and restarting the SLA clocks of a process's open tasks.

`processes.services.suspend_process` and `resume_process` call these inside their
transaction, with the process row locked, so a sweep (which locks the process row first)
sees a task either running on its old clock or paused, never half-way.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.utils import timezone

from steps.changes import change_tasks
from tasks.models import OPEN_TASK_STATUSES, TaskInstance


def stop_clocks(process_id: int, now: datetime | None = None) -> int:
    """Pause the open tasks' clocks; returns how many were paused."""
    now = now or timezone.now()
    return change_tasks(TaskInstance.objects.filter(
        process_id=process_id, status__in=OPEN_TASK_STATUSES, sla_paused_at__isnull=True
    ), sla_paused_at=now)


def restart_clocks(process_id: int, now: datetime | None = None) -> int:
    """Move the due and escalation times of paused tasks forward by the pause; returns how
    many tasks were resumed. The pause is kept in `sla_paused_for`, so reports can subtract
    it from the time a task took."""
    now = now or timezone.now()
    pause = ExpressionWrapper(Value(now, output_field=DateTimeField()) - F("sla_paused_at"),
                              output_field=DurationField())
    return change_tasks(
        TaskInstance.objects.filter(process_id=process_id, status__in=OPEN_TASK_STATUSES, sla_paused_at__isnull=False),
        due_date=ExpressionWrapper(F("due_date") + pause, output_field=DateTimeField()),
        escalate_at=ExpressionWrapper(F("escalate_at") + pause, output_field=DateTimeField()),
        sla_paused_for=ExpressionWrapper(F("sla_paused_for") + pause, output_field=DurationField()),
        sla_paused_at=None,
    )
