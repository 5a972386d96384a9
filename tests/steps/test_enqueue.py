"""Jobs are enqueued by name: a process that is not a worker finds them the first time,
from every thread at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIRST_ASKS = """
import json, threading
import django
django.setup()
from gndp.celery import app
from gndp.enqueue import job
from steps.advance import RUN_SYSTEM_STEP

assert RUN_SYSTEM_STEP not in app.tasks.keys(), "the jobs were imported before the first ask"
start, found, failed = threading.Barrier(8), [], []

def ask():
    start.wait()
    try:
        found.append(job(RUN_SYSTEM_STEP).name)
    except Exception as exc:
        failed.append(repr(exc))

threads = [threading.Thread(target=ask) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"found": found, "failed": failed}))
"""


def test_eight_threads_asking_for_a_job_first_all_find_it():
    """Given a fresh server process whose jobs are not yet imported,
    when eight request threads ask for the system step's job at the same moment,
    then every one of them gets it (none is told it is not registered)."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["DJANGO_SETTINGS_MODULE"] = "gndp.settings"
    run = subprocess.run([sys.executable, "-c", FIRST_ASKS], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer == {"found": ["processes.tasks.run_system_task"] * 8, "failed": []}
