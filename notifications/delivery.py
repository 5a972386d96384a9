"""From committed events to notifications: who is told, of what, once.

Rules, for every kind:

- the recipient must be able to see the process (`tasks.access.visible_processes`) when the
  notification is made; a mention on a task's comment also reaches someone who sees only
  the task. The one exception is the person a task was just taken from (reassigned or
  escalated away): the event itself shows they held the task until that moment, and the
  notification names the task and links to their inbox, nothing more;
- nobody is told of what they did to themselves (their own claim, handing their own task
  on, mentioning themselves); a process's outcome is told to its initiator in any case;
- the person's preferences pick the channels; a kind with no channel is not notified;
- delivery is once per event: a `DeliveredEvent` row is written in the same transaction as
  the notifications, so the after-commit hand-off and the relay never both deliver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from collaboration.models import Comment
from gndp.enqueue import job
from processes.models import DiscussionEventType, EventType, ProcessEvent, ProcessInstance
from steps.rows import maker
from steps.writes import Writes
from tasks.access import visible_processes, visible_tasks
from tasks.models import TaskInstance

from . import live
from .kinds import NOTIFYING_EVENTS, Channel, Kind
from .models import DeliveredEvent, EmailStatus, Notification, NotificationPreference

log = logging.getLogger(__name__)

PROCESS_FIELDS = ("id", "workflow_id", "started_by_id", "failure")
TASK_FIELDS = ("id", "name", "process_id", "assigned_to_id")
SEND_EMAILS = "notifications.tasks.send_notification_emails"  # the job (notifications.jobs)
CLAIM_CHUNK = 1000  # events per marker statement: two parameters each, well inside every backend's limit


@dataclass(frozen=True)
class Draft:
    recipient_id: int
    kind: str


def drafts_for(event: ProcessEvent, process: ProcessInstance) -> list[Draft]:
    """Who this event concerns and as what, before visibility and preferences."""
    payload = event.payload or {}
    drafts: list[Draft] = []

    def add(user_id, kind: str, *, own_action_too: bool = False) -> None:
        if not user_id:
            return
        user_id = int(user_id)
        if not own_action_too and user_id == event.user_id:
            return
        if all(draft.recipient_id != user_id for draft in drafts):
            drafts.append(Draft(user_id, kind))

    new, previous = payload.get("assigned_to_id"), payload.get("previous_assignee_id")
    if event.type == EventType.TASK_ASSIGNED:
        add(new, Kind.TASK_ASSIGNED)
    elif event.type == EventType.TASK_REASSIGNED:
        add(new, Kind.TASK_ASSIGNED)
        if previous != new:
            add(previous, Kind.TASK_REASSIGNED_AWAY)
    elif event.type == EventType.TASK_ESCALATED:
        add(new, Kind.TASK_ESCALATED)
        if previous != new:
            add(previous, Kind.TASK_REASSIGNED_AWAY)
    elif event.type == EventType.SLA_WARNING:
        add(new, Kind.SLA_WARNING, own_action_too=True)
    elif event.type in (EventType.TASK_CANCELLED, EventType.TASK_WITHDRAWN):
        add(new, Kind.TASK_CANCELLED)
    elif event.type == EventType.PROCESS_COMPLETED:
        add(process.started_by_id, Kind.PROCESS_COMPLETED, own_action_too=True)
    elif event.type == EventType.PROCESS_FAILED:
        add(process.started_by_id, Kind.PROCESS_FAILED, own_action_too=True)
    elif event.type == DiscussionEventType.COMMENT_ADDED:
        for user_id in payload.get("mentioned_ids") or ():
            add(user_id, Kind.MENTIONED)
    return drafts


def may_know(user, event: ProcessEvent, kind: str, process: ProcessInstance | None = None,
             task: TaskInstance | None = None) -> bool:
    if not user.is_active:
        return False
    if kind == Kind.TASK_REASSIGNED_AWAY and (event.payload or {}).get("previous_assignee_id") == user.pk:
        return True
    # The common cases without a query: whoever started the process, or holds one of its
    # tasks now, sees it (`visible_processes`' own first rules).
    if process is not None and process.started_by_id == user.pk:
        return True
    if task is not None and task.process_id == event.process_id and task.assigned_to_id == user.pk:
        return True
    if visible_processes(user).filter(pk=event.process_id).exists():
        return True
    return bool(kind == Kind.MENTIONED and event.task_id
                and visible_tasks(user).filter(pk=event.task_id).exists())


def _quoted(name: str) -> str:
    return f"“{name}”"


def compose(kind: str, event: ProcessEvent, process: ProcessInstance, task: TaskInstance | None,
            recipient=None) -> tuple[str, str, str]:
    """(title, body, url) as the bell, the page and the email show them."""
    payload = event.payload or {}
    actor = event.username or "the engine"
    what = f"process #{process.pk} ({process.workflow_id})"
    task_name = _quoted(task.name) if task is not None else "a task"

    # Each kind links to one of them, made when it is: reversing a URL costs more than the
    # rest of a message.
    def task_url() -> str:
        return reverse("task-page", args=[task.pk]) if task is not None else reverse("inbox")

    def process_url() -> str:
        return reverse("process-page", args=[process.pk])

    if kind == Kind.TASK_ASSIGNED:
        if event.type == EventType.TASK_REASSIGNED:
            return f"{actor} reassigned {task_name} to you", f"In {what}.", task_url()
        return f"{task_name} was assigned to you", f"In {what}.", task_url()
    if kind == Kind.TASK_REASSIGNED_AWAY:
        verb = "escalated" if event.type == EventType.TASK_ESCALATED else "reassigned"
        by = "" if payload.get("automatic") or not event.username else f" by {event.username}"
        return (f"{task_name} was {verb} to {payload.get('assigned_to') or 'someone else'}{by}",
                f"It is no longer in your inbox ({what}).", reverse("inbox"))
    if kind == Kind.TASK_ESCALATED:
        why = "its escalation time passed" if payload.get("automatic") else f"{actor} escalated it"
        return f"{task_name} was escalated to you", f"{why[0].upper()}{why[1:]} ({what}).", task_url()
    if kind == Kind.TASK_CANCELLED:
        why = f": {payload['reason']}" if payload.get("reason") else ""
        if event.type == EventType.TASK_WITHDRAWN:
            return (f"{task_name} was withdrawn", f"Another step of {what} was done first, so it is no longer needed.",
                    process_url())
        if payload.get("withdrawn"):
            return f"{task_name} was cancelled", f"{actor} withdrew it from {what}{why}."[:1000], process_url()
        return (f"{task_name} was cancelled", f"{actor} aborted {what}{why}."[:1000], process_url())
    if kind == Kind.SLA_WARNING:
        return f"{task_name} is past its due time", f"It was due at {payload.get('deadline', '?')} ({what}).", task_url()
    if kind == Kind.PROCESS_COMPLETED:
        return f"Process #{process.pk} completed", f"{process.workflow_id} finished.", process_url()
    if kind == Kind.PROCESS_FAILED:
        error = str(payload.get("error") or process.failure or "")[:300]
        return f"Process #{process.pk} failed", f"{process.workflow_id}: {error}".strip(), process_url()
    if kind == Kind.MENTIONED:
        comment = Comment.objects.filter(pk=payload.get("comment_id")).first()
        where = f"on {task_name}" if event.task_id else f"on process #{process.pk}"
        # Someone who sees the process but not the task reads the comment on the process page.
        on_task = task is not None and (recipient is None or visible_tasks(recipient).filter(pk=task.pk).exists())
        url = (task_url() if on_task else process_url()) + (f"#comment-{comment.pk}" if comment else "")
        return f"{actor} mentioned you {where}", comment.excerpt() if comment else "", url
    raise ValueError(f"unknown notification kind {kind!r}")


def build(events: list[ProcessEvent]) -> list[Notification]:
    """The notifications these events make (unsaved), with what they need read in bulk."""
    # Only what drafting, visibility and the message read: not the context and atom states.
    processes = ProcessInstance.objects.only(*PROCESS_FIELDS).in_bulk({e.process_id for e in events})
    drafted = [(event, draft) for event in events if event.process_id in processes
               for draft in drafts_for(event, processes[event.process_id])]
    if not drafted:
        return []
    users = get_user_model().objects.select_related("notification_preference").in_bulk(
        {draft.recipient_id for _, draft in drafted})
    tasks = TaskInstance.objects.only(*TASK_FIELDS).in_bulk({event.task_id for event, _ in drafted if event.task_id})
    notifications = []
    for event, draft in drafted:
        user, process, task = users.get(draft.recipient_id), processes[event.process_id], tasks.get(event.task_id)
        if user is None or not may_know(user, event, draft.kind, process, task):
            continue
        channels = _preferences(user).channels_for(draft.kind)
        if not channels:
            continue
        wants_email = Channel.EMAIL in channels and bool(user.email)
        if Channel.IN_APP not in channels and not wants_email:
            continue  # by email only, and no address to send it to
        title, body, url = compose(draft.kind, event, process, task, user)
        notifications.append(maker(Notification).new(
            recipient_id=user.pk, kind=draft.kind, event_id=event.pk, process_id=process.pk, task_id=event.task_id,
            actor=event.username, title=title[:300], body=body, url=url, in_app=Channel.IN_APP in channels,
            email_status=EmailStatus.PENDING if wants_email else EmailStatus.NONE,
        ))
    return notifications


def _preferences(user) -> NotificationPreference:
    """The stored preferences (read with the user), or the defaults for someone who never chose."""
    try:
        return user.notification_preference
    except ObjectDoesNotExist:
        return NotificationPreference(user=user)


def deliver(event_ids: Iterable[int]) -> list[Notification]:
    """Notify for these committed events, each exactly once. Pushes the bells and hands the
    emails to a worker after the commit. Safe to call again with the same ids."""
    ids = list(event_ids)
    if not ids:
        return []
    return deliver_committed(list(ProcessEvent.objects.filter(pk__in=ids, type__in=NOTIFYING_EVENTS)))


def deliver_committed(events: Iterable[ProcessEvent]) -> list[Notification]:
    """`deliver` for events at hand (the ones a commit just wrote): a batch in one
    transaction, a few statements whatever its size. Should the batch fail, each event is
    tried on its own, so that one bad event holds back only itself; the first error is
    raised after the others are delivered (the relay then retries from its cursor)."""
    events = sorted((e for e in events if e.type in NOTIFYING_EVENTS and e.pk is not None), key=lambda e: e.pk)
    if not events:
        return []
    try:
        return _deliver_once(events)
    except Exception:
        if len(events) == 1:
            raise
    created: list[Notification] = []
    failure: Exception | None = None
    for event in events:
        try:
            created += _deliver_once([event])
        except Exception as error:  # noqa: BLE001 - raised below, once the rest is delivered
            failure = failure or error
    if failure is not None:
        raise failure
    return created


def _deliver_once(events: list[ProcessEvent]) -> list[Notification]:
    with transaction.atomic():
        claimed = _claim([event.pk for event in events])
        created = build([event for event in events if event.pk in claimed])
        # In one statement whose values are prepared as a step's are (`steps.writes`).
        writes = Writes()
        writes.insert(created)
        writes.execute()
        if created:
            transaction.on_commit(lambda: after_delivery(created), robust=True)
    return created


def _claim(event_ids: list[int]) -> set[int]:
    """Mark the events delivered; returns the ones this call marked. A concurrent delivery
    of the same event waits on the marker's key until this transaction ends, then finds it
    taken: whoever comes first notifies, once."""
    table, column = DeliveredEvent._meta.db_table, DeliveredEvent._meta.pk.column
    quote = connection.ops.quote_name
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    claimed: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(event_ids), CLAIM_CHUNK):
            chunk = event_ids[start:start + CLAIM_CHUNK]
            cursor.execute(
                f"INSERT INTO {quote(table)} ({quote(column)}, {quote('delivered_at')}) "
                f"VALUES {', '.join(['(%s, %s)'] * len(chunk))} "
                f"ON CONFLICT ({quote(column)}) DO NOTHING RETURNING {quote(column)}",
                [value for event_id in chunk for value in (event_id, at)],
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


def after_delivery(notifications: list[Notification]) -> None:
    live.push(notifications)
    for user_id in sorted({n.recipient_id for n in notifications if n.email_status == EmailStatus.PENDING}):
        try:
            job(SEND_EMAILS).apply_async((user_id,), countdown=_email_delay(), retry=False)
        except Exception:  # noqa: BLE001 - the periodic flush sends what is still pending
            log.warning("could not hand notification emails of user %s to a worker", user_id, exc_info=True)


def _email_delay() -> float:
    return settings.GNDP_NOTIFICATION_EMAIL_DELAY
