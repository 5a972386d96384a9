"""Data subjects' rights (GDPR Art. 15, 17, 20; CCPA): export, erasure, and retention.

Who a borrower is: the journey names a context path as its subject key
(`journey.privacy.subject_key`, e.g. `borrower.email`); a process belongs to the subject
whose value it holds there. What is personal in such a process: the subject key, the
journey's `privacy.personal` paths, every path it encrypts (`sensitive`), and the whole
discussion (comments, attachments) and the notifications about it. A user of the app is a
subject too (their account, their comments, their notifications).

Erasure pseudonymises in place, one transaction per process under its row lock, like every
service: the personal paths of the context and of the task results become `[erased]` (the
subject key `erased:<reference>`, so the subject's processes stay linked without naming
them), comment bodies are erased, attachments and their files deleted, notifications
deleted. The event log is left as it is: it never held these values (events carry ids and
key names, never context values), so its hash chain stays whole; a `privacy.erased` event is
appended with non-personal facts only (the erasure's reference and what it counted). It
runs as the app role: nothing here updates or deletes an event.

Kept on purpose, for the audit trail (GDPR Art. 17(3)(b), (e)): the user names of the staff
who acted, in the events. A business key must therefore not be personal data (it is in the
`process.started` event); one that equals a personal value is pseudonymised on the process.

Retention: a finished process older than its journey's retention (`privacy.retention`, or
the administrator's RetentionPolicy) has its whole context, task results, discussion and
notifications removed the same way (`privacy.purged`); the process row and its event log
remain as a tombstone of ids, states and times, since the log is append-only.
"""

from __future__ import annotations

import base64
import copy
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from collaboration.models import Attachment, Comment
from gndp.db_faults import note_outside_effect
from notifications.models import Notification, NotificationPreference
from processes import sensitive
from processes.engine.durations import parse_duration
from steps.changes import change_task
from steps.events import EventLog
from processes.models import (IdempotencyRecord, ProcessEvent, ProcessInstance, ProcessStatus,
                              WorkflowVersion)
from tasks.models import TaskInstance

from .models import Erasure, ErasureKind, PrivacyEventType, RetentionPolicy

ERASED = "[erased]"
ERASED_EVENT = PrivacyEventType.ERASED
PURGED_EVENT = PrivacyEventType.PURGED
BUNDLE_FORMAT = "gndp-subject-export/1"
FINISHED = (ProcessStatus.COMPLETED, ProcessStatus.ABORTED)


@dataclass(frozen=True)
class Rules:
    subject_key: str | None
    personal: tuple[str, ...]  # every personal path, the subject key and the encrypted ones included
    encrypted: tuple[str, ...]
    retention: timedelta | None


def rules_of(version: WorkflowVersion) -> Rules:
    privacy = version.definition.get("journey", {}).get("privacy", {})
    encrypted = sensitive.paths_of_version(version.pk, version.journey_id)
    subject_key = privacy.get("subject_key")
    personal = [*([subject_key] if subject_key else []), *privacy.get("personal", ()), *encrypted]
    retention = privacy.get("retention")
    return Rules(subject_key=subject_key, personal=tuple(dict.fromkeys(personal)), encrypted=encrypted,
                 retention=parse_duration(retention) if retention else None)


# --- paths -------------------------------------------------------------------------------------

def _get(data: Any, path: str) -> Any:
    for segment in path.split("."):
        if not isinstance(data, dict) or segment not in data:
            return None
        data = data[segment]
    return data


def _replace(data: Any, path: str, value: Any) -> bool:
    *parents, leaf = path.split(".")
    for segment in parents:
        if not isinstance(data, dict) or not isinstance(data.get(segment), dict):
            return False
        data = data[segment]
    if not isinstance(data, dict) or leaf not in data:
        return False
    data[leaf] = value
    return True


