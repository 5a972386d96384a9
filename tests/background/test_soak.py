"""bench/soak.py against make run's setup: a supervised worker with its beat, no Redis, a
SQLite file, the demo users. A short soak with worker kills passes; with the worker gone
and nothing supervising it, the soak says what was lost and exits 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.background.embedded import EmbeddedApp
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def soak(app: EmbeddedApp, *args: str) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "bench/soak.py", "--url", app.url, *args], cwd=ROOT, env=app.env,
                          capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr[-3000:]


def test_a_short_soak_with_worker_kills_loses_nothing_and_a_lost_worker_fails_it(transactional_db, tmp_path):
    # given make run's setup, its worker under the supervisor with the beat inside
    app = EmbeddedApp(tmp_path, "sqlite")
    app.prepare(demo=True)
    var = tmp_path / "var"
    worker = [sys.executable, "-m", "gndp.supervisor", "--log", str(var / "worker.log"), "--min-backoff", "0.5", "--",
              sys.executable, "-m", "celery", "-A", "gndp", "worker", "--concurrency=2", "--loglevel=INFO", "--beat",
              "-s", str(var / "celerybeat-schedule")]
    app.start(worker=worker, worker_log=var / "worker.log")
    try:
        # when the soak runs 20 s, a round a second, killing the worker every 8 s
        code, figures, stderr = soak(app, "--minutes", "0.33", "--interval", "1", "--kill-worker-every", "8",
                                     "--deadline", "200")
        # then every process completed, every review step arrived live once, every kill was reported
        assert code == 0, (figures, stderr)
        assert figures["processes_started"] >= 10 and figures["processes_lost"] == 0
        assert figures["review_steps_seen_live"] == figures["review_steps_made_by_system_steps"] == \
            figures["processes_started"]
        assert (figures["review_steps_missed_live"], figures["review_steps_seen_twice"]) == (0, 0)
        assert figures["worker_kills"] >= 1 and figures["worker_deaths_reported"] == figures["worker_kills"]
        assert figures["worker_deaths_unreported"] == 0 and figures["api_server_errors"] == 0
        assert (figures["broker"], figures["database"]) == ("gndpfiles", "sqlite3")

        # when the worker and its supervisor are gone (kill -9 of them all)
        app.children[-1].stop(signal.SIGKILL)
        pids = [int(line.split("pid ")[1].split(")")[0]) for line in (var / "worker.log").read_text().splitlines()
                if "gndp-supervisor: worker started" in line]
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code, figures, stderr = soak(app, "--minutes", "0.1", "--interval", "1", "--deadline", "5")
        # then the soak says what was lost, and fails
        assert code == 1, (figures, stderr)
        assert figures["processes_lost"] == figures["processes_started"] > 0
        assert figures["worker_deaths_unreported"] == 1 and figures["worker_deaths_reported"] == 0
    finally:
        app.stop()
