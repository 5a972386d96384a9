"""The inbox and task pages. Views parse, call a selector or a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from gndp.htmx import as_get
from processes import versions
from processes.selectors import masked_context, masked_result
from processes.errors import InvalidInput, ServiceError
from processes.models import WorkflowVersion

from . import selectors, services
from .forms import task_form, to_result, without_overlong_values
from .models import Priority, TaskStatus

INBOX_LIMIT = 200


def _inbox_filters(request) -> dict:
    status = request.GET.get("status", "")
    priority = request.GET.get("priority", "")
    return {
        "status": status if status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS) else None,
        "priority": priority if priority in Priority.values else None,
        "journey_id": request.GET.get("journey") or None,
        "overdue": request.GET.get("overdue") == "1",
    }


@login_required
def inbox(request):
    filters = _inbox_filters(request)
    tasks = selectors.inbox(request.user, **filters).select_related("process")[:INBOX_LIMIT]
    context = {
        "tasks": tasks,
        "filters": filters,
        "stats": selectors.stats(request.user),
        "journeys": WorkflowVersion.objects.values_list("journey_id", flat=True).distinct().order_by("journey_id"),
        "priorities": Priority.values,
    }
    return render(request, "tasks/inbox.html", context)


@login_required
def task_detail(request, task_id: int):
    task = selectors.task_for(request.user, task_id)
    blueprint = versions.get_blueprint(task.process.version_id, task.process.workflow_id)
    atom = blueprint.atoms[task.atom_id]
    form = task_form(atom, data=request.POST if request.method == "POST" else None, bounds=blueprint.bounds)
    if request.method == "POST" and form.is_valid():
        try:
            services.complete_task(task.pk, user=request.user, result=to_result(form.cleaned_data))
        except InvalidInput as exc:
            for field, message in exc.details.items():
                form.add_error(field if field in form.fields else None, message)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("task-page", task_id=task.pk)
        else:
            messages.success(request, f"“{task.name}” completed.")
            if request.htmx:  # show the completed task in place; no reload
                return task_detail(as_get(request), task.pk)
            return redirect("inbox")
    # htmx swaps only successful responses: the inline errors go back as a 200 to it.
    status = 400 if request.method == "POST" and not request.htmx else 200
    return render(request, "tasks/task_detail.html", {
        "task": task, "atom": atom, "form": without_overlong_values(form), "process": task.process,
        "context_items": masked_context(task.process), "result_items": masked_result(task),
        "may_cancel": task.is_open and services.may_cancel(request.user, task),
    }, status=status)


@login_required
@require_POST
def task_claim(request, task_id: int):
    try:
        services.start_task(task_id, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Claimed: the task is yours now.")
    if request.htmx:
        return inbox(request)
    return redirect("inbox")


@login_required
@require_POST
def task_cancel(request, task_id: int):
    """A manager withdraws the step: the flow goes on without it."""
    try:
        task = services.cancel_task(task_id, user=request.user, reason=request.POST.get("reason", "")[:1000])
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{task.name}” was withdrawn; the process goes on without it.")
    return redirect("task-page", task_id=task_id)