def _scalars(value: Any) -> Iterable[str]:
    """The text of every scalar in a value (what a dump scan would look for)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
        yield str(value)


def _reveal(paths: tuple[str, ...], data: Any) -> Any:
    try:
        return sensitive.reveal(paths, data)
    except sensitive.UndecryptableField:  # its key is gone: already unreadable, erase it all the same
        return data


# --- finding a subject's processes -------------------------------------------------------------

def subject_processes(value: str) -> list[ProcessInstance]:
    """Processes whose journey's subject key holds `value`. An encrypted subject key cannot
    be matched in SQL: those processes are decrypted and compared one by one."""
    found: list[ProcessInstance] = []
    for version in WorkflowVersion.objects.order_by("pk"):
        rules = rules_of(version)
        if not rules.subject_key:
            continue
        processes = ProcessInstance.objects.filter(version=version).order_by("pk")
        if any(rules.subject_key == p or rules.subject_key.startswith(p + ".") for p in rules.encrypted):
            found += [process for process in processes.iterator()
                      if _get(_reveal(rules.encrypted, process.context), rules.subject_key) == value]
        else:
            found += list(processes.filter(**{"context__" + rules.subject_key.replace(".", "__"): value}))
    return found


# --- export ------------------------------------------------------------------------------------

def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _file_content(attachment: Attachment) -> str | None:
    try:
        with attachment.file.open("rb") as handle:
            return base64.b64encode(handle.read()).decode()
    except (FileNotFoundError, ValueError, OSError):
        return None


def _attachment(attachment: Attachment, *, content: bool) -> dict[str, Any]:
    out = {"id": attachment.pk, "process_id": attachment.process_id, "task_id": attachment.task_id,
           "filename": attachment.filename, "content_type": attachment.content_type, "size": attachment.size,
           "sha256": attachment.sha256, "uploaded_by": attachment.uploaded_by_name,
           "created_at": _when(attachment.created_at)}
    if content:
        out["content_base64"] = _file_content(attachment)
    return out


def _comment(comment: Comment) -> dict[str, Any]:
    return {"id": comment.pk, "process_id": comment.process_id, "task_id": comment.task_id,
            "author": comment.author_name, "body": comment.body, "created_at": _when(comment.created_at)}


def _notification(notification: Notification) -> dict[str, Any]:
    return {"id": notification.pk, "recipient_id": notification.recipient_id, "kind": notification.kind,
            "process_id": notification.process_id, "title": notification.title, "body": notification.body,
            "created_at": _when(notification.created_at), "read_at": _when(notification.read_at)}


def process_bundle(process: ProcessInstance) -> dict[str, Any]:
    """Everything held in and about one process, decrypted."""
    paths = sensitive.paths_of(process)
    return {
        "id": process.pk, "journey_id": process.journey_id, "workflow_id": process.workflow_id,
        "status": process.status, "business_key": process.business_key,
        "started_at": _when(process.started_at), "completed_at": _when(process.completed_at),
        "context": _reveal(paths, process.context),
        "tasks": [{"id": task.pk, "atom_id": task.atom_id, "name": task.name, "status": task.status,
                   "created_at": _when(task.created_at), "completed_at": _when(task.completed_at),
                   "data": _reveal(paths, task.data), "result": _reveal(paths, task.result)}
                  for task in process.tasks.order_by("pk")],
        "comments": [_comment(comment) for comment in Comment.objects.filter(process=process)],
        "attachments": [_attachment(item, content=True) for item in Attachment.objects.filter(process=process)],
        "notifications": [_notification(item) for item in Notification.objects.filter(process=process).order_by("pk")],
        "events": [event.as_message() for event in ProcessEvent.objects.filter(process=process).order_by("pk")],
    }


def export_subject(value: str) -> dict[str, Any]:
    """The JSON bundle of everything held about the data subject `value` (Art. 15, 20)."""
    return {"format": BUNDLE_FORMAT, "generated_at": timezone.now().isoformat(),
            "subject": {"kind": "subject_key", "value": value},
            "processes": [process_bundle(process) for process in subject_processes(value)]}


def export_user(user) -> dict[str, Any]:
    """The JSON bundle of everything held about a user of the app."""
    profile = getattr(user, "workflow_profile", None)
    preference = NotificationPreference.objects.filter(user=user).first()
    tasks = TaskInstance.objects.filter(Q(assigned_to=user) | Q(completed_by=user)).order_by("pk")
    return {
        "format": BUNDLE_FORMAT, "generated_at": timezone.now().isoformat(),
        "subject": {"kind": "user", "id": user.pk},
        "account": {"id": user.pk, "username": user.get_username(), "first_name": user.first_name,
                    "last_name": user.last_name, "email": user.email, "is_active": user.is_active,
                    "date_joined": _when(user.date_joined), "last_login": _when(user.last_login),
                    "roles": sorted(user.groups.values_list("name", flat=True))},
        "profile": {"manager_id": profile.manager_id, "capacity": profile.capacity,
                    "available": profile.available} if profile else None,
        "notification_preferences": {"channels": preference.channels, "quiet_start": str(preference.quiet_start or ""),
                                     "quiet_end": str(preference.quiet_end or ""),
                                     "timezone": preference.timezone} if preference else None,
        "processes_started": list(ProcessInstance.objects.filter(started_by=user).order_by("pk")
                                  .values_list("pk", flat=True)),
        "tasks": [{"id": task.pk, "process_id": task.process_id, "atom_id": task.atom_id, "name": task.name,
                   "status": task.status, "assigned": task.assigned_to_id == user.pk,
                   "completed_by_them": task.completed_by_id == user.pk, "completed_at": _when(task.completed_at)}
                  for task in tasks],
        "comments": [_comment(comment) for comment in Comment.objects.filter(author=user)],
        "attachments": [_attachment(item, content=True) for item in Attachment.objects.filter(uploaded_by=user)],
        "notifications": [_notification(item) for item in Notification.objects.filter(recipient=user).order_by("pk")],
        "events": [event.as_message() for event in ProcessEvent.objects.filter(user_id=user.pk).order_by("pk")],
    }


# --- erasure -----------------------------------------------------------------------------------

def _erase_data(data: Any, rules: Rules, *, whole: bool, pseudonym: str) -> tuple[Any, int]:
    """Plaintext data with its personal paths replaced; and how many were."""
    if whole:
        return ({} if isinstance(data, dict) else None), (1 if data else 0)
    if not isinstance(data, dict):
        return data, 0
    data = copy.deepcopy(data)
    count = 0
    for path in rules.personal:
        if _replace(data, path, pseudonym if path == rules.subject_key else ERASED):
            count += 1
    return data, count


def erase_process(process_id: int, *, erasure: Erasure, actor=None, whole: bool = False) -> Counter:
    """Erase the personal data of one process (all of its data with `whole`), in one
    transaction under its row lock, and append the non-personal record of it."""
    counts: Counter = Counter()
    with transaction.atomic():
        process = ProcessInstance.objects.select_for_update().get(pk=process_id)
        rules = rules_of(process.version)
        pseudonym = f"erased:{erasure.reference}"
        context = _reveal(rules.encrypted, process.context)
        values = {text for path in rules.personal for text in _scalars(_get(context, path))}
        new_context, counts["fields"] = _erase_data(context, rules, whole=whole, pseudonym=pseudonym)
        process.context = sensitive.seal(rules.encrypted, new_context)
        if process.business_key and (whole or process.business_key in values):
            process.business_key = f"erased-{erasure.reference.hex[:12]}-{process.pk}"
        if process.failure and (whole or any(value in process.failure for value in values)):
            process.failure = ERASED
        process.lock_version += 1  # an edit made against the old context must fail (412)
        process.save(update_fields=["context", "business_key", "failure", "lock_version", "updated_at"])

        for task in process.tasks.select_for_update().order_by("pk"):
            result, erased_result = _erase_data(_reveal(rules.encrypted, task.result), rules, whole=whole,
                                                pseudonym=pseudonym)
            data, erased_data = _erase_data(_reveal(rules.encrypted, task.data), rules, whole=whole,
                                            pseudonym=pseudonym)
            erased_error = task.last_error and (whole or any(value in task.last_error for value in values))
            change_task(task, result=sensitive.seal(rules.encrypted, result),
                        data=sensitive.seal(rules.encrypted, data if isinstance(data, dict) else {}),
                        last_error=ERASED if erased_error else task.last_error)
            counts["tasks"] += bool(erased_result or erased_data)

        counts["comments"] = Comment.objects.filter(process=process).exclude(body=ERASED).update(
            body=ERASED, body_html=f"<p>{ERASED}</p>")
        attachments = list(Attachment.objects.filter(process=process))
        for attachment in attachments:
            attachment.file.delete(save=False)  # the file goes with the row, never after a crash
            note_outside_effect()  # gone for good: the transaction is not to run again
        counts["attachments"] = Attachment.objects.filter(pk__in=[a.pk for a in attachments]).delete()[0]
        counts["notifications"] = Notification.objects.filter(process=process).delete()[0]
        counts["stored_responses"] = _delete_stored_responses(values)

        log = EventLog(actor)
        log.add(process, PURGED_EVENT if whole else ERASED_EVENT, erasure=str(erasure.reference),
                **{key: counts[key] for key in ("fields", "tasks", "comments", "attachments", "notifications")})
        log.flush()
    return counts


def _delete_stored_responses(values: set[str]) -> int:
    """Idempotency records whose stored response shows a personal value in plaintext."""
    matching = Q()
    for value in values:
        if len(value) >= 3:  # a shorter value matches everything and tells nothing
            matching |= Q(response__icontains=value)
    if not matching:
        return 0
    return IdempotencyRecord.objects.filter(matching).delete()[0]


def erase_subject(*, value: str, requested_by=None) -> Erasure:
    """Erase the data subject `value` from every process that holds it (Art. 17)."""
    processes = subject_processes(value)
    erasure = Erasure.objects.create(kind=ErasureKind.SUBJECT, requested_by=requested_by, processes=len(processes))
    counts: Counter = Counter()
    for process in processes:
        counts.update(erase_process(process.pk, erasure=erasure, actor=requested_by))
    erasure.counts = dict(counts)
    erasure.save(update_fields=["counts"])
    return erasure


def erase_user(*, user, requested_by=None) -> Erasure:
    """Pseudonymise a user's account and what names them outside the audit trail."""
    from rest_framework.authtoken.models import Token

    pseudonym = f"erased-user-{user.pk}"
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        counts = {
            "comments": Comment.objects.filter(author=user).update(author_name=pseudonym),
            "attachments": Attachment.objects.filter(uploaded_by=user).update(uploaded_by_name=pseudonym),
            "notifications": Notification.objects.filter(recipient=user).delete()[0],
            "stored_responses": IdempotencyRecord.objects.filter(user=user).delete()[0],
        }
        NotificationPreference.objects.filter(user=user).delete()
        Token.objects.filter(user=user).delete()
        user.username, user.first_name, user.last_name, user.email = pseudonym, "", "", ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
        return Erasure.objects.create(kind=ErasureKind.USER, requested_by=requested_by, counts=counts)


