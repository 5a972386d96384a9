"""A dry run takes the path a live process takes: random journeys with random rules, run
on PostgreSQL through the services, completed with the same results."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processes import simulation, versions
from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.factories import UserFactory

from .strategies import contexts, results_for, rich_workflows

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_journey_numbers = itertools.count()


def run_live(workflow_id, context, results, user):
    """Complete the open task first in file order until none is left, as the simulator does."""
    process = start_process(workflow_id=workflow_id, user=user, context=context)
    blueprint = versions.get_blueprint(process.version_id, workflow_id)
    completed = []
    for _ in range(runs_at_most(blueprint)):
        open_tasks = list(TaskInstance.objects.filter(process=process, status="pending"))
        process.refresh_from_db()
        if not open_tasks or process.status != "running":  # done, or stopped at a loop's limit
            break
        task = min(open_tasks, key=lambda t: blueprint.atoms[t.atom_id].position)
        if task_services.complete_task(task.pk, user=user, result=results[task.atom_id]).status == "completed":
            completed.append(task.atom_id)
    process.refresh_from_db()
    return process, completed


def runs_at_most(blueprint) -> int:
    """Completions a process of the blueprint can take: every atom, once per run of its loops."""
    return len(blueprint.atoms) * (1 + sum(edge.max_iterations for edge in blueprint.edges if edge.loop)) + 1


@HYPOTHESIS
@given(data=st.data())
def test_the_dry_run_takes_the_live_path_and_explains_its_decisions(data):
    raw = data.draw(rich_workflows(max_atoms=8))
    for atom in raw["atoms"]:  # people's steps only: the test drives every completion itself
        atom.pop("kind", None), atom.pop("handler", None)
        atom["performed_by"] = "role-x"
    raw["journey"] = {"id": f"journey-live-{next(_journey_numbers)}", "name": "random"}
    results = data.draw(results_for([atom["id"] for atom in raw["atoms"]]))
    context = data.draw(contexts())
    user = UserFactory(username="runner", roles=["role-x"])
    workflow_id = versions.publish_journey(raw).version.journey_id

    dry = simulation.dry_run(workflow_id, context, results)
    process, completed = run_live(workflow_id, context, results, user)

    # A rework loop may run into its limit: live, an incident; in the dry run, an error.
    assert process.status == "completed" or "loop_limit" in process.failure
    assert dry["success"] is (process.status == "completed")
    assert dry["visited_atoms"] == completed
    assert set(dry["skipped_atoms"]) == set(process.steps_in("skipped"))
    live_fired = {(source, target) for source, targets in process.fired_edges.items() for target in targets}
    dry_fired = {(edge["from"], edge["to"]) for edge in dry["fired_edges"]}
    if any(edge.get("loop") for edge in raw["edges"]):
        # The dry run's edges are every decision made; a loop that ran again left the live
        # process with its region's decisions undone.
        assert live_fired <= dry_fired
    else:
        assert dry_fired == live_fired
        assert all(((d["from"], d["to"]) in live_fired) == d["fired"] for d in dry["decisions"])
    assert simulation.simulate_workflow(workflow_id, context, results).context == process.context
