"""Reads of the discussion, scoped to what the caller may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from processes.errors import NotFound
from processes.models import ProcessInstance
from tasks.access import visible_processes, visible_tasks
from tasks.models import TaskInstance

from .models import Attachment, Comment


def process_comments(process: ProcessInstance) -> QuerySet[Comment]:
    """The process's discussion: its own comments and its tasks' (who sees a process sees
    its history, where every comment is recorded)."""
    return Comment.objects.filter(process=process).select_related("task").prefetch_related("mentions")


def task_comments(task: TaskInstance) -> QuerySet[Comment]:
    return Comment.objects.filter(task=task).select_related("task").prefetch_related("mentions")


def process_attachments(user, process: ProcessInstance) -> QuerySet[Attachment]:
    """The process's own files and those of its tasks the caller can see."""
    return Attachment.objects.filter(
        Q(task__isnull=True) | Q(task__in=visible_tasks(user).filter(process=process).values("pk")),
        process=process,
    ).select_related("task")


def task_attachments(task: TaskInstance) -> QuerySet[Attachment]:
    return Attachment.objects.filter(task=task).select_related("task")


MAX_ID = 2**63 - 1


def _id(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if not 0 < number <= MAX_ID:
        raise NotFound(f"{what} {value} not found")
    return number


def attachment_for(user, attachment_id: Any) -> Attachment:
    """An attachment the caller may download: a task's file to those who can see the task,
    a process's own file to those who can see the process. NotFound for everything else."""
    try:
        attachment = Attachment.objects.get(pk=_id(attachment_id, "attachment"))
    except Attachment.DoesNotExist:
        raise NotFound(f"attachment {attachment_id} not found") from None
    if attachment.task_id is not None:
        visible = visible_tasks(user).filter(pk=attachment.task_id).exists()
    else:
        visible = visible_processes(user).filter(pk=attachment.process_id).exists()
    if not visible:
        raise NotFound(f"attachment {attachment_id} not found")
    return attachment
