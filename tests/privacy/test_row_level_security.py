"""Row-level security: a database session of the app role, bypassing the application's
scoping with raw SQL, still sees only its user's processes, tasks and events, by the same
rules as tasks.access; the engine's scope sees everything, and a session that says nothing
sees nothing.

The suite itself runs as a superuser, which row-level security does not bind: these tests
connect as a role of their own that is neither superuser nor owner, like the app role.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection

from processes import db_roles
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from tasks import access
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.conftest import ROOT
from tests.factories import START_ANY_JOURNEY, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _connect(user: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(host=settings.get("HOST") or "127.0.0.1", port=settings.get("PORT") or 5432, user=user,
                           dbname=settings["NAME"], password=settings.get("PASSWORD") or None, autocommit=True)


@pytest.fixture
def app_role():
    """A login role like the app's: no superuser, no BYPASSRLS, owns nothing."""
    role = f"{connection.settings_dict['NAME']}_rls_{os.getpid()}"
    superuser = connection.settings_dict.get("USER") or "postgres"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        cursor.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT')
    db_roles.grant_app_rights(connection, owner=superuser, app=role)
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def people(small_version):
    manager = UserFactory(username="mona")
    clara = UserFactory(username="clara", roles=["role-clerk"])
    carl = UserFactory(username="carl", roles=["role-clerk"])
    chet = UserFactory(username="chet", roles=["role-checker"])
    outsider = UserFactory(username="olga", permissions=[START_ANY_JOURNEY])  # starts one process; in no role
    auditor = UserFactory(username="aude", roles=["auditors"])
    Group.objects.get(name="auditors").permissions.add(
        Permission.objects.get(codename="view_all_tasks"), Permission.objects.get(codename="view_all_processes"))
    Profile.objects.update_or_create(user=carl, defaults={"manager": manager})
    return {user.username: user for user in (manager, clara, carl, chet, outsider, auditor)}


def _ids(conn: psycopg.Connection, table: str) -> set[int]:
    return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}


def test_raw_sql_as_a_user_sees_only_that_users_rows(app_role, people):
    # given: two processes, each with tasks routed to a different clerk, one in the checkers' queue
    first = start_process(workflow_id="journey-small", user=people["clara"])
    clara_task = TaskInstance.objects.get(process=first, atom_id="atom-apply")
    task_services.complete_task(clara_task.pk, user=people["clara"], result={"amount": 1, "score": 500})
    second = start_process(workflow_id="journey-small", user=people["olga"])
    carl_task = TaskInstance.objects.get(process=second, atom_id="atom-apply")
    assert carl_task.assigned_to == people["carl"]  # least busy
    queued = TaskInstance.objects.get(process=first, atom_id="atom-manual")
    assert queued.assigned_to is None and queued.role == "role-checker"
    all_tasks = set(TaskInstance.objects.values_list("id", flat=True))
    all_processes = {first.pk, second.pk}

    with _connect(app_role) as conn:
        # then: a session that says nothing sees nothing (fail closed)
        assert _ids(conn, "tasks_taskinstance") == set()
        assert _ids(conn, "processes_processinstance") == set()
        assert conn.execute("SELECT count(*) FROM processes_processevent").fetchone()[0] == 0

        for name, user in people.items():
            # when: raw SQL without any filter, as each user's session
            conn.execute("SELECT set_config('gndp.scope', 'user', false), set_config('gndp.user_id', %s, false)",
                         [str(user.pk)])
            tasks, processes = _ids(conn, "tasks_taskinstance"), _ids(conn, "processes_processinstance")
            events = {row[0] for row in conn.execute("SELECT DISTINCT process_id FROM processes_processevent")}
            # then: exactly what the application's own scoping gives that user
            assert tasks == set(access.visible_tasks(user).values_list("id", flat=True)), name
            assert processes == set(access.visible_processes(user).values_list("id", flat=True)), name
            assert events == processes, name

        expected = {
            "clara": ({clara_task.pk}, {first.pk}),
            "carl": ({carl_task.pk}, {second.pk}),
            "chet": ({queued.pk}, set()),  # a role's queue, but no part in the process yet
            "olga": (set(), {second.pk}),  # started it
            "mona": ({carl_task.pk}, {second.pk}),  # manages carl
            "aude": (all_tasks, all_processes),  # view_all_* through a group
        }
        for name, (tasks, processes) in expected.items():
            conn.execute("SELECT set_config('gndp.user_id', %s, false)", [str(people[name].pk)])
            assert (_ids(conn, "tasks_taskinstance"), _ids(conn, "processes_processinstance")) == (tasks, processes), name

        # the user scope cannot write what it cannot see either
        conn.execute("SELECT set_config('gndp.user_id', %s, false)", [str(people["clara"].pk)])
        assert conn.execute("UPDATE processes_processinstance SET failure = 'x' WHERE id = %s",
                            [second.pk]).rowcount == 0
        assert conn.execute("UPDATE tasks_taskinstance SET priority = 'low' WHERE id = %s",
                            [carl_task.pk]).rowcount == 0

        # the engine's scope sees everything
        conn.execute("SELECT set_config('gndp.scope', 'engine', false)")
        assert _ids(conn, "tasks_taskinstance") == all_tasks
        assert _ids(conn, "processes_processinstance") == all_processes
        assert conn.execute("SELECT count(*) FROM processes_processevent").fetchone()[0] == ProcessEvent.objects.count()
    assert ProcessInstance.objects.get(pk=second.pk).failure == ""


