"""Every type of process event, declared in one registry: the value `ProcessEvent.type`
stores and the `type` of the API's Event (a contract: docs "api-contract.md").

Each app declares its types as a `TextChoices` class and registers it (`register`) in its
models module, which Django imports at start-up; ProcessEvent's choices and the API's
enumeration read the registry, so a new type needs no other change. A type reads
`<area>.<what>` and fits the column (`MAX_LENGTH`). The engine's own types and the
discussion's are here, because the engine and several apps record them.
"""

from __future__ import annotations

import re
from typing import Final

from django.db import models

MAX_LENGTH: Final = 24  # ProcessEvent.type's column
_FORM: Final = re.compile(r"[a-z_]+\.[a-z_]+")

_declared: dict[str, str] = {}  # type -> its label


def register(types: type[models.TextChoices]) -> type[models.TextChoices]:
    """Declare the event types of a `TextChoices` class (a class decorator)."""
    for value, label in types.choices:
        if not _FORM.fullmatch(value) or len(value) > MAX_LENGTH:
            raise ValueError(f"event type {value!r} is not <area>.<what> in at most {MAX_LENGTH} characters")
        if _declared.get(value, label) != label:
            raise ValueError(f"event type {value!r} is declared already")
    _declared.update(types.choices)
    return types


def unregister(types: type[models.TextChoices]) -> None:
    for value in types.values:
        _declared.pop(value, None)


def values() -> tuple[str, ...]:
    """Every declared type, in the order they were declared."""
    return tuple(_declared)


def choices() -> list[tuple[str, str]]:
    """(type, label) of every declared type: ProcessEvent.type's choices."""
    return list(_declared.items())


@register
class EventType(models.TextChoices):
    PROCESS_STARTED = "process.started"
    PROCESS_SUSPENDED = "process.suspended"
    PROCESS_RESUMED = "process.resumed"
    PROCESS_ABORTED = "process.aborted"
    PROCESS_FAILED = "process.failed"
    PROCESS_COMPLETED = "process.completed"
    TASK_CREATED = "task.created"
    TASK_ASSIGNED = "task.assigned"
    TASK_STARTED = "task.started"
    TASK_COMPLETED = "task.completed"
    TASK_REASSIGNED = "task.reassigned"
    TASK_ESCALATED = "task.escalated"
    TASK_FAILED = "task.failed"
    TASK_RETRIED = "task.retried"
    TASK_CANCELLED = "task.cancelled"
    TASK_WITHDRAWN = "task.withdrawn"
    TASK_UNROUTABLE = "task.unroutable"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    LOOP_REPEATED = "loop.repeated"


@register
class DiscussionEventType(models.TextChoices):
    """The discussion around a process (comments, attachments): in the history and pushed
    live like every event, but they never change a process's state."""

    COMMENT_ADDED = "comment.added"
    ATTACHMENT_ADDED = "attachment.added"
