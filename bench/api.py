"""The REST API under load: the app under uvicorn on PostgreSQL, driven by concurrent clients.

    scripts/bench.sh        # or, with PostgreSQL and Redis running:
    .venv/bin/python bench/api.py

Drops and recreates its own database, `gndp_bench_api`, on the server of `DATABASE_URL` when
that is set (else postgres@127.0.0.1:5432; the database that `DATABASE_URL` names is never
touched), owned by a role of the same name whose CONNECTION LIMIT (40) keeps the app from
exhausting a shared server's connections. Migrates it and seeds, in a few INSERT ... SELECT
statements, 100,000 open tasks and 100,000 completed ones over 25,000 processes, 1,000 users
and 200 roles (two roles a user: an inbox holds ~190 open tasks, 90 assigned and 100 queued).
Then runs the app under uvicorn (2 workers, DEBUG=0, the same database, Redis db 14 for the
channel layer) and drives it over HTTP/1.1 keep-alive connections, spread evenly over the
workers as a load balancer would, with token authentication:

1. `GET /api/tasks/inbox` of the seeded users (a page of 50 of their ~190 tasks), one request
   at a time (`inbox_p95_ms_100k_open`) and then from 16 clients at once (`..._16_clients`);
2. the work loop of 16 clients, each a member of the one role of a 10-step chain of human
   steps routed least-busy (BENCH_QUEUE_STEP=1: the middle step left in a shared queue
   instead): read the inbox, start a process when it holds fewer than two
   open tasks, then work through the tasks it showed: start (claim) those still in the
   queue, complete each. Each completion routes the next step to the least busy member, so
   the clients hand work to each other. After a warm-up: `completions_per_s` over the window
   (and its worst 5 s), `requests_per_completion`, the p50/p95/p99 of each endpoint
   (`complete`, `start_task`, `inbox`, `start`), non-2xx responses by endpoint, and the CPU
   the server, PostgreSQL, this client and everything else used (in cores), since the
   machine is shared.

Before the server starts, BENCH_BULK_PROCESSES (10000) processes of the demo journey are
started through the bulk start path (`processes.services.start_processes`), timed
(`bulk_start_s`), so that the load runs with them live; at the end the peak resident memory
of each server worker is read (`worker_rss_mb_max`).

Prints one JSON line, also naming the indexes the inbox query's plan uses. Knobs
(environment): BENCH_WORKERS (2), BENCH_CLIENTS (16), BENCH_SECONDS (30), BENCH_WARMUP_S (5),
BENCH_OPEN_TASKS (100000; 0 skips the seeding and the inbox measurement), BENCH_PORT (8766),
BENCH_BULK_PROCESSES (10000; 0 starts none), BENCH_QUEUE_STEP (0),
BENCH_IDEMPOTENCY (1: an Idempotency-Key on every write), BENCH_PG_ROLE ("" to log in as
DATABASE_URL does), DJANGO_SETTINGS_MODULE, BENCH_APP and BENCH_UVICORN_ARGS (to measure
another configuration of the server).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_API_DB", "gndp_bench_api")
# The app and this script log in as their own role, whose CONNECTION LIMIT keeps a server
# that leaks connections from exhausting the shared PostgreSQL's max_connections (a limit
# that superusers would not be held to). Empty BENCH_PG_ROLE: log in as DATABASE_URL does.
PG_ROLE = os.environ.get("BENCH_PG_ROLE", "gndp_bench_api")
PG_ROLE_CONNECTIONS = int(os.environ.get("BENCH_PG_ROLE_CONNECTIONS", "40"))
_server = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
_app_netloc = f"{PG_ROLE}@{_server.hostname}:{_server.port or 5432}" if PG_ROLE else _server.netloc
DATABASE_URL = urlunsplit((_server.scheme, _app_netloc, f"/{DB_NAME}", "", ""))
MAINTENANCE_URL = urlunsplit((_server.scheme, _server.netloc, "/postgres", "", ""))
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"

os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["REDIS_URL"] = REDIS_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ["DEBUG"] = "0"
os.environ.setdefault("LOG_LEVEL", "WARNING")

PORT = int(os.environ.get("BENCH_PORT", "8766"))
APP = os.environ.get("BENCH_APP", "gndp.asgi:application")
UVICORN_ARGS = os.environ.get("BENCH_UVICORN_ARGS", "").split()
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "5"))
STEPS = int(os.environ.get("BENCH_STEPS", "10"))
IDEMPOTENCY = os.environ.get("BENCH_IDEMPOTENCY", "0") == "1"
OPEN_TASKS = int(os.environ.get("BENCH_OPEN_TASKS", "100000"))
BULK_PROCESSES = int(os.environ.get("BENCH_BULK_PROCESSES", "10000"))
QUEUE_STEP = os.environ.get("BENCH_QUEUE_STEP", "0") == "1"
CLOSED_TASKS = int(os.environ.get("BENCH_CLOSED_TASKS", str(OPEN_TASKS)))
SEED_USERS, SEED_ROLES = 1000, 200
SEED_PROCESSES = max(1, OPEN_TASKS // 4)
INBOX_SERIAL_REQUESTS, INBOX_CONCURRENT_S = 400, 5.0
JOURNEY = "journey-bench-api"
ROLE = "role-bench-api"
QUEUE_ROLE = "role-bench-api-queue"


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(MAINTENANCE_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if not PG_ROLE:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            return
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PG_ROLE]).fetchone()
        conn.execute(f'{"ALTER" if exists else "CREATE"} ROLE "{PG_ROLE}" LOGIN NOSUPERUSER '
                     f'CONNECTION LIMIT {PG_ROLE_CONNECTIONS}')
        conn.execute(f'CREATE DATABASE "{DB_NAME}" OWNER "{PG_ROLE}"')


import django  # noqa: E402

django.setup()

from bench.procs import children, cpu_seconds, peak_rss_mb  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402


# --- seeding ---------------------------------------------------------------------------------

def seed_open_tasks(version_id: int) -> None:
    """Users, roles, processes and tasks in a handful of INSERT ... SELECT statements: the
    rows the app would have written (profiles, tokens, object permissions included)."""
    U, R, P, T, C = SEED_USERS, SEED_ROLES, SEED_PROCESSES, OPEN_TASKS, CLOSED_TASKS
    atom_states = json.dumps({f"atom-step-{i}": "waiting" for i in range(STEPS)})
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM auth_permission WHERE codename IN ('view_taskinstance', 'change_taskinstance')")
        perm_ids = [row[0] for row in cur.fetchall()]
        statements = [
            f"INSERT INTO auth_group (name) SELECT 'role-seed-' || r FROM generate_series(0, {R - 1}) r",
            f"""INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                       is_active, date_joined)
                SELECT '!', false, 'seed-' || u, '', '', '', false, true, now() FROM generate_series(0, {U - 1}) u""",
            """CREATE TEMP TABLE seed_user AS
                SELECT id, substr(username, 6)::int AS n FROM auth_user WHERE username LIKE 'seed-%'""",
            """CREATE TEMP TABLE seed_role AS
                SELECT id, substr(name, 11)::int AS n, name FROM auth_group WHERE name LIKE 'role-seed-%'""",
            "INSERT INTO tasks_profile (user_id, capacity, available) SELECT id, 20, true FROM seed_user",
            "INSERT INTO authtoken_token (key, user_id, created) SELECT md5('seed' || n), id, now() FROM seed_user",
            # Each user in two roles (n % R and (n + R/2) % R): ten members a role.
            f"""INSERT INTO auth_user_groups (user_id, group_id)
                SELECT u.id, r.id FROM seed_user u JOIN seed_role r
                  ON r.n = u.n % {R} OR r.n = (u.n + {R // 2}) % {R}""",
            f"""INSERT INTO processes_processinstance (version_id, journey_id, workflow_id, status, context,
                    started_by_id, started_at, updated_at, lock_version, failure, atom_states, fired_edges, at_risk)
                SELECT {version_id}, '{JOURNEY}', '{JOURNEY}', 'running', '{{}}', u.id,
                       now() - make_interval(mins => p % 20000), now(), 1, '', '{atom_states}'::jsonb, '{{}}', false
                FROM generate_series(0, {P - 1}) p JOIN seed_user u ON u.n = p % {U}""",
            "CREATE TEMP TABLE seed_process AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS n "
            f"FROM processes_processinstance WHERE workflow_id = '{JOURNEY}'",
            # g < T open, the rest completed. Open ones: 90% assigned to a user (in one of its
            # roles), 10% in a role's queue;
            # a seventh of the assigned ones in progress; priorities 10% high, 20% low; due
            # dates from 5 days ago to 15 days ahead (5% none).
            f"""CREATE TEMP TABLE seed_task AS
                SELECT g,
                       CASE WHEN g % 10 < 9 OR g >= {T} THEN abs(hashint8(g)) % {U} END AS user_n,
                       CASE WHEN g % 10 < 9 OR g >= {T}
                            THEN (abs(hashint8(g)) % {U} + (g % 2) * {R // 2}) % {R}
                            ELSE abs(hashint8(-g)) % {R} END AS role_n,
                       abs(hashint8(g + {T + C})) % {P} AS process_n
                FROM generate_series(0::bigint, {T + C - 1}) g""",
            f"""INSERT INTO tasks_taskinstance (process_id, atom_id, name, kind, role, assigned_to_id, status,
                    priority, priority_rank, due_date, created_at, started_at, completed_at, completed_by_id, data,
                    result, attempts, last_error, escalated, version, sla_paused_for)
                SELECT p.id, 'atom-step-' || (t.g % {STEPS}), 'Step ' || (t.g % {STEPS}), 'human', r.name, u.id,
                       CASE WHEN t.g >= {T} THEN 'completed' WHEN u.id IS NOT NULL AND t.g % 7 = 0
                            THEN 'in_progress' ELSE 'pending' END,
                       CASE WHEN t.g % 10 = 3 THEN 'high' WHEN t.g % 10 IN (4, 7) THEN 'low' ELSE 'medium' END,
                       CASE WHEN t.g % 10 = 3 THEN 0 WHEN t.g % 10 IN (4, 7) THEN 2 ELSE 1 END,
                       CASE WHEN t.g % 20 = 11 THEN NULL
                            ELSE now() + make_interval(hours => (((t.g * 37) % 480) - 120)::int) END,
                       now() - make_interval(mins => (t.g % 20000)::int),
                       CASE WHEN t.g >= {T} OR (u.id IS NOT NULL AND t.g % 7 = 0) THEN now() END,
                       CASE WHEN t.g >= {T} THEN now() END,
                       CASE WHEN t.g >= {T} THEN u.id END,
                       '{{}}', CASE WHEN t.g >= {T} THEN '{{}}'::jsonb END, 0, '', false,
                       CASE WHEN t.g % 7 = 0 OR t.g >= {T} THEN 1 ELSE 0 END, interval '0'
                FROM seed_task t
                JOIN seed_process p ON p.n = t.process_n
                JOIN seed_role r ON r.n = t.role_n
                LEFT JOIN seed_user u ON u.n = t.user_n
                ORDER BY t.g""",
            f"""INSERT INTO tasks_taskuserobjectpermission (permission_id, user_id, content_object_id)
                SELECT perm, t.assigned_to_id, t.id FROM tasks_taskinstance t, unnest(ARRAY{perm_ids}) perm
                WHERE t.assigned_to_id IS NOT NULL AND t.role LIKE 'role-seed-%'""",
            "DROP TABLE seed_task, seed_process, seed_role, seed_user",
        ]
        for sql in statements:
            cur.execute(sql)  # no parameters: the % signs are SQL's
    # What a database in service has: statistics and a visibility map.
    connection.ensure_connection()
    raw = connection.connection
    autocommit = raw.autocommit
    raw.autocommit = True
    for table in ("tasks_taskinstance", "processes_processinstance", "auth_user", "auth_group", "auth_user_groups",
                  "tasks_profile", "authtoken_token", "tasks_taskuserobjectpermission"):
        raw.execute(f"VACUUM ANALYZE {table}")
    raw.autocommit = autocommit


def bulk_start() -> dict:
    """The demo journey (and its people) published, then BULK_PROCESSES of it started at once."""
    from processes.services import start_processes

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    began = time.perf_counter()
    started = start_processes(workflow_id="journey-purchase-fha",
                              contexts=[{"loan_amount": 200000 + i} for i in range(BULK_PROCESSES)])
    seconds = time.perf_counter() - began
    return {"bulk_started_processes": len(started), "bulk_start_s": round(seconds, 2),
            "bulk_processes_started_per_s": round(len(started) / seconds, 1)}


def chain_journey() -> dict:
    """The bench's chain: every step routed least-busy to one of the clients; with
    BENCH_QUEUE_STEP=1 the middle one waits in the clients' shared queue until one of them
    claims it (`start_task`), and all sixteen race for each such task."""
    from bench.engine import chain_journey as chain

    definition = chain(STEPS)
    for i, atom in enumerate(definition["atoms"]):
        atom["performed_by"] = QUEUE_ROLE if QUEUE_STEP and i == STEPS // 2 else ROLE
    definition["roles"] = [{"id": ROLE, "name": "Bench API"},
                           {"id": QUEUE_ROLE, "name": "Bench API queue", "assignment": "queue"}]
    definition["journey"] = {"id": JOURNEY, "name": "API bench chain"}
    return definition


def inbox_plan(username: str) -> tuple[str, str]:
    """EXPLAIN ANALYZE of the inbox page and of its count, as the endpoint runs them."""
    from django.contrib.auth import get_user_model

    from tasks import selectors

    user = get_user_model().objects.get(username=username)
    tasks = selectors.inbox(user).select_related("process")
    page = tasks[:50].explain(analyze=True, buffers=True)
    count_sql, params = tasks.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) SELECT COUNT(*) FROM ({count_sql}) AS sub", params)
        count = "\n".join(row[0] for row in cur.fetchall())
    return page, count


