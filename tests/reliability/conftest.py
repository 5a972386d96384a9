"""Fault-test harness: real processes on loopback, started, broken and restarted by the tests.

`cluster` gives a test what it asks for: a private Redis on a spare port, uvicorn servers
and Celery workers on the test database, each its own process group, all SIGKILLed at
teardown (before pytest-django empties the database). Each server and worker sets
PGAPPNAME, so `pg_stat_activity.application_name` tells the tests which backend is whose.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from django.db import connection

import tests.reliability.handlers  # noqa: F401 - registers rel_* for publishing the journeys
from gndp.celery import app as celery_app
from processes.versions import publish_journey
from tests.conftest import ROOT, _database_url
from tests.factories import UserFactory
from tests.reliability import journeys

REQUIRE_SERVICES = os.environ.get("GNDP_REQUIRE_SERVICES") == "1"
REDIS_SERVER = shutil.which("redis-server")
NO_PROXY = {"http": None, "https": None}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """One child process in its own session (so a kill reaches its children too)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path):
        self.name, self.argv, self.env, self.logdir = name, argv, env, logdir
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None

    def start(self) -> "Proc":
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self.log_path = self.logdir / f"{self.name}-{self.starts}.log"
        with open(self.log_path, "w") as log:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """kill -9 of the whole process group; waits until it is gone."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text()[-tail:] if self.log_path and self.log_path.exists() else ""


class PrivateRedis(Proc):
    def __init__(self, logdir: Path):
        self.port = free_port()
        super().__init__("redis", [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(logdir)], dict(os.environ), logdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        super().start()
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._ping(client), 10, what="redis to answer")
        return self

    @staticmethod
    def _ping(client) -> bool:
        try:
            return client.ping()
        except Exception:  # noqa: BLE001
            return False


class Server(Proc):
    """The app under uvicorn: one process, like one replica behind a load balancer."""

    def __init__(self, name: str, env: dict[str, str], logdir: Path):
        self.port = free_port()
        super().__init__(name, [sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--host", "127.0.0.1",
                                "--port", str(self.port), "--lifespan", "off", "--no-access-log"], env, logdir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 40) -> "Server":
        def up() -> bool:
            if not self.alive:
                raise AssertionError(f"{self.name} exited:\n{self.log()}")
            try:
                return requests.get(self.url + "/accounts/login/", timeout=1, proxies=NO_PROXY).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout, 0.1, f"{self.name} to answer")
        return self


class Worker(Proc):
    def __init__(self, name: str, env: dict[str, str], logdir: Path, pool: str = "solo"):
        argv = [sys.executable, "-m", "celery", "-A", "gndp", "worker", f"--pool={pool}", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
        if pool == "prefork":
            argv.append("--concurrency=1")
        super().__init__(name, argv, env, logdir)

    def wait_ready(self, timeout: float = 40) -> "Worker":
        def up() -> bool:
            if not self.alive:
                raise AssertionError(f"{self.name} exited:\n{self.log()}")
            return "ready." in self.log_path.read_text()

        wait_for(up, timeout, 0.1, f"{self.name} to be ready")
        return self


class Cluster:
    """What a fault test runs against; everything it started dies at teardown."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.ledger = tmp_path / "ledger"
        self.ledger.mkdir()
        (tmp_path / "var").mkdir()
        self.database_url = _database_url()
        self.procs: list[Proc] = []
        self.redis: PrivateRedis | None = None
        self.cleanups: list = []

    # --- processes ------------------------------------------------------------------------
    def start_redis(self) -> PrivateRedis:
        if REDIS_SERVER is None:
            if REQUIRE_SERVICES:
                pytest.fail("redis-server is required for the fault tests")
            pytest.skip("needs the redis-server binary")
        self.redis = PrivateRedis(self.dir)
        self.procs.append(self.redis)
        return self.redis.start()

    def env(self, name: str, *, redis: bool, eager: bool = False, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")}
        env.update(DATABASE_URL=self.database_url, PYTHONPATH=str(ROOT), PGAPPNAME=f"rel-{name}",
                   GNDP_HANDLER_MODULES="tests.reliability.handlers", GNDP_REL_LEDGER=str(self.ledger),
                   GNDP_VAR_DIR=str(self.dir / "var"), GNDP_RETRY_BACKOFF_BASE="0.1", GNDP_RETRY_BACKOFF_MAX="1",
                   LOG_LEVEL="WARNING")
        if redis:
            env["REDIS_URL"] = self.redis.url
        if eager:
            env["CELERY_TASK_ALWAYS_EAGER"] = "1"
        env.update(extra)
        return env

    def server(self, name: str = "server", *, redis: bool = True, eager: bool = False, start: bool = True,
               **env: str) -> Server:
        server = Server(name, self.env(name, redis=redis, eager=eager, **env), self.dir)
        self.procs.append(server)
        return server.start() if start else server

    def worker(self, name: str = "worker", *, pool: str = "solo", start: bool = True, **env: str) -> Worker:
        worker = Worker(name, self.env(name, redis=True, **env), self.dir, pool=pool)
        self.procs.append(worker)
        return worker.start() if start else worker

    def close(self) -> None:
        errors = []
        for proc in self.procs:
            try:
                proc.kill()
            except Exception as exc:  # noqa: BLE001 - kill the others all the same
                errors.append(f"{proc.name}: {exc!r}")
        for cleanup in reversed(self.cleanups):
            cleanup()
        assert not errors, errors

    # --- the broker, as beat and late redeliveries use it ------------------------------------
    def send_task(self, name: str, *args) -> None:
        with celery_app.connection_for_write(self.redis.url) as conn:
            celery_app.send_task(name, args=list(args), connection=conn)

    def sweep(self, older_than: int = 0) -> None:
        """What beat does every 30 s: a worker runs `requeue_stale_system_tasks`."""
        self.send_task("processes.tasks.requeue_stale_system_tasks", older_than)

    def redeliver_unacked(self) -> list[str]:
        """What the Redis transport does once a message's visibility timeout has passed: put
        every delivered-but-unacknowledged message back on its queue. (Settings fix the
        timeout at 3600 s, so the test triggers the transport's own restore early.) Returns
        the names of the jobs put back."""
        import json

        from kombu import Connection

        with Connection(self.redis.url, transport_options={"visibility_timeout": 0}) as conn:
            qos = conn.default_channel.qos
            client = conn.default_channel.client
            names = [json.loads(raw)[0]["headers"]["task"] for raw in client.hvals(qos.unacked_key)]
            qos.restore_visible(num=1000)
            return names

    def queue_empty(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.redis.url)
        return client.llen("celery") == 0 and client.zcard("unacked_index") == 0

    # --- the side-effect ledger ----------------------------------------------------------------
    def attempts(self, task_id: int) -> int:
        path = self.ledger / f"attempts-{task_id}"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def effects(self, task_id: int) -> int:
        return int((self.ledger / f"effect-{task_id}").exists())


@pytest.fixture
def cluster(transactional_db, tmp_path):
    celery_app.conf.task_always_eager = False
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        connection.close()


# --- data -------------------------------------------------------------------------------------

class Api:
    """A token-authenticated HTTP client of one user, against whichever server it is given."""

    def __init__(self, user, token: str):
        self.user = user
        self.username = user.username
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: never through a proxy from the environment
        self.session.headers["Authorization"] = f"Token {token}"

    def post(self, base: str, path: str, body=None, *, key: str | None = None, timeout: float = 30):
        headers = {"Idempotency-Key": key} if key else {}
        return self.session.post(base + path, json=body if body is not None else {}, headers=headers,
                                 timeout=timeout)

    def get(self, base: str, path: str, timeout: float = 30, **params):
        return self.session.get(base + path, params=params, timeout=timeout)


def make_api(username: str, roles=(), superuser: bool = False) -> Api:
    from rest_framework.authtoken.models import Token

    user = UserFactory(username=username, roles=list(roles))
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save(update_fields=["is_superuser", "is_staff"])
    token, _ = Token.objects.get_or_create(user=user)
    return Api(user, token.key)


@pytest.fixture
def publish(transactional_db):
    def publish_one(text: str):
        return publish_journey(yaml.safe_load(text)).version

    return publish_one


@pytest.fixture
def crash_journey(publish):
    return publish(journeys.CRASH)


@pytest.fixture
def rel_clerk(transactional_db) -> Api:
    return make_api("rel-clerk", roles=["role-rel"])
