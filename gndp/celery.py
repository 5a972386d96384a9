import os

from celery import Celery, Task
from celery.signals import worker_process_init

from gndp import filequeue  # noqa: F401 - registers the embedded default's broker (gndpfiles://)
from gndp.memory import freeze_startup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")


class Job(Task):
    """Every job's base: a job that met a database connection the server dropped before it
    wrote anything runs once more at once, on a new connection; one that finds the database
    gone (or lost it after writing) is retried later, `GNDP_JOB_DB_RETRIES` times with a
    doubling wait. Jobs are idempotent (at-least-once delivery), so running one again is
    always safe; what runs out of retries is left to the sweeps, which re-send open work.
    Eager jobs (run inside a request, after its commit) and direct calls get the first
    part only: the caller is there to see the error."""

    def __call__(self, *args, **kwargs):
        # Not at the top: this module loads with the `gndp` package, before Django's settings.
        from gndp import db_faults

        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        try:
            # The worker pushed this job's request already: `run`, not `Task.__call__`,
            # which would push a second, empty one over it.
            return db_faults.once_more_if_lost(self.run, *args, **kwargs)
        except Exception as exc:
            if not db_faults.is_unavailable(exc) or self.request.is_eager:
                raise
            from django.conf import settings

            db_faults.discard_connections()
            countdown = min(settings.GNDP_JOB_DB_RETRY_BACKOFF * 2 ** self.request.retries, 60.0)
            raise self.retry(exc=exc, countdown=countdown, max_retries=settings.GNDP_JOB_DB_RETRIES)


app = Celery("gndp", task_cls=Job)
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's Celery work lives in its `jobs.py` (`tasks` is a domain word here: the human task).
app.autodiscover_tasks(related_name="jobs")
# Each worker process writes its own heartbeat row (dashboard, /metrics, anomalies).
app.steps["worker"].add("monitoring.heartbeat:HeartbeatStep")


@worker_process_init.connect
def _freeze_startup(**kwargs) -> None:
    # Each pool process keeps what it started with out of the collector's passes
    # (gndp.memory), as the web server's processes do.
    freeze_startup()