# --- HTTP/1.1 keep-alive client ----------------------------------------------------------------

class Connection:
    def __init__(self):
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", PORT)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def local_port(self) -> int:
        return self.writer.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, method: str, path: str, token: str, body: dict | None = None,
                      headers: dict | None = None) -> tuple[int, dict, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{PORT}", f"Authorization: Token {token}",
                 "Accept: application/json"]
        if method != "GET":
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                response_headers[name.strip().lower()] = value.strip()
        if "content-length" in response_headers:
            payload = await self.reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            payload = b"".join(chunk[:-2] for chunk in chunks)
        else:
            payload = b""
        return status, response_headers, payload


def worker_pids(master: int) -> list[int]:
    pids = []
    for pid in children(master):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            pass
    return sorted(pids) or [master]


def owner_of(conn: Connection, workers: list[int]) -> int | None:
    """Which worker accepted this connection: the inode of the server side, in its fds."""
    want_local, want_remote = f":{PORT:04X}", f":{conn.local_port():04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
            inode = fields[9]
    if not inode:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


async def open_balanced(n: int, workers: list[int]) -> tuple[list[Connection], dict[int, int]]:
    """n keep-alive connections, as evenly spread over the workers as a load balancer would:
    the workers share one listening socket, and which one accepts is otherwise chance."""
    share = math.ceil(n / len(workers))
    per_worker = {pid: 0 for pid in workers}
    conns = []
    for _ in range(n):
        for attempt in range(60):
            conn = Connection()
            await conn.open()
            owner = None
            for _ in range(50):
                owner = owner_of(conn, workers)
                if owner is not None:
                    break
                await asyncio.sleep(0.01)
            if owner is None or per_worker.get(owner, share) < share or attempt == 59:
                break
            conn.close()
        if owner in per_worker:
            per_worker[owner] += 1
        conns.append(conn)
    return conns, per_worker


