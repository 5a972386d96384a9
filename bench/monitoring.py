"""Monitoring reads and the SLA sweep at production size, on a database of their own.

    .venv/bin/python bench/monitoring.py [--keep] [--active N] [--events N]

Creates the PostgreSQL database `gndp_bench_monitoring` (dropped again at the end unless
--keep), seeds 10,000 active processes with 100,000 open tasks (1,000 of them past their
due date), some 17,000 completed processes, and 1,000,000 events with COPY, then prints
ONE JSON line: each monitoring endpoint's p50/p95 in milliseconds as an administrator (who
sees everything) and as a manager (team scope), the /metrics scrape, and the time of one
SLA sweep over the 100,000 open tasks (1,000 warnings due) and of one with 100 escalations.
It also times the dashboard page (`/dashboard/`) and the partial refresh a completion
makes it ask for; those are reported, not held to the endpoints' target. --active and
--events seed fewer (or more) processes and events, for a quicker run.

The server is taken from BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = "gndp_bench_monitoring"
os.environ["DATABASE_URL"] = f"{SERVER}/{DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
# Not eager: what a sweep's commit sets off (notifications) is handed to the workers, as in
# service, and not timed as part of the sweep.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
os.environ["DEBUG"] = "0"
os.environ.setdefault("LOG_LEVEL", "WARNING")

ACTIVE = 10_000
STEPS = 10                # parallel human steps per process: 100,000 open tasks
DUE_WARNINGS = 1_000      # open tasks past their due date, not yet warned
DUE_ESCALATIONS = 100     # open tasks past their escalation threshold (a second sweep)
EVENTS = 1_000_000
ROLES = 4
PEOPLE_PER_ROLE = 10
REQUESTS = 30
DAYS = 30
random.seed(7)


def recreate_database(drop_only: bool = False) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {DATABASE}")


def bench_journey() -> dict:
    """STEPS parallel human steps spread over ROLES roles, joined by a closing step."""
    atoms = [{"id": f"atom-step-{i}", "name": f"Step {i}", "performed_by": f"role-{i % ROLES}",
              "sla": {"target": "PT8H", "escalation": "PT24H"}} for i in range(STEPS)]
    atoms.append({"id": "atom-close", "name": "Close", "performed_by": "role-0", "sla": {"target": "PT4H"}})
    edges = [{"type": "ENABLES", "from": f"atom-step-{i}", "to": "atom-close"} for i in range(STEPS)]
    return {"format": "gndp-journey/1",
            "journey": {"id": "journey-bench", "name": "Bench", "sla": {"target": "P10D"}},
            "roles": [{"id": f"role-{r}", "name": f"Role {r}"} for r in range(ROLES)],
            "atoms": atoms, "edges": edges}


# --- seeding with COPY -------------------------------------------------------------------------

def copy_rows(model, rows: list[dict]) -> None:
    """COPY rows into the model's table; columns the row leaves out take the field default."""
    from django.db import connection
    from django.db.models import JSONField

    fields = [f for f in model._meta.concrete_fields]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    with connection.connection.cursor() as cursor:
        with cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                values = []
                for f in fields:
                    value = row.get(f.attname, defaults.get(f.attname))
                    values.append(json.dumps(value) if f.attname in json_fields and value is not None else value)
                copy.write_row(values)


def reset_sequences(*models) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), list(models)):
            cursor.execute(statement)


def seed_people():
    from tasks.people import save_workflow_user

    admin = save_workflow_user("bench-admin", roles=[], superuser=True).user
    managers = [save_workflow_user(f"bench-manager-{r}", roles=[]).user for r in range(ROLES)]
    people = {r: [save_workflow_user(f"bench-{r}-{i}", roles=[f"role-{r}"], manager=f"bench-manager-{r}").user
                  for i in range(PEOPLE_PER_ROLE)] for r in range(ROLES)}
    return admin, managers, people


