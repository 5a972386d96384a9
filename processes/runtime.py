"""Persisting what the engine core decided: atom states, new tasks, events, effects.

Called by the services inside their transaction, with the process row already locked.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from steps import lookahead
from tasks import access, routing
from tasks.models import PRIORITY_RANK, TaskInstance

from . import sensitive
from .engine import core
from .engine.blueprint import Blueprint
from .events import EventLog
from .models import EventType, ProcessInstance, ProcessStatus
from steps.rows import maker

logger = logging.getLogger(__name__)


def runtime_of(process: ProcessInstance) -> core.Runtime:
    return core.Runtime(
        states=process.atom_states,
        fired={atom_id: frozenset(targets) for atom_id, targets in process.fired_edges.items()},
    )


def _store_runtime(process: ProcessInstance, step: core.Step) -> None:
    process.atom_states = dict(step.runtime.states)
    process.fired_edges = {atom_id: sorted(targets) for atom_id, targets in step.runtime.fired.items()}


def apply_step(process: ProcessInstance, blueprint: Blueprint, step: core.Step, log: EventLog,
               closing: TaskInstance | None = None, router: routing.BatchRouter | None = None,
               routes: dict[str, routing.Route] | None = None) -> list[TaskInstance]:
    """Create the tasks of newly active atoms and close the process when it is done.

    Saves the process row with the new atom states and context (`step.context` is
    plaintext; its sensitive fields are stored encrypted). `closing`: the task this step
    completes, whose own update waits in `log.writes`; routing counts it as closed.
    `router`: routes for a whole batch of steps (a bulk start) instead of one statement a task.
    `routes`: atoms already routed, under the same lock (`steps.lookahead`); the others are
    routed now, together where there are several.
    """
    now = timezone.now()
    routes = routes or {}
    unrouted = [atom_id for atom_id in step.activated if atom_id not in routes]
    if router is None and len(unrouted) > 1:
        routes = {**routes, **lookahead.route_together(blueprint, unrouted,
                                                         closing=closing.pk if closing is not None else None)}
    picked: list[bool] = []
    tasks = [_new_task(process, blueprint, atom_id, now, closing, router, routes.get(atom_id), picked)
             for atom_id in step.activated]
    log.writes.insert(tasks, need_ids=True)
    if picked:
        # The chosen people's profiles, stamped with the step's writes in user id order: the
        # lock order every transaction keeps (`tasks.routing`).
        routing.stamp_routed(log.writes)
    for task in tasks:
        lookahead.remember(task.pk, process, task.atom_id)
    access.grant_new_tasks(tasks, log.writes)
    for task in tasks:
        queued = task.kind == "human" and task.assigned_to_id is None
        log.add(process, EventType.TASK_CREATED, task=task, role=task.role, kind=task.kind, priority=task.priority,
                queued=queued, assigned_to_id=task.assigned_to_id)
        if task.kind == "system":
            continue
        if task.assigned_to_id:
            log.add(process, EventType.TASK_ASSIGNED, task=task, assigned_to=task.assigned_to.get_username(),
                    assigned_to_id=task.assigned_to_id, role=task.role)
        elif task.data.get("unroutable"):
            log.add(process, EventType.TASK_UNROUTABLE, task=task, role=task.role)
    system_ids = [task.pk for task in tasks if task.kind == "system"]
    if system_ids:
        transaction.on_commit(lambda: enqueue_system_tasks(system_ids))

    process.context = sensitive.seal(sensitive.paths_of(process), step.context)
    _store_runtime(process, step)
    process.lock_version += 1
    process.updated_at = now
    fields = ["context", "atom_states", "fired_edges", "lock_version", "updated_at", "status"]
    if step.completed:
        process.status = ProcessStatus.COMPLETED
        process.completed_at = now
        fields.append("completed_at")
        log.add(process, EventType.PROCESS_COMPLETED)
    elif process.status == ProcessStatus.PENDING:
        process.status = ProcessStatus.RUNNING
    log.writes.update(process, fields)  # sent with the events, by log.flush()
    return tasks


def _new_task(process: ProcessInstance, blueprint: Blueprint, atom_id: str, now,
              closing: TaskInstance | None, router: routing.BatchRouter | None,
              route: routing.Route | None, picked: list[bool]) -> TaskInstance:
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
        route = choose(task.role, blueprint.roles.get(task.role, routing.LEAST_BUSY), now,
                       closing=closing.pk if closing is not None else None)
    task.pk = route.task_id
    if route.assignee is not None:
        task.assigned_to = route.assignee
        if route.stamp_at is not None:  # chosen by a routing statement: stamped at the end
            picked.append(True)
    elif route.unroutable:
        task.data = {"unroutable": True}
    return task


def enqueue_system_tasks(task_ids: list[int]) -> None:
    """Hand system steps to the workers. A broker that is down loses nothing: the steps
    stay open in the database and `requeue_stale_system_tasks` sends them again."""
    from .tasks import run_system_task

    for task_id in task_ids:
        try:
            run_system_task.delay(task_id)
        except Exception:  # noqa: BLE001
            logger.warning("could not enqueue system task %s; the sweep will retry", task_id, exc_info=True)
