"""The discussion on the process and task pages: htmx posts a comment or a file here and
swaps in the refreshed list; live events make every viewer's list fetch itself again."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from processes.errors import InvalidInput
from processes.selectors import process_for
from tasks.selectors import task_for

from . import selectors, services, uploads


def discussion_context(user, *, process=None, task=None) -> dict:
    if task is not None:
        return {"task": task, "process": task.process, "comments": selectors.task_comments(task),
                "attachments": selectors.task_attachments(task), "max_bytes": uploads.max_bytes(),
                "types": uploads.allowed_types()}
    return {"task": None, "process": process, "comments": selectors.process_comments(process),
            "attachments": selectors.process_attachments(user, process), "max_bytes": uploads.max_bytes(),
            "types": uploads.allowed_types()}


def _items(request, *, status: int = 200, error: str = "", **target):
    context = discussion_context(request.user, **target)
    context["error"] = error
    return render(request, "collaboration/_discussion_items.html", context, status=status)


@login_required
def process_discussion(request, process_id: int):
    return _items(request, process=process_for(request.user, process_id))


@login_required
def task_discussion(request, task_id: int):
    return _items(request, task=task_for(request.user, task_id))


def _write(request, write, page: str, page_id: int, **target):
    try:
        write()
    except InvalidInput as exc:
        if request.htmx:  # htmx swaps successful responses only: the error goes back inline
            return _items(request, error=exc.message, **target)
        messages.error(request, exc.message)
    if request.htmx:
        return _items(request, **target)
    return redirect(page, page_id)


@login_required
@require_POST
def process_comment(request, process_id: int):
    process = process_for(request.user, process_id)
    return _write(request, lambda: services.comment_add(user=request.user, body=request.POST.get("body", ""),
                                                        process_id=process.pk),
                  "process-page", process.pk, process=process)


@login_required
@require_POST
def task_comment(request, task_id: int):
    task = task_for(request.user, task_id)
    return _write(request, lambda: services.comment_add(user=request.user, body=request.POST.get("body", ""),
                                                        task_id=task.pk),
                  "task-page", task.pk, task=task)


def _upload(request, **where):
    uploads.refuse_oversized_body(request.META.get("CONTENT_LENGTH"))
    services.attachment_add(user=request.user, upload=request.FILES.get("file"), **where)


@login_required
@require_POST
def process_attachment(request, process_id: int):
    process = process_for(request.user, process_id)
    return _write(request, lambda: _upload(request, process_id=process.pk), "process-page", process.pk,
                  process=process)


@login_required
@require_POST
def task_attachment(request, task_id: int):
    task = task_for(request.user, task_id)
    return _write(request, lambda: _upload(request, task_id=task.pk), "task-page", task.pk, task=task)
