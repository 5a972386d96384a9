"""A completion routes its certain next tasks in the round trip of its lock read
(`steps.lookahead`), and decides exactly what routing after the engine would have."""

from __future__ import annotations

import pytest
import yaml
from django.db import connection

from processes.engine.blueprint import compile_blueprint
from processes.errors import Conflict
from processes.journey import normalize
from processes.services import start_process
from processes.versions import publish_journey
from steps import lookahead
from tasks import routing
from tasks.models import Profile, TaskInstance
from tasks.services import complete_task
from tests.factories import UserFactory
from tests.fixtures import SMALL_JOURNEY

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TEAM_JOURNEY = """
format: gndp-journey/1
journey: {id: journey-team, name: Team}
roles: [{id: role-team, name: Team}]
atoms:
  - {id: atom-take, name: Take, performed_by: role-team}
  - {id: atom-check, name: Check, kind: system, handler: noop}
  - {id: atom-split, name: Split, performed_by: role-team}
  - {id: atom-a, name: A, performed_by: role-team}
  - {id: atom-b, name: B, performed_by: role-team}
  - {id: atom-c, name: C, performed_by: role-team}
  - {id: atom-join, name: Join, performed_by: role-team}
edges:
  - {type: ENABLES, from: atom-take, to: atom-check}
  - {type: ENABLES, from: atom-check, to: atom-split}
  - {type: ENABLES, from: atom-split, to: atom-a}
  - {type: ENABLES, from: atom-split, to: atom-b}
  - {type: ENABLES, from: atom-split, to: atom-c}
  - {type: ENABLES, from: atom-a, to: atom-join}
  - {type: ENABLES, from: atom-b, to: atom-join}
  - {type: ENABLES, from: atom-c, to: atom-join}
"""


def test_the_certain_next_atoms_are_those_no_result_can_keep_from_activating():
    blueprint = compile_blueprint(normalize(yaml.safe_load(SMALL_JOURNEY)))
    assert blueprint.certain_next["atom-open"] == ("atom-a", "atom-b")  # unconditional, enabled by it alone
    assert blueprint.certain_next["atom-score"] == ()  # a rule and a default decide
    assert blueprint.certain_next["atom-a"] == ()  # the join waits for atom-b too
    assert blueprint.certain_next["atom-join"] == ()  # a system step, which also depends on atom-b
    assert blueprint.certain_next["atom-apply"] == ()  # a system step: nobody to route


@pytest.fixture
def team(db):
    publish_journey(yaml.safe_load(TEAM_JOURNEY))
    return [UserFactory(username=f"member{i}", roles=["role-team"]) for i in range(3)]


@pytest.fixture
def routed_after_the_engine(monkeypatch):
    """The atoms routed by a statement of their own, after the engine ran."""
    routed = []
    choose = routing.choose

    def spy(role, strategy, when, **kwargs):
        routed.append(role)
        return choose(role, strategy, when, **kwargs)

    monkeypatch.setattr(routing, "choose", spy)
    return routed


@pytest.fixture
def routing_in_a_pipeline():
    """For each routing statement sent: whether it went out in an open pipeline (with the
    lock read) rather than on its own."""
    seen = []

    def wrapper(execute, sql, params, many, context):
        if "WITH chosen AS" in sql:
            seen.append(context["connection"].connection._pipeline is not None)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def open_task(process, atom_id: str) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def work(process, atom_id: str) -> None:
    """Complete the open task of `atom_id` as its assignee."""
    task = open_task(process, atom_id)
    complete_task(task.pk, user=task.assigned_to)


def test_a_completion_routes_its_next_tasks_with_its_lock_read(team, routed_after_the_engine, routing_in_a_pipeline):
    process = start_process(workflow_id="journey-team")
    take = open_task(process, "atom-take")
    complete_task(take.pk, user=take.assigned_to)  # the system step runs, then atom-split is routed
    split = open_task(process, "atom-split")
    assert split.assigned_to in team
    del routing_in_a_pipeline[:], routed_after_the_engine[:]

    complete_task(split.pk, user=split.assigned_to)

    branches = [open_task(process, atom) for atom in ("atom-a", "atom-b", "atom-c")]
    # Three routing statements, all in the lock read's round trip; none after the engine.
    assert routing_in_a_pipeline == [True, True, True]
    assert routed_after_the_engine == []
    # Least busy, ties to the one assigned longest ago: each branch to another member.
    assert {task.assigned_to for task in branches} == set(team)
    # The join waits for all three (two incoming edges and more): routed after the engine.
    for task in branches:
        complete_task(task.pk, user=task.assigned_to)
    assert routed_after_the_engine == ["role-team"]
    assert open_task(process, "atom-join").assigned_to in team