class Seeder:
    """Builds the rows in memory, then COPYs them: processes, tasks, events."""

    def __init__(self, version, people, now):
        self.version, self.people, self.now = version, people, now
        self.processes, self.tasks, self.events = [], [], []

    def person(self, atom_index: int):
        return random.choice(self.people[atom_index % ROLES])

    def process(self, pk: int, status: str, started_at, completed_at=None, states=None) -> None:
        starter = self.person(0)
        self.processes.append({
            "id": pk, "version_id": self.version.pk, "journey_id": "journey-bench", "workflow_id": "journey-bench",
            "status": status, "context": {"ref": pk}, "business_key": None, "started_by_id": starter.pk,
            "started_at": started_at, "updated_at": completed_at or started_at, "completed_at": completed_at,
            "lock_version": 1, "failure": "", "atom_states": states, "fired_edges": {},
        })
        self.event(pk, "process.started", started_at, user=starter)

    def task(self, pk: int, process_id: int, atom: int, created_at, *, completed_at=None, due_in=None) -> dict:
        assignee = self.person(atom)
        atom_id = f"atom-step-{atom}" if atom < STEPS else "atom-close"
        target = timedelta(hours=8 if atom < STEPS else 4)
        due = created_at + target if due_in is None else self.now + due_in
        row = {
            "id": pk, "process_id": process_id, "atom_id": atom_id, "name": atom_id, "kind": "human",
            "role": f"role-{atom % ROLES}", "assigned_to_id": assignee.pk,
            "status": "completed" if completed_at else "pending", "priority": "medium", "priority_rank": 1,
            "due_date": due, "escalate_at": created_at + timedelta(hours=24), "created_at": created_at,
            "started_at": created_at + timedelta(minutes=random.randint(5, 240)) if completed_at else None,
            "completed_at": completed_at, "completed_by_id": assignee.pk if completed_at else None,
            "data": {}, "result": {} if completed_at else None, "sla_paused_for": timedelta(0),
            "sla_warned_at": due if completed_at and completed_at > due else None,
        }
        self.tasks.append(row)
        self.event(process_id, "task.created", created_at, task=row)
        self.event(process_id, "task.assigned", created_at, task=row, assigned_to_id=assignee.pk)
        if completed_at:
            self.event(process_id, "task.started", row["started_at"], task=row, user=assignee)
            self.event(process_id, "task.completed", completed_at, task=row, user=assignee)
        return row

    def event(self, process_id: int, kind: str, when, *, task=None, user=None, **payload) -> None:
        self.events.append({
            "id": len(self.events) + 1, "process_id": process_id, "type": kind, "timestamp": when,
            "user_id": user.pk if user else None, "username": user.get_username() if user else "",
            "task_id": task["id"] if task else None, "atom_id": task["atom_id"] if task else "", "payload": payload,
        })


def seed(version, people, now) -> dict:
    from processes.models import ProcessEvent, ProcessInstance
    from steps.changes import change_tasks
    from tasks.models import TaskInstance

    seeder = Seeder(version, people, now)
    task_id = 0
    open_states = {**{f"atom-step-{i}": "active" for i in range(STEPS)}, "atom-close": "waiting"}
    # Active processes: started over the last 10 days; 2% suspended, 1% failed.
    for pk in range(1, ACTIVE + 1):
        started = now - timedelta(seconds=random.randint(3600, 10 * 86400))
        status = "suspended" if pk % 50 == 0 else "failed" if pk % 100 == 1 else "running"
        seeder.process(pk, status, started, states=dict(open_states))
        if status == "failed":
            seeder.event(pk, "process.failed", started + timedelta(minutes=30), error="bench")
        for atom in range(STEPS):
            task_id += 1
            # Open tasks are created recently enough that most are not yet due.
            created = now - timedelta(seconds=random.randint(60, 7 * 3600))
            seeder.task(task_id, pk, atom, created, due_in=timedelta(hours=random.randint(1, 8)))
    # Completed processes fill the rest of the million events (46 events each).
    done_states = {atom_id: "completed" for atom_id in open_states}
    pk = ACTIVE
    while len(seeder.events) + 4 * (STEPS + 1) + 2 <= EVENTS:
        pk += 1
        started = now - timedelta(seconds=random.randint(86400, DAYS * 86400))
        finished = started + timedelta(hours=random.randint(4, 96))
        finished = min(finished, now - timedelta(minutes=1))
        seeder.process(pk, "completed", started, completed_at=finished, states=done_states)
        for atom in range(STEPS + 1):
            task_id += 1
            created = started + timedelta(minutes=atom)
            done = created + timedelta(hours=random.uniform(0.5, 12))
            seeder.task(task_id, pk, atom, created, completed_at=min(done, finished))
        seeder.event(pk, "process.completed", finished)
    # Padding, so that the log holds exactly a million events.
    while len(seeder.events) < EVENTS:
        seeder.event(random.randint(1, ACTIVE), "task.reassigned", now - timedelta(seconds=random.randint(60, 86400)))
    mark_due(seeder.tasks, now)
    copy_rows(ProcessInstance, seeder.processes)
    copy_rows(TaskInstance, seeder.tasks)
    copy_rows(ProcessEvent, seeder.events)
    reset_sequences(ProcessInstance, TaskInstance, ProcessEvent)
    open_count = sum(1 for t in seeder.tasks if t["status"] == "pending")
    return {"processes": len(seeder.processes), "open_tasks": open_count, "tasks": len(seeder.tasks),
            "events": len(seeder.events)}


def mark_due(tasks: list[dict], now) -> None:
    """Exactly DUE_WARNINGS open tasks of running processes are past their due date."""
    running_open = [t for t in tasks if t["status"] == "pending" and t["process_id"] % 50 and t["process_id"] % 100 != 1]
    for task in random.sample(running_open, DUE_WARNINGS):
        task["due_date"] = now - timedelta(minutes=random.randint(1, 120))


# --- measuring -----------------------------------------------------------------------------------

