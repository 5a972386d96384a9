"""S8 (role separation): the app's database role does not own the event log and is refused
UPDATE, DELETE and TRUNCATE on it by privilege, not only by the trigger.

Everything happens for real in a database of its own: `setup_db_roles` as the superuser,
`migrate` as the owner role (DATABASE_OWNER_URL), the app as the app role.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.conftest import ROOT

EVENTS = "processes_processevent"

APP_RUN = """
import yaml
from processes.models import ProcessEvent
from processes.services import start_process
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.factories import UserFactory
from tests.fixtures import SMALL_JOURNEY

publish_journey(yaml.safe_load(SMALL_JOURNEY))
clerk = UserFactory(username="clara", roles=["role-clerk"])
process = start_process(workflow_id="journey-small", user=clerk)
task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 700})
print(process.pk, ProcessEvent.objects.filter(process=process).count())
"""


def _url(user: str, database: str) -> str:
    settings = connection.settings_dict
    return f"postgres://{user}@{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/{database}"


def _connect(user: str, database: str, **kwargs) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(host=settings.get("HOST") or "127.0.0.1", port=settings.get("PORT") or 5432,
                           user=user, dbname=database, password=settings.get("PASSWORD") or None, **kwargs)


def _manage(*args: str, env: dict[str, str]) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_OWNER_URL"}
    environment.update(env, PYTHONPATH=str(ROOT), CELERY_TASK_ALWAYS_EAGER="1", PGAPPNAME="sec-roles")
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def roles_db():
    """A database of its own and two roles of its own (roles are server-wide)."""
    superuser = connection.settings_dict.get("USER") or "postgres"
    name = f"{connection.settings_dict['NAME']}_roles_{os.getpid()}"
    owner, app = f"{name}_owner", f"{name}_app"
    with _connect(superuser, "postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield {"name": name, "owner": owner, "app": app, "superuser": superuser}
    with _connect(superuser, "postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (owner, app):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _refused(conn: psycopg.Connection, statement: str) -> str:
    """The error PostgreSQL gives the statement (in a transaction that is rolled back)."""
    with pytest.raises(psycopg.Error) as caught:
        with conn.transaction():
            conn.execute(statement)
    assert isinstance(caught.value, psycopg.errors.InsufficientPrivilege), caught.value
    return str(caught.value).splitlines()[0]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db
def test_app_role_cannot_change_or_empty_the_event_log_even_without_the_trigger(roles_db):
    db, owner, app, superuser = roles_db["name"], roles_db["owner"], roles_db["app"], roles_db["superuser"]

    # given: roles set up by the superuser, the schema migrated by the owner, the app run by the app role
    setup = _manage("setup_db_roles", "--owner", owner, "--app", app, env={"DATABASE_URL": _url(superuser, db)})
    assert f"created role {owner}" in setup and f"created role {app}" in setup
    migrated = _manage("migrate", "--noinput",
                       env={"DATABASE_URL": _url(app, db), "DATABASE_OWNER_URL": _url(owner, db)})
    assert f"granted {app} read and write on public, append and read only on {EVENTS}" in migrated
    ran = _manage("shell", "--no-imports", "-c", APP_RUN, env={"DATABASE_URL": _url(app, db)})
    process_id, events = map(int, ran.split())
    assert events >= 5
    assert _manage("verify_audit", env={"DATABASE_URL": _url(app, db)}).startswith(f"OK: {events} events of 1 processes")

    with _connect(superuser, db, autocommit=True) as admin:
        owners = admin.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        app_owns = admin.execute("SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", [app]).fetchone()[0]
        member = admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app, owner]).fetchone()[0]
    assert owners == [(owner,)]  # migrations ran as the owner: it owns every table
    assert app_owns == 0 and member is False

    with _connect(app, db, autocommit=True) as as_app:
        # the engine's view of the rows (row-level security, gndp.rls): this test is about privileges
        as_app.execute("SELECT set_config('gndp.scope', 'engine', false)")
        # when: the app role tries to rewrite history, with the trigger in place
        assert _refused(as_app, f"UPDATE {EVENTS} SET username = 'mallory'") == f"permission denied for table {EVENTS}"
        assert _refused(as_app, f"DELETE FROM {EVENTS}") == f"permission denied for table {EVENTS}"
        assert _refused(as_app, f"TRUNCATE {EVENTS}") == f"permission denied for table {EVENTS}"
        # ... or to get the trigger out of its way: only an owner may
        assert _refused(as_app, f"ALTER TABLE {EVENTS} DISABLE TRIGGER ALL") == f"must be owner of table {EVENTS}"
        assert _refused(as_app, f"DROP TRIGGER processevent_no_update_delete ON {EVENTS}") == \
            f"must be owner of relation {EVENTS}"
        # it still appends and reads, and writes the other tables
        with as_app.transaction(force_rollback=True):
            as_app.execute(f"INSERT INTO {EVENTS} (process_id, type, timestamp, user_id, username, task_id, atom_id, "
                           f"payload, row_hash) VALUES (%s, 'sla.warning', now(), NULL, '', NULL, '', '{{}}', '')",
                           [process_id])
            as_app.execute("UPDATE processes_processinstance SET failure = '' WHERE id = %s", [process_id])
            assert as_app.execute(f"SELECT count(*) FROM {EVENTS}").fetchone()[0] == events + 1

        # when: the superuser switches the append-only triggers off
        with _connect(superuser, db, autocommit=True) as admin:
            admin.execute(f"ALTER TABLE {EVENTS} DISABLE TRIGGER USER")
        # then: nothing stops the owner any more (the trigger really is off) ...
        with _connect(owner, db) as as_owner:
            changed = as_owner.execute(f"UPDATE {EVENTS} SET username = username").rowcount
            as_owner.rollback()
        assert changed == events
        # ... but the app role is still refused, by privilege
        assert _refused(as_app, f"UPDATE {EVENTS} SET username = 'mallory'") == f"permission denied for table {EVENTS}"
        assert _refused(as_app, f"DELETE FROM {EVENTS}") == f"permission denied for table {EVENTS}"
        assert _refused(as_app, f"TRUNCATE {EVENTS}") == f"permission denied for table {EVENTS}"
        assert as_app.execute(f"SELECT count(*) FROM {EVENTS}").fetchone()[0] == events


@pytest.mark.slow
def test_the_embedded_database_keeps_the_append_only_triggers_after_every_migration(tmp_path):
    """SQLite rebuilds a table to alter it, and a rebuild drops the table's triggers."""
    import sqlite3

    path = tmp_path / "fresh.sqlite3"
    environment = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DATABASE_OWNER_URL"}}
    environment.update(SQLITE_PATH=str(path), PYTHONPATH=str(ROOT), GNDP_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    db = sqlite3.connect(path)
    triggers = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"processevent_no_update", "processevent_no_delete"} <= triggers
    db.execute("INSERT INTO processes_workflowversion (journey_id, number, hash, name, definition, created_at) "
               "VALUES ('j', 1, 'h', 'n', '{}', '2026-01-01')")
    db.execute("INSERT INTO processes_processinstance (version_id, journey_id, workflow_id, status, context, "
               "started_at, updated_at, lock_version, failure, atom_states, fired_edges, at_risk) "
               "VALUES (1, 'j', 'j', 'running', '{}', '2026-01-01', '2026-01-01', 0, '', '{}', '{}', 0)")
    db.execute(f"INSERT INTO {EVENTS} (process_id, type, timestamp, username, atom_id, payload, row_hash) "
               "VALUES (1, 'process.started', '2026-01-01', '', '', '{}', '')")
    for statement in (f"UPDATE {EVENTS} SET username = 'mallory'", f"DELETE FROM {EVENTS}"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