APP_RUN = """
import json
from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.test import RequestFactory
from gndp.rls import RowLevelSecurityMiddleware
from tasks import services as task_services
from tasks.models import TaskInstance

users = get_user_model().objects
clara = users.get(username="clara")

def careless_view(request):
    # A query that forgot visible_tasks(request.user).
    return JsonResponse({"tasks": sorted(TaskInstance.objects.values_list("id", flat=True))})

request = RequestFactory().get("/inbox/")
request.user = clara
seen = json.loads(RowLevelSecurityMiddleware(careless_view)(request).content)["tasks"]

def completing_view(request):
    # A service inside the request: its transaction routes over every clerk's tasks.
    task = TaskInstance.objects.get(assigned_to=request.user, status="pending")
    task_services.complete_task(task.pk, user=request.user, result={"amount": 2, "score": 700})
    return JsonResponse({"completed": task.pk, "now_sees": sorted(TaskInstance.objects.values_list("id", flat=True))})

request = RequestFactory().post("/tasks/")
request.user = clara
done = json.loads(RowLevelSecurityMiddleware(completing_view)(request).content)
print(json.dumps({"seen": seen, "done": done, "engine": sorted(TaskInstance.objects.values_list("id", flat=True))}))
"""


def test_the_app_sets_the_users_scope_per_request_and_the_engines_per_transaction(app_role, people):
    # given: clara's task in one process, carl's in another
    first = start_process(workflow_id="journey-small", user=people["clara"])
    second = start_process(workflow_id="journey-small", user=people["carl"])
    clara_task = TaskInstance.objects.get(process=first, atom_id="atom-apply")
    carl_task = TaskInstance.objects.get(process=second, atom_id="atom-apply")
    assert (clara_task.assigned_to, carl_task.assigned_to) == (people["clara"], people["carl"])

    # when: the app runs as the non-superuser role
    settings = connection.settings_dict
    url = f"postgres://{app_role}@{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/{settings['NAME']}"
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_OWNER_URL"}
    environment.update(DATABASE_URL=url, PYTHONPATH=str(ROOT), CELERY_TASK_ALWAYS_EAGER="1")
    done = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", APP_RUN], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # then: the careless query in clara's request saw only her task
    assert result["seen"] == [clara_task.pk]
    # the service in her request completed it and advanced the process (its system step ran),
    # seeing what it had to in its transaction
    assert result["done"]["completed"] == clara_task.pk
    clara_task.refresh_from_db()
    assert clara_task.status == "completed"
    assert TaskInstance.objects.get(process=first, atom_id="atom-open").status == "completed"
    # after the transaction her scope is back; outside any request the engine sees all
    assert carl_task.pk not in result["done"]["now_sees"]
    assert set(result["engine"]) == set(TaskInstance.objects.values_list("id", flat=True))


def test_only_the_token_lookup_runs_in_the_scope_the_session_was_left_in(people):
    """The API token's lookup reads no table under a policy, so it runs in whatever scope
    the last request left the session in; every statement after it runs in the caller's
    scope, or in a transaction, in the engine's."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    clara, carl = people["clara"], people["carl"]
    first = start_process(workflow_id="journey-small", user=clara)
    start_process(workflow_id="journey-small", user=carl)
    clara_task = TaskInstance.objects.get(process=first, atom_id="atom-apply")

    def client(user):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return api

    as_clara, as_carl = client(clara), client(carl)
    seen = []  # (statement, the session's scope when it ran, in a transaction)

    def spy(execute, sql, params, many, context):
        seen.append((sql, getattr(connection, "_gndp_rls_session", None), connection.in_atomic_block))
        return execute(sql, params, many, context)

    assert as_carl.get("/api/tasks/inbox").status_code == 200  # leaves carl's scope on the session
    with connection.execute_wrapper(spy):
        inbox = as_clara.get("/api/tasks/inbox")
        carls_last = seen[:]
        done = as_clara.post(f"/api/tasks/{clara_task.pk}/complete", {"result": {"amount": 1, "score": 500}},
                             format="json")

    assert inbox.status_code == 200 and [t["id"] for t in inbox.json()] == [clara_task.pk]
    assert done.status_code == 200, done.content
    carl_scope, clara_scope = ("user", str(carl.pk)), ("user", str(clara.pk))
    assert carls_last[0][1] == carl_scope and "authtoken_token" in carls_last[0][0]  # the lookup, as left
    inbox_reads = [scope for sql, scope, _ in carls_last[1:] if "tasks_taskinstance" in sql]
    assert inbox_reads and set(inbox_reads) == {clara_scope}
    # The completion: its lookup in clara's scope as her inbox left it, its transaction and
    # the system step it set off (run here, eagerly) in the engine's.
    assert all(scope != carl_scope for _, scope, _ in seen[1:])
    assert {scope for _, scope, in_transaction in seen if not in_transaction} <= {carl_scope, clara_scope,
                                                                                   ("engine", "")}


def test_the_token_lookups_tables_have_no_row_level_security():
    from gndp.api.authentication import _token_sql

    tables = ["authtoken_token", "auth_user", "auth_user_groups", "auth_group"]
    assert all(f'"{table}"' in _token_sql(connection.vendor) for table in tables)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relrowsecurity AND relname = ANY(%s)", [tables])
        assert cursor.fetchall() == []
        cursor.execute("SELECT count(*) FROM pg_class WHERE relrowsecurity AND relname = 'tasks_taskinstance'")
        assert cursor.fetchone() == (1,)  # the policies are there to be found