def test_the_system_steps_successor_is_routed_with_the_workers_lock_read(team, routed_after_the_engine,
                                                                          routing_in_a_pipeline):
    process = start_process(workflow_id="journey-team")
    take = open_task(process, "atom-take")
    del routing_in_a_pipeline[:], routed_after_the_engine[:]

    complete_task(take.pk, user=take.assigned_to)  # the worker (eager here) read the system step first

    assert routing_in_a_pipeline == [True]
    assert routed_after_the_engine == []
    assert open_task(process, "atom-split").assigned_to in team


def assignments(restart_without_lookahead: bool) -> list[tuple[str, str]]:
    """Who gets what over a few processes, with the lookahead or without it."""
    for _ in range(3):
        start_process(workflow_id="journey-team")
    done = []
    while True:
        task = TaskInstance.objects.filter(kind="human", status="pending", process__status="running").order_by("pk").first()
        if task is None or len(done) > 100:
            return done
        if restart_without_lookahead:
            lookahead.forget_all()
        complete_task(task.pk, user=task.assigned_to)
        done.append((task.atom_id, task.assigned_to.username))


def test_routing_with_the_lock_read_decides_what_routing_after_the_engine_does(team):
    foreseen = assignments(restart_without_lookahead=False)
    Profile.objects.update(last_assigned_at=None)  # every process done: nobody holds a task
    afterwards = assignments(restart_without_lookahead=True)
    assert foreseen == afterwards and len(foreseen) == 18


def test_a_refused_completion_takes_the_stamps_of_its_routing_back(team, routing_in_a_pipeline):
    process = start_process(workflow_id="journey-team")
    take = open_task(process, "atom-take")
    complete_task(take.pk, user=take.assigned_to)
    split = open_task(process, "atom-split")
    complete_task(split.pk, user=split.assigned_to)
    stamps = dict(Profile.objects.values_list("user_id", "last_assigned_at"))
    tasks = TaskInstance.objects.count()
    del routing_in_a_pipeline[:]

    with pytest.raises(Conflict):
        complete_task(split.pk, user=split.assigned_to)  # already completed: a 409

    assert routing_in_a_pipeline == [True, True, True]  # routed with the lock read, then rolled back
    assert dict(Profile.objects.values_list("user_id", "last_assigned_at")) == stamps
    assert TaskInstance.objects.count() == tasks


def test_a_task_this_process_never_saw_is_routed_after_the_engine(team, routed_after_the_engine,
                                                                   routing_in_a_pipeline):
    process = start_process(workflow_id="journey-team")
    take = open_task(process, "atom-take")
    complete_task(take.pk, user=take.assigned_to)
    split = open_task(process, "atom-split")
    lookahead.forget_all()  # as in another server process than the one that created it
    del routed_after_the_engine[:], routing_in_a_pipeline[:]

    complete_task(split.pk, user=split.assigned_to)

    # No lock read foresaw them: the engine's three new tasks are routed after it ran, their
    # statements together in one pipeline (one round trip, not three).
    assert routing_in_a_pipeline == [True, True, True] and routed_after_the_engine == []
    assert {open_task(process, atom).assigned_to for atom in ("atom-a", "atom-b", "atom-c")} == set(team)


def test_a_single_task_routed_after_the_engine_needs_no_pipeline(team, routed_after_the_engine,
                                                                  routing_in_a_pipeline):
    process = start_process(workflow_id="journey-team")
    for atom in ("atom-take", "atom-split", "atom-a", "atom-b"):
        work(process, atom)
    last = open_task(process, "atom-c")
    del routed_after_the_engine[:], routing_in_a_pipeline[:]

    complete_task(last.pk, user=last.assigned_to)  # the join: no lock read can foresee it

    assert routed_after_the_engine == ["role-team"] and routing_in_a_pipeline == [False]
    assert open_task(process, "atom-join").assigned_to in team


def test_a_task_read_in_its_holders_inbox_is_routed_with_its_lock_read(team, routed_after_the_engine,
                                                                        routing_in_a_pipeline):
    from tasks.selectors import OwnInbox

    process = start_process(workflow_id="journey-team")
    take = open_task(process, "atom-take")
    complete_task(take.pk, user=take.assigned_to)
    split = open_task(process, "atom-split")
    lookahead.forget_all()  # created by another server process
    assert split.pk in [task.pk for task in OwnInbox(split.assigned_to)[0:50]]  # then listed by this one
    del routing_in_a_pipeline[:], routed_after_the_engine[:]

    complete_task(split.pk, user=split.assigned_to)

    assert routing_in_a_pipeline == [True, True, True] and routed_after_the_engine == []


def test_a_start_routes_its_first_tasks_in_the_round_trip_of_its_begin(team, routed_after_the_engine,
                                                                       routing_in_a_pipeline):
    first = start_process(workflow_id="journey-team")
    second = start_process(workflow_id="journey-team")

    assert routing_in_a_pipeline == [True, True] and routed_after_the_engine == []
    takes = [open_task(process, "atom-take") for process in (first, second)]
    assert takes[0].assigned_to != takes[1].assigned_to  # least busy: the second start sees the first's task
    assert [task.process.started_at is not None for task in takes] == [True, True]
