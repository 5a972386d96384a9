"""Process and journey pages. Views parse, call a selector or a service, render."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from gndp import json_input

from . import selectors, services
from .errors import ServiceError
from .models import ProcessStatus
from .simulation import simulation_page, with_sample_results
from .versions import latest_version


@login_required
def home(request):
    return redirect("inbox")


@login_required
def process_list(request):
    processes = selectors.processes_for(request.user).order_by("-started_at", "-pk")
    status = request.GET.get("status")
    if status in ProcessStatus.values:
        processes = processes.filter(status=status)
    return render(request, "processes/process_list.html", {
        "processes": processes[:200], "status": status, "statuses": ProcessStatus.values,
    })


@login_required
def process_detail(request, process_id: int):
    process = selectors.process_for(request.user, process_id)
    graph = selectors.graph_of(process)
    context = {
        "process": process,
        "graph": graph,
        "graph_gates": selectors.graph_marks(graph),
        "timeline": selectors.timeline(process),
        "context_items": selectors.masked_context(process),
        "open_tasks": process.tasks.filter(status__in=["pending", "in_progress"]).select_related("assigned_to"),
    }
    if request.htmx:
        return render(request, "processes/_process_live.html", context)
    return render(request, "processes/process_detail.html", context)


@login_required
def start(request):
    """Offers only what the user may start; a start posted past that is refused by the
    service (a 403 page with the reason), as the API refuses it."""
    posted, status = request.POST, 200
    if request.method == "POST":
        workflow_id = request.POST.get("workflow_id", "")
        try:
            initial = json_input.loads(request.POST.get("context") or "{}", what="context")
        except json.JSONDecodeError as exc:
            messages.error(request, f"The initial context is not valid JSON: {exc.msg} (position {exc.pos}).")
        except ServiceError as exc:  # too large (413) or too deep (400): not echoed back either
            messages.error(request, f"The initial context was refused: {exc.message}.")
            posted, status = {"workflow_id": workflow_id}, exc.status
        else:
            try:
                process = services.start_process(workflow_id=workflow_id, context=initial, user=request.user)
            except ServiceError as exc:
                messages.error(request, exc.message)
                status = exc.status
            else:
                messages.success(request, f"Process {process.pk} started.")
                return redirect("process-page", process_id=process.pk)
    return render(request, "processes/start.html", {
        "workflows": selectors.startable_workflows(request.user), "posted": posted,
    }, status=status)


@login_required
def journey_detail(request, journey_id: str):
    detail = selectors.journey_detail(journey_id, request.user)
    version = latest_version(journey_id)
    return render(request, "processes/journey_detail.html", {
        "journey": detail, "graph": selectors.version_graph(version.pk, journey_id),
    })


@login_required
def simulate(request):
    """Pick a journey, enter a context (and results), see the simulated path and the prediction."""
    workflows = selectors.all_workflows()
    data = request.POST if request.method == "POST" else request.GET
    workflow_id = data.get("workflow_id") or (workflows[0]["id"] if workflows else "")
    page = None
    problems = []
    status = 200
    texts = {"context": data.get("context", ""), "results": data.get("results", "")}
    context, results = {}, {}
    for name, target in (("context", context), ("results", results)):
        try:
            value = json_input.loads(texts[name] or "{}", what=name)
        except json.JSONDecodeError as exc:
            problems.append(f"The {name} is not valid JSON: {exc.msg} (position {exc.pos}).")
            continue
        except ServiceError as exc:  # too large (413) or too deep (400): not echoed back either
            problems.append(f"The {name} was refused: {exc.message}.")
            texts[name], status = "", max(status, exc.status)
            continue
        if not isinstance(value, dict):
            problems.append(f"The {name} must be a JSON object.")
            continue
        target.update(value)
    fill = data.get("fill", "1" if request.method == "GET" else "") == "1"
    filled_atoms: list[str] = []
    if workflow_id and not problems:
        try:
            if fill:
                results, filled_atoms = with_sample_results(workflow_id, results)
            page = simulation_page(workflow_id, context, results)
        except ServiceError as exc:
            problems.append(exc.message)
    return render(request, "processes/simulate.html", {
        "workflows": workflows, "workflow_id": workflow_id, "page": page, "problems": problems,
        "context_text": texts["context"], "results_text": texts["results"],
        "fill": fill, "filled_atoms": filled_atoms,
    }, status=status)