def endpoint_urlconf() -> str | None:
    from django.urls import Resolver404, resolve

    try:
        resolve("/api/monitoring/metrics")
        return None
    except Resolver404:
        return "tests.monitoring.urls"  # until gndp.urls includes the monitoring URLs


def timings(client, path: str, headers: dict | None = None) -> dict:
    for _ in range(3):
        assert client.get(path, headers=headers).status_code == 200, path
    samples = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}


def measure_endpoints(admin, manager) -> dict:
    from django.test import override_settings
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from monitoring import exposition

    paths = ["/api/monitoring/active-processes", "/api/monitoring/metrics", "/api/monitoring/sla-compliance",
             "/api/monitoring/bottlenecks", "/api/monitoring/active-processes?status=delayed&limit=50"]
    results = {}
    with override_settings(ROOT_URLCONF=endpoint_urlconf() or "gndp.urls"):
        for who, user in (("admin", admin), ("manager", manager)):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
            for path in paths:
                results[f"{who} {path.removeprefix('/api/monitoring/')}"] = timings(client, path)
        exposition.CACHE_SECONDS = 0  # measure the computation, not the cache
        results["metrics exposition"] = timings(client_for(admin), "/metrics")
    return results


# What a live dashboard fetches after a task completes: every part but the timeline.
DASHBOARD_REFRESH = "/dashboard/?parts=cards,processes,queues,workload,trend,sla,bottlenecks"


def measure_pages(admin, manager) -> dict:
    """The dashboard page as a browser first loads it, and its refresh after a completion
    (htmx's request, answered with the parts alone)."""
    from django.test import Client

    results = {}
    for who, user in (("admin", admin), ("manager", manager)):
        client = Client()
        client.force_login(user)
        results[f"{who} dashboard page"] = timings(client, "/dashboard/")
        results[f"{who} dashboard refresh"] = timings(client, DASHBOARD_REFRESH, headers={"HX-Request": "true"})
    return results


def client_for(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def measure_sweeps(now) -> dict:
    from monitoring import sla
    from tasks.models import TaskInstance

    began = time.perf_counter()
    warned = sla.sweep(now=now)
    warn_seconds = time.perf_counter() - began
    idle = sla.sweep(now=now)
    # A second round: DUE_ESCALATIONS tasks past their escalation threshold.
    ids = list(TaskInstance.objects.filter(status="pending", process__status="running", sla_breached_at__isnull=True)
               .order_by("?").values_list("pk", flat=True)[:DUE_ESCALATIONS])
    change_tasks(TaskInstance.objects.filter(pk__in=ids), escalate_at=now - timedelta(minutes=5))
    escalated = sla.sweep(now=now)
    return {
        "sweep_open_tasks": TaskInstance.objects.filter(status="pending").count(),
        "sweep_warned": warned.warned, "sweep_s": round(warn_seconds, 3),
        "idle_sweep_s": round(idle.seconds, 3),
        "escalation_sweep_escalated": escalated.escalated, "escalation_sweep_s": round(escalated.seconds, 3),
    }


def parse_arguments():
    """--active and --events change the seeded sizes (the defaults are the targets' sizes)."""
    import argparse

    global ACTIVE, EVENTS
    parser = argparse.ArgumentParser(description="Monitoring reads and the SLA sweep at size.")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--active", type=int, default=ACTIVE, help=f"active processes (default {ACTIVE:,})")
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events in the log (default {EVENTS:,})")
    arguments = parser.parse_args()
    ACTIVE, EVENTS = arguments.active, arguments.events
    if ACTIVE * STEPS < 2 * DUE_WARNINGS or EVENTS < 4 * ACTIVE * STEPS:
        parser.error(f"--active must be at least {2 * DUE_WARNINGS // STEPS}, and --events at least 4 x 10 x --active")
    return arguments


def main() -> None:
    keep = parse_arguments().keep
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from processes.versions import publish_journey

    try:
        call_command("migrate", verbosity=0)
        version = publish_journey(bench_journey()).version
        admin, managers, people = seed_people()
        now = timezone.now()
        began = time.perf_counter()
        counts = seed(version, people, now)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        seed_seconds = time.perf_counter() - began
        load_before = os.getloadavg()[0]  # other work on the machine skews every figure
        endpoints = measure_endpoints(admin, managers[0])
        pages = measure_pages(admin, managers[0])
        sweeps = measure_sweeps(timezone.now())
        worst = max(value["p95_ms"] for key, value in endpoints.items() if key != "metrics exposition")
        print(json.dumps({
            "benchmark": "monitoring", "database": connection.vendor, **counts, "seed_s": round(seed_seconds, 1),
            "endpoints": endpoints, "worst_endpoint_p95_ms": worst, "pages": pages, **sweeps,
            "targets_met": worst < 200 and sweeps["sweep_s"] < 1.0,
            "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
        }))
    finally:
        connection.close()
        if not keep:
            recreate_database(drop_only=True)


if __name__ == "__main__":
    main()
