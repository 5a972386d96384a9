"""Celery work of the processes: running system steps, the sweep that re-sends them, the
predictions, the journey sync and the Neo4j mirror. Delivery is at-least-once (acks_late),
so every job is safe to run twice: a redelivered system step finds its task done.

Each job is registered under an explicit `name=`, which queued messages, the beat schedule
(settings) and the services that enqueue by name (`gndp.enqueue`) carry: a renamed job
would strand the messages already queued under its old name.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from steps.advance import enqueue_system_steps
from steps.lockread import read_task
from tasks.models import OPEN_TASK_STATUSES, TaskInstance
from tasks.services import complete_system_task, system_task_failed

from . import handlers, sensitive, versions
from .graph.base import GraphStoreUnavailable
from .graph.mirror import mirror_events, mirror_store
from .models import ProcessInstance, ProcessStatus
from .prediction import refresh_predictions
from .sync import PUBLISHED, REJECTED, sync_journeys

log = logging.getLogger(__name__)


@shared_task(name="processes.tasks.run_system_task", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def run_system_task(self, task_id: int) -> str:
    task = read_task(task_id)
    if task is None or task.status not in OPEN_TASK_STATUSES:
        if task is not None and self.request.retries:
            # A retry of a run whose COMMIT's answer was lost with the connection (gndp.celery.Job):
            # the commit happened, its after-commit hand-off of the next system steps did not.
            _resend_open_system_tasks(task.process_id)
        return "closed"
    process: ProcessInstance = task.process
    if process.status != ProcessStatus.RUNNING:
        return "process not running"  # resume re-enqueues it
    atom = versions.get_blueprint(process.version_id, process.workflow_id).atoms[task.atom_id]
    attempt = task.attempts + 1
    try:
        # Handlers run in the worker, where plaintext may exist; only ids travel in the message.
        # A value no configured key decrypts fails the attempt like a handler error would.
        context = dict(sensitive.reveal(sensitive.paths_of(process), process.context),
                       _process_id=process.pk, _task_id=task.pk)
        result = handlers.run(atom.handler, context, atom.params)
    except Exception as exc:  # noqa: BLE001 - any handler failure is a failed attempt
        error = f"{type(exc).__name__}: {exc}"
        log.warning("system step %s (task %s) attempt %s failed: %s", atom.id, task_id, attempt, error)
        delay = system_task_failed(task_id, error, attempt=attempt)
        if delay is not None:
            raise self.retry(countdown=delay, exc=None)
        return "failed"
    complete_system_task(task_id, result, attempt=attempt)
    return "completed"


def _resend_open_system_tasks(process_id: int) -> None:
    """Hand the open system steps of a running process to the workers again (each run checks
    its step is still open first, so a step sent twice runs once)."""
    enqueue_system_steps(list(TaskInstance.objects.filter(
        process_id=process_id, kind="system", status__in=OPEN_TASK_STATUSES, process__status=ProcessStatus.RUNNING,
    ).values_list("pk", flat=True)))


@shared_task(name="processes.tasks.requeue_stale_system_tasks")
def requeue_stale_system_tasks(older_than_seconds: int = 60) -> int:
    """Re-enqueue open system steps of running processes that nobody picked up (a broker
    outage at commit time, a lost message): the relay for system work. Safe to repeat."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    ids = list(
        TaskInstance.objects.filter(
            kind="system", status__in=OPEN_TASK_STATUSES, process__status=ProcessStatus.RUNNING,
            created_at__lt=cutoff,
        ).values_list("pk", flat=True)[:1000]
    )
    for task_id in ids:
        run_system_task.delay(task_id)
    return len(ids)


@shared_task(name="processes.tasks.refresh_process_predictions")
def refresh_process_predictions(limit: int = 500) -> int:
    """Predict when running processes finish and flag those that will miss their journey's
    target (ProcessInstance.predicted_finish, at_risk). Periodic; safe to repeat."""
    return refresh_predictions(limit=limit)


@shared_task(name="processes.sync.sync_journeys_task", ignore_result=True)
def sync_journeys_task() -> str:
    """The periodic journey sync: what `manage.py sync_journeys` does, logged instead of printed."""
    try:
        report = sync_journeys()
    except GraphStoreUnavailable as exc:
        log.warning("journey sync skipped: %s", exc.message)
        return "unavailable"
    for item in report.journeys:
        if item.outcome == PUBLISHED:
            log.info("journey sync: %s", item.line)
        elif item.outcome == REJECTED:
            log.warning("journey sync: %s", item.line)
    return report.summary


@shared_task(name="processes.graph.mirror.mirror_runtime", ignore_result=True)
def mirror_runtime(max_events: int = 10_000) -> str:
    """The periodic Neo4j mirror. Bounded per run so that a backlog is drained over several runs."""
    store = mirror_store()
    if store is None:
        return "off"
    try:
        run = mirror_events(store, max_events=max_events)
    except GraphStoreUnavailable as exc:
        # The engine does not depend on the graph: the next run resumes from the cursor.
        log.warning("runtime mirror paused: %s", exc.message)
        return "unavailable"
    return f"{run.events} events, cursor {run.cursor}"