# --- measuring ---------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


class Recorder:
    """(finished at, milliseconds, status) of every request, by endpoint."""

    def __init__(self):
        self.samples: dict[str, list[tuple[float, float, int]]] = {}

    def add(self, name: str, started: float, status: int) -> None:
        now = time.perf_counter()
        self.samples.setdefault(name, []).append((now, (now - started) * 1000, status))

    def window(self, name: str, begin: float = 0.0, end: float = math.inf, ok: bool = False) -> list[tuple]:
        return [s for s in self.samples.get(name, []) if begin <= s[0] < end and (not ok or s[2] < 300)]

    def latencies(self, name: str, begin: float = 0.0, end: float = math.inf) -> list[float]:
        return [ms for _, ms, _ in self.window(name, begin, end)]

    def errors(self, begin: float = 0.0, end: float = math.inf) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.samples:
            for _, _, status in self.window(name, begin, end):
                if status >= 300:
                    counts[f"{name} {status}"] = counts.get(f"{name} {status}", 0) + 1
        return counts


async def call(rec: Recorder, name: str, conn: Connection, method: str, path: str, token: str,
               body: dict | None = None) -> tuple[int, dict, bytes]:
    headers = {"Idempotency-Key": uuid.uuid4().hex} if IDEMPOTENCY and method == "POST" else None
    t0 = time.perf_counter()
    status, response_headers, payload = await conn.request(method, path, token, body, headers)
    rec.add(name, t0, status)
    return status, response_headers, payload


