"""The server's processes freeze what startup built (`gndp.memory`): the collector's full
passes then walk only what requests created."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import gc, json, sys
import gndp.asgi
frozen = gc.get_freeze_count()
gc.unfreeze()
everything = len(gc.get_objects())
print(json.dumps({"frozen": frozen, "everything": everything, "views_loaded": "tasks.api" in sys.modules}))
"""


def test_the_asgi_application_freezes_what_startup_loaded():
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["views_loaded"]  # the URLconf and its views were loaded before the freeze
    # Nearly all of what the process holds after startup is frozen.
    assert result["frozen"] > 0.9 * result["everything"]


def test_celery_pool_processes_freeze_at_start():
    from celery.signals import worker_process_init

    from gndp.celery import _freeze_startup

    assert any(receiver() is _freeze_startup for _, receiver in worker_process_init.receivers)
