import os

from celery import Celery
from celery.signals import worker_process_init

from gndp import filequeue  # noqa: F401 - registers the embedded default's broker (gndpfiles://)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")

app = Celery("gndp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker process writes its own heartbeat row (dashboard, /metrics, anomalies).
app.steps["worker"].add("monitoring.heartbeat:HeartbeatStep")


@worker_process_init.connect
def _freeze_startup(**kwargs) -> None:
    # Each pool process keeps what it started with out of the collector's passes
    # (gndp.memory), as the web server's processes do.
    from gndp.memory import freeze_startup

    freeze_startup()