async def inbox_phase(conns: list[Connection], tokens: list[str]) -> dict:
    """Inbox reads of seeded users: one at a time, then from every connection at once."""
    rec, sizes = Recorder(), []
    rng = random.Random(7)
    for conn in conns:  # warm every worker's imports, caches and prepared statements
        for _ in range(5):
            await call(rec, "warm", conn, "GET", "/api/tasks/inbox", rng.choice(tokens))
    for i in range(INBOX_SERIAL_REQUESTS):
        status, headers, _ = await call(rec, "serial", conns[i % len(conns)], "GET", "/api/tasks/inbox",
                                        tokens[(i * 37) % len(tokens)])
        if status == 200:
            sizes.append(int(headers.get("x-total-count", 0)))
    stop = time.perf_counter() + INBOX_CONCURRENT_S

    async def reader(conn: Connection, seed: int) -> None:
        local = random.Random(seed)
        while time.perf_counter() < stop:
            await call(rec, "concurrent", conn, "GET", "/api/tasks/inbox", local.choice(tokens))

    begun = time.perf_counter()
    await asyncio.gather(*(reader(conn, i) for i, conn in enumerate(conns)))
    elapsed = time.perf_counter() - begun
    serial, concurrent = rec.latencies("serial"), rec.latencies("concurrent")
    return {
        "inbox_p50_ms_100k_open": pct(serial, 0.50),
        "inbox_p95_ms_100k_open": pct(serial, 0.95),
        "inbox_p99_ms_100k_open": pct(serial, 0.99),
        "inbox_size_p50_100k_open": int(pct(sizes, 0.50) or 0),
        "inbox_size_max_100k_open": max(sizes, default=0),
        f"inbox_p50_ms_100k_open_{len(conns)}_clients": pct(concurrent, 0.50),
        f"inbox_p95_ms_100k_open_{len(conns)}_clients": pct(concurrent, 0.95),
        f"inbox_p99_ms_100k_open_{len(conns)}_clients": pct(concurrent, 0.99),
        f"inbox_per_s_100k_open_{len(conns)}_clients": round(len(concurrent) / elapsed, 1),
        "inbox_errors_100k_open": sum(rec.errors().values()),
    }


