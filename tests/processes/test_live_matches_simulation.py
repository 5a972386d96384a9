"""The live engine (services on the database) and the engine core agree on the same inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processes import versions
from processes.engine import core
from processes.engine.simulation import simulate
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.engine.strategies import results_for, workflows
from tests.simulation.test_live_matches_simulation import runs_at_most
from tests.factories import UserFactory

HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def publish_and_run(raw, results, pick):
    """Publish a random workflow, run it live, completing human tasks in `pick` order."""
    user = UserFactory(username="worker", roles=["role-x"])
    # Started by role-x: a drawn workflow may have no human atom, and so no performing role.
    raw = {**raw, "journey": {"id": f"journey-random-{ProcessInstance.objects.count()}", "name": "random",
                              "start": {"by": ["role-x"]}}}
    version = versions.publish_journey(raw).version
    blueprint = versions.get_blueprint(version.pk, version.journey_id)
    process = start_process(workflow_id=version.journey_id, user=user, context={"x": 5})
    for _ in range(runs_at_most(blueprint)):
        open_tasks = list(TaskInstance.objects.filter(process=process, status="pending", kind="human"))
        process.refresh_from_db()
        if not open_tasks or process.status != "running":  # done, or stopped at a loop's limit
            break
        task = pick(open_tasks, blueprint)
        task_services.complete_task(task.pk, user=user, result=results[task.atom_id])
    process.refresh_from_db()
    return blueprint, process


def first_in_file(tasks, blueprint):
    return min(tasks, key=lambda task: blueprint.atoms[task.atom_id].position)


@pytest.mark.django_db
@HYPOTHESIS
@given(data=st.data())
def test_simulation_equals_a_live_run_of_human_steps(data):
    raw = data.draw(workflows(max_atoms=8))
    for atom in raw["atoms"]:  # every step a person's, completed in file order as simulate does
        atom.pop("kind", None), atom.pop("handler", None)
        atom["performed_by"] = "role-x"
    results = data.draw(results_for([atom["id"] for atom in raw["atoms"]]))

    blueprint, process = publish_and_run(raw, results, first_in_file)
    simulated = simulate(blueprint, {"x": 5}, results)

    completed = list(TaskInstance.objects.filter(process=process, status="completed").order_by("completed_at", "pk")
                     .values_list("atom_id", flat=True))
    assert simulated.success is (process.status == "completed")  # or both stopped at a loop's limit
    assert simulated.visited_atoms == completed
    assert set(simulated.skipped_atoms) == set(process.steps_in("skipped"))
    assert simulated.context == process.context


@pytest.mark.django_db(transaction=True)  # system steps run after commit
@HYPOTHESIS
@given(data=st.data())
def test_replaying_the_live_completion_order_on_the_core_gives_the_stored_state(data):
    raw = data.draw(workflows(max_atoms=8))
    results = data.draw(results_for([atom["id"] for atom in raw["atoms"]]))
    chooser = data.draw(st.randoms(use_true_random=False))

    blueprint, process = publish_and_run(raw, results, lambda tasks, bp: chooser.choice(tasks))

    # Replay: the order the event log recorded, the results each step actually stored.
    order = list(ProcessEvent.objects.filter(process=process, type="task.completed").order_by("id")
                 .values_list("atom_id", flat=True))
    stored = dict(TaskInstance.objects.filter(process=process).values_list("atom_id", "result"))
    step = core.start(blueprint, {"x": 5})
    for atom_id in order:
        step = core.complete(blueprint, step.runtime, step.context, atom_id, stored[atom_id] or {})
    assert process.status == "completed" or "loop_limit" in process.failure
    assert dict(step.runtime.states) == process.atom_states
    assert step.runtime.loops == process.loops
    assert step.context == process.context
