"""Persisting what the engine core decided for one process: the new atom states and context,
the tasks of the atoms it activated (routed and granted), their events, and the process's
completion. Part of a step (`steps.transaction`), with the process row locked.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from gndp.enqueue import job
from processes import sensitive, states
from processes.engine import core
from processes.engine.blueprint import Blueprint
from processes.models import EventType, ProcessInstance, ProcessStatus
from tasks import access, routing
from tasks.models import OPEN_TASK_STATUSES, PRIORITY_RANK, TaskInstance
from tasks.strategies import DEFAULT

from . import changes, lookahead, tricks
from .events import EventLog
from .rows import maker

logger = logging.getLogger(__name__)

RUN_SYSTEM_STEP = "processes.tasks.run_system_task"


def advance(process: ProcessInstance, blueprint: Blueprint, outcome: core.Step, log: EventLog, *,
            closing: TaskInstance | None = None, router: routing.BatchRouter | None = None,
            routes: dict[str, routing.Route] | None = None) -> list[TaskInstance]:
    """Create the tasks of the atoms `outcome` activated, save the process row with the new
    atom states and context (`outcome.context` is plaintext; its sensitive fields are stored
    encrypted), and complete the process when the outcome says so. Everything waits in
    `log.writes` for the step's commit.

    `closing`: the task this step completes, whose own update waits in `log.writes` too:
    routing counts it as closed. `router`: a bulk start's in-memory routing. `routes`: the
    atoms the lock read already routed (`steps.lookahead`); the others are routed now,
    together where there are several.
    """
    now = timezone.now()
    routes = routes or {}
    closing_id = closing.pk if closing is not None else None
    if outcome.withdrawn:
        withdrawn = (TaskInstance.objects.filter(process=process, atom_id__in=outcome.withdrawn,
                                                 status__in=OPEN_TASK_STATUSES)
                     .exclude(pk=closing_id).select_related("assigned_to").order_by("pk"))
        close_tasks(process, list(withdrawn), log, EventType.TASK_WITHDRAWN, now)
    unrouted = [atom_id for atom_id in outcome.activated if atom_id not in routes]
    if router is None and len(unrouted) > 1 and tricks.on("lookahead"):
        routes = {**routes, **lookahead.route_together(blueprint, unrouted, closing=closing_id)}
    picked: list[bool] = []
    tasks = [_new_task(process, blueprint, atom_id, now, closing_id, router, routes.get(atom_id), picked)
             for atom_id in outcome.activated]
    if blueprint.regions:
        for task in tasks:
            task.iteration = core.iteration(blueprint, outcome.runtime, task.atom_id)
    log.writes.insert(tasks, need_ids=True)
    if picked:
        # The chosen people's profiles, stamped with the step's writes in user id order: the
        # lock order every transaction keeps (`tasks.routing`).
        routing.stamp_routed(log.writes)
    for task in tasks:
        lookahead.remember(task.pk, process, task.atom_id)
    access.grant_new_tasks(tasks, log.writes)
    for task in tasks:
        _record_created(process, task, log)
    system_ids = [task.pk for task in tasks if task.kind == "system"]
    if system_ids:
        transaction.on_commit(lambda: enqueue_system_steps(system_ids))

    for repeated in outcome.repeated:
        log.add(process, EventType.LOOP_REPEATED, atom_id=repeated["to"], **repeated)
    process.context = sensitive.seal(sensitive.paths_of(process), outcome.context)
    process.atom_states = dict(outcome.runtime.states)
    process.fired_edges = {atom_id: sorted(targets) for atom_id, targets in outcome.runtime.fired.items()}
    process.lock_version += 1
    process.updated_at = now
    fields = ["context", "atom_states", "fired_edges", "lock_version", "updated_at", "status"]
    if outcome.runtime.loops != process.loops:
        process.loops = {key: dict(value) for key, value in outcome.runtime.loops.items()}
        fields.append("loops")
    if outcome.completed:
        process.status = states.target_of(process.status, "complete")
        process.completed_at = now
        fields.append("completed_at")
        log.add(process, EventType.PROCESS_COMPLETED)
    elif process.status == ProcessStatus.PENDING:
        process.status = ProcessStatus.RUNNING
    log.writes.update(process, fields)
    return tasks


def close_tasks(process: ProcessInstance, tasks: list[TaskInstance], log: EventLog, event: str, now,
                **payload) -> None:
    """Cancel these open (or failed) tasks of the process, read under its lock: each through
    the one writer, its grants revoked, and `event` recorded with `payload` and whose it was."""
    for task in tasks:
        was = task.status
        changes.change_task(task, log.writes, move="cancel", completed_at=now)
        queued = task.kind == "human" and task.assigned_to_id is None
        log.add(process, event, task=task, previous_status=was, role=task.role, queued=queued,
                assigned_to_id=task.assigned_to_id,
                assigned_to=task.assigned_to.get_username() if task.assigned_to_id else None, **payload)
    access.revoke_tasks([task.pk for task in tasks])


def _record_created(process: ProcessInstance, task: TaskInstance, log: EventLog) -> None:
    queued = task.kind == "human" and task.assigned_to_id is None
    log.add(process, EventType.TASK_CREATED, task=task, role=task.role, kind=task.kind, priority=task.priority,
            queued=queued, assigned_to_id=task.assigned_to_id)
    if task.kind == "system":
        return
    if task.assigned_to_id:
        log.add(process, EventType.TASK_ASSIGNED, task=task, assigned_to=task.assigned_to.get_username(),
                assigned_to_id=task.assigned_to_id, role=task.role)
    elif task.data.get("unroutable"):
        log.add(process, EventType.TASK_UNROUTABLE, task=task, role=task.role)


def _new_task(process: ProcessInstance, blueprint: Blueprint, atom_id: str, now, closing: int | None,
              router: routing.BatchRouter | None, route: routing.Route | None, picked: list[bool]) -> TaskInstance:
    atom = blueprint.atoms[atom_id]
    task = maker(TaskInstance).new(
        process=process,
        atom_id=atom_id,
        name=atom.name,
        kind=atom.kind,
        role=atom.role or "",
        priority=atom.priority,
        priority_rank=PRIORITY_RANK[atom.priority],
        due_date=now + atom.sla_target if atom.sla_target else None,
        escalate_at=now + atom.sla_escalation if atom.sla_escalation else None,
        created_at=now,
    )
    if atom.is_system:
        task.pk = router.task_id() if router is not None else None
        return task
    if route is None:
        choose = router.choose if router is not None else routing.choose
        route = choose(task.role, blueprint.roles.get(task.role, DEFAULT), now, closing=closing)
    task.pk = route.task_id
    if route.assignee is not None:
        task.assigned_to = route.assignee
        if route.stamp_at is not None:  # chosen by a routing statement: stamped at the end
            picked.append(True)
    elif route.unroutable:
        task.data = {"unroutable": True}
    return task


def enqueue_system_steps(task_ids: list[int]) -> None:
    """Hand system steps to the workers, by the job's name (the services never import the
    jobs). A broker that is down loses nothing: the steps stay open in the database and the
    sweep `requeue_stale_system_tasks` sends them again."""
    run = job(RUN_SYSTEM_STEP)
    for task_id in task_ids:
        try:
            run.delay(task_id)
        except Exception:  # noqa: BLE001
            logger.warning("could not enqueue system task %s; the sweep will retry", task_id, exc_info=True)