ATOM_STEP = re.compile(r"atom-step-(\d+)$")


async def work_loop(conns: list[Connection], users: list[tuple[str, str]], rec: Recorder, stop: float) -> None:
    """Each client works its inbox as a person does: read it, then work through what it
    shows (claiming what sits in the queue), starting a process when it runs low."""
    async def client(conn: Connection, username: str, token: str) -> None:
        while time.perf_counter() < stop:
            status, _, body = await call(rec, "inbox", conn, "GET", "/api/tasks/inbox", token)
            if status != 200:
                continue
            mine = [t for t in json.loads(body)
                    if t["status"] in ("pending", "in_progress") and t["assigned_to"] in (username, None)]
            if len(mine) < 2:
                await call(rec, "start", conn, "POST", "/api/processes/start", token, {"journey_id": JOURNEY})
            for task in mine:
                if time.perf_counter() >= stop:
                    break
                if task["assigned_to"] is None:
                    status, _, _ = await call(rec, "start_task", conn, "POST", f"/api/tasks/{task['id']}/start", token)
                    if status != 200:
                        continue
                step = int(ATOM_STEP.search(task["atom_id"]).group(1))
                await call(rec, "complete", conn, "POST", f"/api/tasks/{task['id']}/complete", token,
                           {"result": {f"v{step}": step}})

    await asyncio.gather(*(client(conn, name, token) for conn, (name, token) in zip(conns, users)))


