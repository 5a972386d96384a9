"""Comments and attachments. Each write is one transaction that records its event in the
process's history; the process row is locked first, as every writer of events does."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from gndp.db_faults import note_outside_effect, retry_transaction
from processes.errors import InvalidInput
from steps.events import EventLog
from processes.models import DiscussionEventType, ProcessInstance
from processes.selectors import process_for
from tasks.access import visible_processes, visible_tasks
from tasks.models import TaskInstance
from tasks.selectors import task_for

from . import markup, uploads
from .live import publish_to_task
from .models import Attachment, Comment

MAX_COMMENT_LENGTH = 10_000


def _target(user, *, process_id: Any = None, task_id: Any = None) -> tuple[ProcessInstance, TaskInstance | None]:
    """The process (and task) the caller may see; NotFound (404) for anything else."""
    if task_id is not None:
        task = task_for(user, task_id)
        return task.process, task
    return process_for(user, process_id), None


def mentionable(users, *, process: ProcessInstance, task: TaskInstance | None) -> list:
    """Those of `users` who can see the process (or, on a task's comment, the task)."""
    return [
        user for user in users
        if user.is_active and (
            visible_processes(user).filter(pk=process.pk).exists()
            or (task is not None and visible_tasks(user).filter(pk=task.pk).exists())
        )
    ]


@retry_transaction
def comment_add(*, user, body: str, process_id: Any = None, task_id: Any = None) -> Comment:
    """Comment on a process or a task the caller can see. `@name` mentions those who can see
    it too; a name of anyone else stays plain text and notifies nobody."""
    body = (body or "").strip()
    if not body:
        raise InvalidInput("the comment is empty", details={"body": "write something"})
    if len(body) > MAX_COMMENT_LENGTH:
        raise InvalidInput("the comment is too long", details={"body": f"at most {MAX_COMMENT_LENGTH} characters"})
    if "\x00" in body or not _encodable(body):
        raise InvalidInput("the comment holds characters that cannot be stored",
                           details={"body": "NUL and unpaired surrogate characters are not allowed"})
    process, task = _target(user, process_id=process_id, task_id=task_id)
    names = markup.mentioned_names(body)[: markup.MAX_MENTIONS * 2]
    candidates = list(get_user_model().objects.filter(username__in=names)) if names else []
    mentioned = mentionable(candidates, process=process, task=task)[: markup.MAX_MENTIONS]
    with transaction.atomic():
        ProcessInstance.objects.select_for_update().filter(pk=process.pk).values_list("pk", flat=True).first()
        comment = Comment.objects.create(
            process=process, task=task, author=user, author_name=user.get_username(), body=body,
            body_html=markup.render(body, {u.get_username() for u in mentioned}),
        )
        comment.mentions.set(mentioned)
        log = EventLog(user)
        log.add(process, DiscussionEventType.COMMENT_ADDED, task=task, comment_id=comment.pk,
                mentions=[u.get_username() for u in mentioned], mentioned_ids=[u.pk for u in mentioned])
        _publish_to_task(task, log.flush())
    return comment


def attachment_add(*, user, upload, process_id: Any = None, task_id: Any = None) -> Attachment:
    """Attach a file to a process or a task the caller can see. Too large, of a type not
    allowed, or not what its name says: InvalidInput (400), nothing stored."""
    process, task = _target(user, process_id=process_id, task_id=task_id)
    filename, content_type = uploads.check(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(process=process, task=task, uploaded_by=user, uploaded_by_name=user.get_username(),
                            filename=filename, content_type=content_type, size=upload.size,
                            sha256=digest.hexdigest())
    attachment.file.save(filename, upload, save=False)
    note_outside_effect()  # stored already: this call is not to run again (a deadlock: 503)
    try:
        with transaction.atomic():
            ProcessInstance.objects.select_for_update().filter(pk=process.pk).values_list("pk", flat=True).first()
            attachment.save()
            log = EventLog(user)
            log.add(process, DiscussionEventType.ATTACHMENT_ADDED, task=task, attachment_id=attachment.pk,
                    content_type=content_type, size=attachment.size)
            _publish_to_task(task, log.flush())
    except BaseException:
        attachment.file.delete(save=False)  # no row, no file
        raise
    return attachment


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _publish_to_task(task: TaskInstance | None, events) -> None:
    if task is not None and events:
        task_id = task.pk
        transaction.on_commit(lambda: publish_to_task(task_id, events), robust=True)
