"""The Celery jobs are found in each app's `jobs.py`, under the names that queued messages,
the beat schedule and the services (which enqueue by name) use."""

from __future__ import annotations

from django.conf import settings

from gndp.celery import app
from notifications import delivery, relay
from steps import advance

JOBS = {
    "processes.tasks.run_system_task": "processes.jobs",
    "processes.tasks.requeue_stale_system_tasks": "processes.jobs",
    "processes.tasks.refresh_process_predictions": "processes.jobs",
    "processes.sync.sync_journeys_task": "processes.jobs",
    "processes.graph.mirror.mirror_runtime": "processes.jobs",
    "notifications.tasks.deliver_events": "notifications.jobs",
    "notifications.tasks.relay_events": "notifications.jobs",
    "notifications.tasks.send_notification_emails": "notifications.jobs",
    "notifications.tasks.flush_pending_emails": "notifications.jobs",
    "monitoring.tasks.sweep_sla": "monitoring.jobs",
    "anomalies.tasks.detect_anomalies": "anomalies.jobs",
    "privacy.tasks.purge_expired_processes": "privacy.jobs",
}


def test_every_job_keeps_its_name_and_lives_in_a_jobs_module():
    """Given the Celery app as a worker starts it,
    when it loads its modules (autodiscovery of the apps' `jobs` modules),
    then exactly the known jobs are registered, each from its app's jobs.py."""
    app.loader.import_default_modules()

    registered = {name: task.run.__module__ for name, task in app.tasks.items() if not name.startswith("celery.")}

    assert registered == JOBS


def test_the_beat_schedule_and_the_services_name_registered_jobs():
    """Given the names the beat schedule and the services send work under,
    when the registered jobs are loaded,
    then each name is one of them."""
    app.loader.import_default_modules()

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    enqueued = {advance.RUN_SYSTEM_STEP, relay.DELIVER_EVENTS, delivery.SEND_EMAILS}

    assert scheduled | enqueued <= set(JOBS)