def postmaster_pid() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def bench_backends(postmaster: int) -> list[int]:
    """The PostgreSQL backends serving this benchmark's database."""
    found = []
    for pid in children(postmaster):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f" {DB_NAME} " in title:
            found.append(pid)
    return found


def cpu_snapshot(server: list[int], postmaster: int) -> dict[str, float]:
    """Busy CPU seconds so far: the server's processes, PostgreSQL (every backend, also of
    other databases, with those already exited), this client, and the whole machine; and
    per live backend of this benchmark's database."""
    machine = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return {
        "server": sum(cpu_seconds(pid) for pid in server),
        "postgres": cpu_seconds(postmaster, children=True) + sum(cpu_seconds(pid) for pid in children(postmaster)),
        "client": time.process_time(),
        "machine": (sum(machine[:8]) - machine[3] - machine[4]) / os.sysconf("SC_CLK_TCK"),
        "backends": {pid: cpu_seconds(pid) for pid in bench_backends(postmaster)},
    }


async def measure(server_pid: int, postmaster: int, bench_users: list[tuple[str, str]],
                  seed_tokens: list[str]) -> dict:
    workers = worker_pids(server_pid)
    conns, spread = await open_balanced(CLIENTS, workers)
    result = await inbox_phase(conns, seed_tokens) if seed_tokens else {}

    rec = Recorder()
    begin = time.perf_counter() + WARMUP_S
    end = begin + SECONDS
    loop = asyncio.create_task(work_loop(conns, bench_users, rec, end))
    await asyncio.sleep(max(0.0, begin - time.perf_counter()))
    server = sorted({server_pid, *workers})
    cpu_before, cpu_begun = cpu_snapshot(server, postmaster), time.perf_counter()
    await loop
    cpu_after, window_s = cpu_snapshot(server, postmaster), time.perf_counter() - cpu_begun
    for conn in conns:
        conn.close()
    result["worker_rss_mb"] = [peak_rss_mb(pid) for pid in workers]
    result["worker_rss_mb_max"] = max(result["worker_rss_mb"])

    completed = rec.window("complete", begin, end, ok=True)
    buckets = [0] * max(1, int(SECONDS // 5))
    for t, _, _ in completed:
        buckets[min(len(buckets) - 1, int((t - begin) // 5))] += 1
    result.update({
        "completions_per_s": round(len(completed) / SECONDS, 1),
        "completions_per_s_min_5s": round(min(buckets) / 5, 1),
        "requests_per_s": round(sum(len(rec.window(name, begin, end)) for name in rec.samples) / SECONDS, 1),
        "requests_per_completion": round(sum(len(rec.window(name, begin, end)) for name in rec.samples)
                                         / max(1, len(completed)), 2),
        "processes_started_per_s": round(len(rec.window("start", begin, end, ok=True)) / SECONDS, 1),
    })
    for name in ("complete", "start_task", "inbox", "start"):
        values = rec.latencies(name, begin, end)
        for q in (50, 95, 99):
            result[f"{name}_p{q}_ms"] = pct(values, q / 100)
    result["errors"] = rec.errors(begin, end)
    before_backends, after_backends = cpu_before.pop("backends"), cpu_after.pop("backends")
    used = {name: (cpu_after[name] - cpu_before[name]) / window_s for name in cpu_after}
    used["other"] = used["machine"] - used["server"] - used["postgres"] - used["client"]
    # Backends that ended within the window are missing here (a server without a pool opens
    # one per request): then only cpu_cores_postgres, which has all of them, tells.
    used["postgres_bench_db"] = sum(cpu - before_backends.get(pid, 0.0)
                                    for pid, cpu in after_backends.items()) / window_s
    result["connections_per_worker"] = sorted(spread.values(), reverse=True)
    result.update({f"cpu_cores_{name}": round(value, 2) for name, value in used.items()})
    if result["completions_per_s"]:
        result["server_cpu_ms_per_completion"] = round(used["server"] * 1000 / result["completions_per_s"], 1)
    return result


def main() -> None:
    started = time.perf_counter()
    recreate_database()
    call_command("migrate", verbosity=0)
    from processes.versions import publish_journey
    from tasks.people import save_workflow_user

    version = publish_journey(chain_journey()).version
    bench_users = [(f"api-client-{i}", save_workflow_user(f"api-client-{i}", roles=[ROLE, QUEUE_ROLE]).token)
                   for i in range(CLIENTS)]
    seed_tokens: list[str] = []
    if OPEN_TASKS:
        seed_open_tasks(version.pk)
        with connection.cursor() as cur:
            cur.execute("SELECT key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id "
                        "WHERE u.username LIKE 'seed-%%' ORDER BY u.id")
            seed_tokens = [row[0] for row in cur.fetchall()]
        page_plan, count_plan = inbox_plan("seed-1")
    bulk = bulk_start() if BULK_PROCESSES else {}
    postmaster = postmaster_pid()
    seeded_s = time.perf_counter() - started
    connection.close()

    server_log = Path(tempfile.gettempdir()) / f"gndp-bench-api-{PORT}.log"
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(PORT),
         "--workers", str(WORKERS), "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "120",
         *UVICORN_ARGS],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=python_path), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=server_log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("uvicorn did not start")
                time.sleep(0.2)
        while len(worker_pids(server.pid)) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        try:
            from uvloop import run  # the client's own overhead, kept small
        except ImportError:
            run = asyncio.run
        result = run(measure(server.pid, postmaster, bench_users, seed_tokens))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    from tasks.models import TaskInstance

    plan_indexes = sorted(set(re.findall(r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)",
                                         page_plan + count_plan))) if OPEN_TASKS else []
    print(json.dumps({
        "benchmark": "api",
        "database": connection.vendor,
        "server": " ".join(["uvicorn", APP, f"--workers {WORKERS}", *UVICORN_ARGS]),
        "settings": os.environ["DJANGO_SETTINGS_MODULE"],
        "clients": CLIENTS,
        "seconds": SECONDS,
        "steps_per_process": STEPS,
        "idempotency_keys": IDEMPOTENCY,
        "open_tasks_seeded": OPEN_TASKS,
        "closed_tasks_seeded": CLOSED_TASKS if OPEN_TASKS else 0,
        **bulk,
        **result,
        "inbox_plan_indexes": plan_indexes,
        "inbox_plan_seq_scan_on_tasks": bool(OPEN_TASKS and re.search(r"Seq Scan on tasks_taskinstance",
                                                                      page_plan + count_plan)),
        "completed_in_db": TaskInstance.objects.filter(process__workflow_id=JOURNEY, role__in=[ROLE, QUEUE_ROLE],
                                                       status="completed").count(),
        "server_errors_logged": server_log.read_text(errors="replace").count("Internal Server Error"),
        "setup_s": round(seeded_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }))
    if OPEN_TASKS and os.environ.get("BENCH_SHOW_PLAN"):
        print(page_plan, "\n", count_plan, file=sys.stderr)


if __name__ == "__main__":
    main()
