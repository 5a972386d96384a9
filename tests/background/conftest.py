"""Real workers, servers and a journey whose steps are system steps, for the tests of
background work on the embedded default (and on PostgreSQL and Redis, when configured)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection

from gndp.celery import app as celery_app
from processes.versions import publish_journey
from tests.conftest import ROOT, _database_url

# A system step first, then a person's step it creates, then another system step.
BACKGROUND_JOURNEY = """
format: gndp-journey/1
journey: {id: journey-bg, name: Background work}
roles:
  - {id: role-bg, name: Background clerk}
phases:
  - id: phase-bg
    name: Background work
    modules:
      - {id: module-bg, name: Background work, atoms: [bg-check, bg-review, bg-close]}
atoms:
  - {id: bg-check, name: Credit check, kind: system, handler: set_context, params: {checked: true}}
  - {id: bg-review, name: Review, performed_by: role-bg}
  - {id: bg-close, name: Close, kind: system, handler: noop}
edges:
  - {type: ENABLES, from: bg-check, to: bg-review}
  - {type: ENABLES, from: bg-review, to: bg-close}
"""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def app_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a server or worker on the test database; REDIS_URL as the tests
    run (unset: the embedded default's folder queue and in-memory channel layer)."""
    env = {key: value for key, value in os.environ.items() if key != "CELERY_TASK_ALWAYS_EAGER"}
    # The test process's own folder: without Redis, what it enqueues goes to the folder queue
    # there, which the workers must read.
    env.update(DATABASE_URL=_database_url(), PYTHONPATH=str(ROOT), GNDP_VAR_DIR=str(settings.VAR_DIR),
               LOG_LEVEL="INFO")
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = connection.settings_dict["NAME"]
    env.update(extra)
    return {key: value for key, value in env.items() if value is not None}


STARTED = re.compile(r"gndp-supervisor: worker started \(pid (\d+)\)")
DIED = re.compile(r"gndp-supervisor: worker \(pid (\d+)\) died: (.+?) after [\d.]+ s; restart (\d+) in ([\d.]+) s")


class Supervised:
    """`python -m gndp.supervisor` as `make run` starts it, its console read from a file."""

    def __init__(self, tmp_path: Path, command: list[str], *extra: str, env: dict | None = None):
        self.log = tmp_path / "worker.log"
        self.console = tmp_path / "console.txt"
        with open(self.console, "w") as console:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gndp.supervisor", "--log", str(self.log), *extra, "--", *command],
                cwd=ROOT, env=env or dict(os.environ), stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True)

    def said(self) -> str:
        return self.console.read_text()

    def logged(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def started_pids(self) -> list[int]:
        return [int(pid) for pid in STARTED.findall(self.said())]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent) still answers signal 0.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


class Child:
    """A server or worker process in its own session, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], tmp_path: Path):
        self.name, self.log_path = name, tmp_path / f"{name}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 60, count: int = 1) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
            return self.log().count(text) >= count

        wait_until(seen, timeout, f"{text!r} in the log of {self.name}")

    def send(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
        self.send(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.proc.wait(timeout=10)


def worker_argv(name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "gndp", "worker", "--pool=solo", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
            *extra]


@pytest.fixture
def children(transactional_db, tmp_path):
    """Start workers and uvicorn servers on the test database; all are killed at teardown,
    before the database is emptied."""
    started: list[Child] = []
    celery_app.conf.task_always_eager = False

    class Start:
        def worker(self, name: str = "worker", *, queues: str = "", argv: tuple[str, ...] = (), **env: str) -> Child:
            child = Child(name, worker_argv(name, *(["-Q", queues] if queues else []), *argv),
                          app_env(tmp_path, **env), tmp_path)
            started.append(child)
            child.wait_for_log("ready.")
            return child

        def server(self, name: str = "server", **env: str) -> Child:
            from tests.reliability.conftest import free_port

            port = free_port()
            child = Child(name, [sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--host", "127.0.0.1",
                                 "--port", str(port), "--lifespan", "off", "--no-access-log"],
                          app_env(tmp_path, **env), tmp_path)
            child.url = f"http://127.0.0.1:{port}"
            started.append(child)
            import requests

            def up() -> bool:
                if child.proc.poll() is not None:
                    raise AssertionError(f"{name} exited:\n{child.log()[-3000:]}")
                try:
                    return requests.get(child.url + "/accounts/login/", timeout=1,
                                        proxies={"http": None}).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(up, 40, f"{name} to answer")
            return child

    try:
        yield Start()
    finally:
        for child in started:
            child.stop()
        connection.close()


@pytest.fixture
def background_version(transactional_db):
    return publish_journey(yaml.safe_load(BACKGROUND_JOURNEY)).version


@pytest.fixture
def purge_broker():
    """Drop the messages a test left for workers that never ran (the broker outlives it)."""
    yield
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
