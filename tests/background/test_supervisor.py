"""`make run`'s worker supervisor (gndp/supervisor.py): a worker killed with kill -9 comes
back and the death is said on the console and in the log; a crash loop backs off; the
supervisor does not outlive whoever started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.background.conftest import DIED, STARTED, Supervised, alive, app_env, wait_until, worker_argv
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.worker
def test_a_worker_killed_with_kill_9_is_started_again_and_the_death_is_said(transactional_db, tmp_path):
    # given a supervised Celery worker that is ready
    supervised = Supervised(tmp_path, worker_argv("supervised"), "--min-backoff", "0.5", env=app_env(tmp_path))
    try:
        first = int(wait_until(lambda: STARTED.search(supervised.said()), 30, "the first start")[1])
        wait_until(lambda: supervised.logged().count("ready.") == 1, 60, "the worker to be ready")
        # when it is killed with kill -9
        os.kill(first, signal.SIGKILL)
        # then the console and the log say so, and a new worker starts and gets ready
        died = wait_until(lambda: DIED.search(supervised.said()), 30, "the death to be said")
        assert (int(died[1]), died[2], died[3], died[4]) == (first, "killed by SIGKILL", "1", "0.5")
        assert died[0] in supervised.logged()
        second = int(wait_until(lambda: (STARTED.findall(supervised.said()) + [None, None])[1], 30, "a restart"))
        assert second != first and alive(second)
        wait_until(lambda: supervised.logged().count("ready.") == 2, 60, "the new worker to be ready")
    finally:
        # and stopping the supervisor stops its worker
        assert supervised.stop() == 0
    assert not alive(second)


def test_a_crash_loop_backs_off_instead_of_spinning(tmp_path):
    # given a command that dies at once, every time
    crash = [sys.executable, "-c", "import sys; sys.exit(3)"]
    supervised = Supervised(tmp_path, crash, "--min-backoff", "0.2", "--max-backoff", "1.6")
    # when it is supervised for 5 s
    time.sleep(5)
    supervised.stop()
    # then each restart waited twice as long as the one before, up to the cap
    deaths = DIED.findall(supervised.said())
    assert [why for _, why, _, _ in deaths] == ["exited with code 3"] * len(deaths)
    assert [float(delay) for *_, delay in deaths][:5] == [0.2, 0.4, 0.8, 1.6, 1.6][:len(deaths)]
    assert 3 <= len(deaths) <= 6, supervised.said()


def test_the_supervisor_stops_its_worker_when_whoever_started_it_is_gone(tmp_path):
    # given a supervisor started by a shell (as make run starts it), supervising a sleeper
    pids = tmp_path / "pids"
    script = (f"{sys.executable} -m gndp.supervisor --log {tmp_path}/worker.log -- sleep 600 "
              f"2>{tmp_path}/console.txt & echo $! > {pids}; wait")
    shell = subprocess.Popen(["bash", "-c", script], cwd=ROOT, start_new_session=True)
    supervisor = int(wait_until(lambda: pids.exists() and pids.read_text().strip(), 20, "the supervisor"))
    console = tmp_path / "console.txt"
    child = int(wait_until(lambda: STARTED.search(console.read_text()), 30, "the child")[1])
    # when the shell is killed with kill -9
    shell.kill()
    shell.wait()
    # then the supervisor stops its child and exits
    wait_until(lambda: not alive(supervisor) and not alive(child), 20, "the supervisor and its child to stop")
    assert "the process that started me is gone" in console.read_text()


def test_what_a_dead_worker_leaves_behind_in_its_session_goes_with_it(tmp_path):
    # given a supervised command that has a process of its own (as a prefork worker has its pool)
    orphan_file = tmp_path / "orphan"
    command = ["bash", "-c", f"sleep 600 & echo $! > {orphan_file}; exec sleep 601"]
    supervised = Supervised(tmp_path, command, "--min-backoff", "5")
    try:
        first = int(wait_until(lambda: STARTED.search(supervised.said()), 30, "the start")[1])
        orphan = int(wait_until(lambda: orphan_file.exists() and orphan_file.read_text().strip(), 10, "the orphan"))
        # when the command itself is killed
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: DIED.search(supervised.said()), 30, "the death to be said")
        # then its orphan is killed too, before anything is started again
        wait_until(lambda: not alive(orphan), 5, "the orphan to be gone")
    finally:
        supervised.stop()
