"""The hot queries read their indexes, not their tables, on a database the size of a busy
one (40,000 tasks, statistics gathered): the inbox, a role's queue, the SLA sweep's timer
queue, what is overdue, and a process's history."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from processes.models import ProcessEvent, ProcessInstance
from steps.writes import _update_sql
from tasks import routing, selectors
from tasks.models import OPEN_DUE_DATE, SLA_WARN_PENDING, TaskInstance
from tasks.people import save_workflow_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TASKS = 40_000
USERS = 100


@pytest.fixture
def busy_database(small_version):
    users = [save_workflow_user(f"plan-{n}", roles=[f"role-plan-{n % 10}"]).user for n in range(USERS)]
    process = ProcessInstance.objects.create(
        version=small_version, journey_id="journey-small", workflow_id="journey-small",
        status="running", context={}, atom_states={}, fired_edges={},
    )
    first_user = users[0].pk
    with connection.cursor() as cursor:
        # Nine tasks in ten closed, as in a database in service; the open ones mostly assigned.
        cursor.execute(
            f"""INSERT INTO tasks_taskinstance (process_id, atom_id, name, kind, role, assigned_to_id, status,
                    priority, priority_rank, due_date, escalate_at, created_at, data, attempts, last_error, escalated,
                    version, sla_paused_for)
                SELECT %s, 'atom-' || (g %% 20), 'Step', 'human', 'role-plan-' || (g %% 10),
                       CASE WHEN g %% 10 = 0 AND g %% 30 = 0 THEN NULL ELSE {first_user} + (g %% {USERS}) END,
                       CASE WHEN g %% 10 = 0 THEN 'pending' ELSE 'completed' END,
                       'medium', 1, now() + make_interval(hours => (g %% 200) - 20),
                       now() + make_interval(hours => (g %% 200)), now(), '{{}}', 0, '', false, 0, interval '0'
                FROM generate_series(1, {TASKS}) g""",
            [process.pk],
        )
        cursor.execute(
            """INSERT INTO processes_processevent (process_id, type, timestamp, username, atom_id, payload, row_hash)
               SELECT %s, 'task.created', now(), '', '', '{}', '' FROM generate_series(1, 20000)""",
            [process.pk],
        )
        for table in ("tasks_taskinstance", "processes_processevent", "auth_user", "auth_group", "auth_user_groups"):
            cursor.execute(f"ANALYZE {table}")
    return users


def scans(queryset) -> set[tuple[str, str | None]]:
    """(node type, index name) of every scan of the tasks or events table in the plan,
    bitmap index scans (which name their index, not their table) included."""
    return scans_of(json.loads(queryset.explain(format="json"))[0]["Plan"])


def plan_of(sql: str, params) -> dict:
    """The plan PostgreSQL would run `sql` with (hand-written statements, not querysets)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def scans_of(plan: dict) -> set[tuple[str, str | None]]:
    found, stack = set(), [plan]
    while stack:
        node = stack.pop()
        ours = node.get("Relation Name") in ("tasks_taskinstance", "processes_processevent")
        if ours or node.get("Index Name", "").startswith(("task_", "event_")):
            found.add((node["Node Type"], node.get("Index Name")))
        stack += node.get("Plans", [])
    return found


def uses_only_indexes(found: set) -> bool:
    return bool(found) and all(node_type != "Seq Scan" for node_type, _ in found)


def test_the_inbox_page_reads_the_assignee_and_queue_indexes(busy_database):
    found = scans(selectors.inbox(busy_database[0])[:50])
    assert uses_only_indexes(found), found
    assert {index for _, index in found} & {"task_inbox_idx", "task_queue_open_idx"}, found


def test_routing_counts_a_persons_open_tasks_from_their_partial_index(busy_database):
    # Nine in ten of each person's tasks are closed: reading them all would make every
    # routing decision slower as the history grows.
    found = scans_of(plan_of(routing.pick_statement("least_busy"),
                             {"role": "role-plan-3", "when": timezone.now(), "closing": 0}))
    assert uses_only_indexes(found), found
    assert {index for _, index in found} - {None} == {"task_open_assignee_idx"}, found


def test_a_roles_open_queue_reads_its_partial_index(busy_database):
    queue = TaskInstance.objects.filter(role="role-plan-3", assigned_to__isnull=True, kind="human",
                                        status__in=["pending", "in_progress"]).order_by("priority_rank", "due_date")
    found = scans(queue[:50])
    assert ("Index Scan", "task_queue_open_idx") in found or uses_only_indexes(found), found


def test_the_sla_sweep_reads_only_the_timers_that_are_due(busy_database):
    due = TaskInstance.objects.filter(SLA_WARN_PENDING, due_date__lte=timezone.now()).order_by("due_date")[:500]
    found = scans(due)
    assert uses_only_indexes(found), found


def test_what_is_overdue_reads_the_open_due_date_index(busy_database):
    overdue = TaskInstance.objects.alias(open_due=OPEN_DUE_DATE).filter(open_due__lt=timezone.now())
    found = scans(overdue.values("role"))
    assert uses_only_indexes(found), found


def test_a_process_history_reads_the_event_index(busy_database):
    process_id = ProcessEvent.objects.values_list("process_id", flat=True).first()
    history = ProcessEvent.objects.filter(Q(process_id=process_id), id__gt=19_000).order_by("id")[:100]
    found = scans(history)
    assert uses_only_indexes(found), found


def test_the_fixture_holds_what_the_plans_assume(busy_database):
    assert TaskInstance.objects.count() == TASKS
    assert Group.objects.filter(name__startswith="role-plan-").count() == 10


def test_the_completion_guard_finds_its_task_by_primary_key_under_stale_statistics(small_version):
    # Statistics gathered while no task was pending, then many pending: the planner
    # believes pending tasks rare, and an indexable guard on status would send the
    # completion's update through every pending task (as in a freshly seeded database,
    # before autovacuum analyses it).
    process = ProcessInstance.objects.create(
        version=small_version, journey_id="journey-small", workflow_id="journey-small",
        status="running", context={}, atom_states={}, fired_edges={},
    )
    insert = f"""INSERT INTO tasks_taskinstance (process_id, atom_id, name, kind, role, status, priority,
                     priority_rank, due_date, created_at, data, attempts, last_error, escalated, version, sla_paused_for)
                 SELECT {process.pk}, 'atom-' || (g %% 20), 'Step', 'human', 'role', %s, 'medium', 1,
                        now() + make_interval(hours => g %% 200), now(), '{{}}', 0, '', false, 0, interval '0'
                 FROM generate_series(1, %s) g"""
    with connection.cursor() as cursor:
        cursor.execute(insert, ["completed", 20_000])
        cursor.execute("ANALYZE tasks_taskinstance")
        cursor.execute(insert, ["pending", 5_000])
    task = TaskInstance.objects.filter(status="pending").last()
    sql, params = _update_sql(connection, task, ["status", "version"], {"version": task.version, "status": task.status})
    found = scans_of(plan_of(sql, params))
    assert found - {("ModifyTable", None)} == {("Index Scan", "tasks_taskinstance_pkey")}, found