# --- retention ---------------------------------------------------------------------------------

def retention_by_version() -> dict[int, timedelta]:
    """Each version's retention: the administrator's policy for its journey, else its own."""
    overrides = dict(RetentionPolicy.objects.values_list("journey_id", "retention"))
    found = {}
    for version in WorkflowVersion.objects.all():
        retention = overrides.get(version.journey_id) or rules_of(version).retention
        if retention:
            found[version.pk] = retention
    return found


def expired_processes(*, now: datetime | None = None):
    """Finished processes past their retention that still hold their data."""
    now = now or timezone.now()
    purged = ProcessEvent.objects.filter(process=OuterRef("pk"), type=PURGED_EVENT)
    expired = Q(pk__in=[])
    for version_id, retention in retention_by_version().items():
        expired |= Q(version_id=version_id, completed_at__lt=now - retention)
    return (ProcessInstance.objects.filter(expired, status__in=FINISHED, completed_at__isnull=False)
            .exclude(Exists(purged)).order_by("pk"))


def purge_expired(*, now: datetime | None = None, limit: int = 500, requested_by=None) -> Erasure | None:
    """Remove the data of finished processes past their retention, at most `limit` of them.
    Safe to run again, and by two workers at once (each process is purged under its lock
    and once: a purged process leaves the selection)."""
    ids = list(expired_processes(now=now).values_list("pk", flat=True)[:limit])
    if not ids:
        return None
    erasure = Erasure.objects.create(kind=ErasureKind.RETENTION, requested_by=requested_by)
    counts: Counter = Counter()
    for process_id in ids:
        with transaction.atomic():
            # Re-checked under the lock: another purge may have got there first.
            ProcessInstance.objects.select_for_update().filter(pk=process_id).first()
            if ProcessEvent.objects.filter(process_id=process_id, type=PURGED_EVENT).exists():
                continue
            counts.update(erase_process(process_id, erasure=erasure, actor=requested_by, whole=True))
            counts["processes"] += 1
    erasure.processes = counts.pop("processes", 0)
    erasure.counts = dict(counts)
    erasure.save(update_fields=["processes", "counts"])
    return erasure
