from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery._state import _set_task_join_will_block
from django.db import connection

from gndp.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
DEMO_FILE = ROOT / "journeys" / "fha-purchase.yaml"
REQUIRE_SERVICES = os.environ.get("GNDP_REQUIRE_SERVICES") == "1"

pytest_plugins = ["tests.fixtures"]


def pytest_configure(config):
    from django.conf import settings

    _allow_flush_of_append_only_tables()
    # Servers and workers the tests start read the sessions and the encrypted fields this
    # process writes: they must sign and derive keys with its SECRET_KEY, whatever var
    # folder they are given (an unset key is generated per folder, gndp.secret).
    os.environ.setdefault("SECRET_KEY", settings.SECRET_KEY)
    # Hashing test passwords slowly protects nothing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Notifications read back right after the call that made them (the in-memory layer's
    # background delivery has tests of its own).
    settings.GNDP_NOTIFICATIONS_INLINE = True
    # No watchdog thread writing anomalies into the test database beside the tests (its own
    # tests run it); servers the tests start as processes of their own have theirs.
    settings.GNDP_WATCHDOG_SECONDS = 0


def _allow_flush_of_append_only_tables() -> None:
    """Test databases are emptied between transactional tests; the event log's triggers
    refuse exactly that. Let the flush (and only the flush) through."""
    from processes.migrations import _append_only

    ops_class = type(connection.ops)
    original = ops_class.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if not statements:
            return statements
        if connection.vendor == "postgresql":
            # Replica mode turns user triggers off for this transaction only (superuser only).
            return ["SET LOCAL session_replication_role = replica", *statements]
        return [*_append_only.SQLITE_REVERSE, *statements, *_append_only.SQLITE_FORWARD]

    ops_class.sql_flush = sql_flush


@pytest.fixture(scope="session", autouse=True)
def _services_present(django_db_setup, django_db_blocker):
    if REQUIRE_SERVICES:
        with django_db_blocker.unblock():
            assert connection.vendor == "postgresql", "CI=true needs PostgreSQL (DATABASE_URL)"
        assert os.environ.get("REDIS_URL"), "CI=true needs Redis (REDIS_URL)"


# Every UPDATE of a task moves its version on by one: the one writer's promise
# (`steps.changes`), held for every test and every server and worker the tests start.
TASK_VERSION_CHECK = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION gndp_task_version_moves() RETURNS trigger AS $$
        BEGIN
            IF NEW.version IS DISTINCT FROM OLD.version + 1 THEN
                RAISE EXCEPTION 'task % changed without moving its version on (% to %)',
                    OLD.id, OLD.version, NEW.version;
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        "DROP TRIGGER IF EXISTS gndp_task_version_moves ON tasks_taskinstance",
        """CREATE TRIGGER gndp_task_version_moves BEFORE UPDATE ON tasks_taskinstance
           FOR EACH ROW EXECUTE FUNCTION gndp_task_version_moves()""",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS gndp_task_version_moves",
        """CREATE TRIGGER gndp_task_version_moves BEFORE UPDATE ON tasks_taskinstance
           WHEN NEW.version IS NOT OLD.version + 1
           BEGIN SELECT RAISE(ABORT, 'task changed without moving its version on'); END""",
    ],
}


@pytest.fixture(scope="session", autouse=True)
def _task_versions_move(request, django_db_setup, django_db_blocker):
    # Only where the session has a test database: with no test using one, none was set up
    # and the connection names the real database.
    if not any(item.get_closest_marker("django_db") or {"db", "transactional_db"} & set(item.fixturenames)
               for item in request.session.items):
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        for statement in TASK_VERSION_CHECK[connection.vendor]:
            cursor.execute(statement)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres" in item.keywords and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            if REQUIRE_SERVICES:
                continue  # the session fixture fails loudly instead
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))


@pytest.fixture(autouse=True)
def _eager_celery():
    """Outside worker tests, system steps run inline right after commit."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_always_eager = False
    # Celery keeps "joining results would block" in one process-wide flag that eager jobs
    # set and restore; jobs run at once by the threads of an in-process server can restore
    # each other's value and leave it set. A later test's eager `.get()` would then refuse.
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _clear_blueprint_cache():
    from processes import graph, versions
    from steps import lookahead
    from tasks import access

    yield
    lookahead.forget_all()  # a flushed database gives its ids out again
    access._permission_id.cache_clear()  # a flush recreates permissions with new ids
    versions._definition.cache_clear()
    versions._containers.cache_clear()
    versions.get_blueprint.cache_clear()
    versions.start_rule_of.cache_clear()
    graph.get_store.cache_clear()


def _database_url() -> str:
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        user = settings_dict.get("USER") or "postgres"
        return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    return f"sqlite:///{settings_dict['NAME']}"


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process on the test database and the configured broker."""
    celery_app.conf.task_always_eager = False
    env = dict(os.environ, DATABASE_URL=_database_url(), GNDP_HANDLER_MODULES="tests.handlers",
               GNDP_RETRY_BACKOFF_BASE="0.1", PYTHONPATH=str(ROOT))
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = connection.settings_dict["NAME"]
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gndp", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"test-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    proc.log_path = log_path
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
