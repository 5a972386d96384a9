"""Celery work: running system steps. Delivery is at-least-once (acks_late), so every
entry point first checks the task is still open: a redelivered job finds it done."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from . import handlers, sensitive, versions
from .graph.mirror import mirror_runtime  # noqa: F401  (registers the mirror job with the worker)
from .models import ProcessInstance, ProcessStatus
from .sync import sync_journeys_task  # noqa: F401  (registers the periodic sync with the worker)

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_system_task(self, task_id: int) -> str:
    from tasks.models import OPEN_TASK_STATUSES
    from steps.lockread import read_task
    from tasks.services import complete_system_task, system_task_failed

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
    from tasks.models import OPEN_TASK_STATUSES, TaskInstance

    from steps.advance import enqueue_system_steps

    enqueue_system_steps(list(TaskInstance.objects.filter(
        process_id=process_id, kind="system", status__in=OPEN_TASK_STATUSES, process__status=ProcessStatus.RUNNING,
    ).values_list("pk", flat=True)))


@shared_task
def requeue_stale_system_tasks(older_than_seconds: int = 60) -> int:
    """Re-enqueue open system steps of running processes that nobody picked up (a broker
    outage at commit time, a lost message): the relay for system work. Safe to repeat."""
    from tasks.models import OPEN_TASK_STATUSES, TaskInstance

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


@shared_task
def refresh_process_predictions(limit: int = 500) -> int:
    """Predict when running processes finish and flag those that will miss their journey's
    target (ProcessInstance.predicted_finish, at_risk). Periodic; safe to repeat."""
    from .prediction import refresh_predictions

    return refresh_predictions(limit=limit)
