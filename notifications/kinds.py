"""What a person can be notified of, through which channels, and what is on by default."""

from __future__ import annotations

from django.db import models

from processes.models import DiscussionEventType, EventType


class Kind(models.TextChoices):
    TASK_ASSIGNED = "task_assigned", "A task was assigned to you"
    TASK_REASSIGNED_AWAY = "task_reassigned_away", "A task of yours went to someone else"
    TASK_ESCALATED = "task_escalated", "A task was escalated to you"
    SLA_WARNING = "sla_warning", "A task of yours is past its due time"
    PROCESS_COMPLETED = "process_completed", "A process you started completed"
    PROCESS_FAILED = "process_failed", "A process you started failed"
    MENTIONED = "mentioned", "Someone mentioned you in a comment"
    TASK_CANCELLED = "task_cancelled", "A task of yours was cancelled or withdrawn"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Email"


CHANNELS = tuple(Channel.values)

# In the app: everything. By email: what needs a person to act soon.
DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {
    Kind.TASK_ASSIGNED: (Channel.IN_APP,),
    Kind.TASK_REASSIGNED_AWAY: (Channel.IN_APP,),
    Kind.TASK_ESCALATED: (Channel.IN_APP, Channel.EMAIL),
    Kind.SLA_WARNING: (Channel.IN_APP, Channel.EMAIL),
    Kind.PROCESS_COMPLETED: (Channel.IN_APP,),
    Kind.PROCESS_FAILED: (Channel.IN_APP, Channel.EMAIL),
    Kind.MENTIONED: (Channel.IN_APP, Channel.EMAIL),
    # Nothing to act on: the task left the inbox, as one reassigned away does.
    Kind.TASK_CANCELLED: (Channel.IN_APP,),
}

# The event types that can notify anyone; every other event is passed over at no cost.
NOTIFYING_EVENTS = frozenset({
    EventType.TASK_ASSIGNED, EventType.TASK_REASSIGNED, EventType.TASK_ESCALATED, EventType.SLA_WARNING,
    EventType.PROCESS_COMPLETED, EventType.PROCESS_FAILED, DiscussionEventType.COMMENT_ADDED,
    EventType.TASK_CANCELLED, EventType.TASK_WITHDRAWN,
})
