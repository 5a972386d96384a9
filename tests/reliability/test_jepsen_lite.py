"""C6 jepsen_lite_history: concurrent random operations over HTTP against the scale-out
shape while faults are injected; the client-side history and the database are then checked
against the engine's invariants.

The shape: two uvicorn servers and two Celery workers (solo pool) sharing the test
PostgreSQL and a private Redis (channel layer and broker), plus a beat stand-in that sends
the `requeue_stale_system_tasks` sweep every 2 s.

Clients: JEPSEN_CLIENTS threads (default 8), each a user (officers, reviewers of a queue
role, an administrator), doing random start / claim / complete / suspend / resume / abort,
and now and then re-sending a completion that already succeeded under a new key. Every
write carries an Idempotency-Key; a write that gets no answer or a 5xx is retried with the
same key on either server, and is recorded as indeterminate if it never gets an answer.

Faults (nemesis), placed by the share of operations done: kill -9 of a server and of a
worker, each restarted later; pg_terminate_backend of random server and worker backends;
Redis paused (SIGSTOP) for a second. At the end the run quiesces (everything up, the sweep
until no system step is waiting, and the dead worker's unacknowledged messages redelivered
as late duplicates), and the checker asserts:

- every acknowledged completion persisted (task completed, with the result that was sent),
  every acknowledged start, claim, abort, suspend and resume too;
- no task completed twice: one task.completed event per task, one 200 per task over all keys;
- no open task under a closed (completed or aborted) process, and one task.cancelled event
  per cancelled task;
- every finished process has exactly one end event, and unfinished ones none;
- replaying each process's event log on the engine core (start, then complete in
  task.completed order with the stored results, then abort if it was aborted) rebuilds its
  stored atom states, fired edges, context and completion;
- every completed system step with an outside effect applied it once (the ledger), and no
  system step of a running process is left waiting.

JEPSEN_OPERATIONS sets the number of write operations (default 1500 in `make test`) and
JEPSEN_SECONDS caps the time they may take (default 60 s, so that `make test` stays bounded
on a slow or busy machine: the run then stops early, with every fault still injected, since
faults are placed by the share of operations or of the cap, whichever is further, and must
still reach 500 operations); JEPSEN_SEED sets the random seed, JEPSEN_REPORT names a file
for the run's numbers (JSON).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import pytest
import requests
from django.db import connection

from processes import versions
from processes.engine import core
from processes.models import ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability import journeys
from tests.reliability.conftest import make_api, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

OPERATIONS = int(os.environ.get("JEPSEN_OPERATIONS", "1500"))
SECONDS = float(os.environ.get("JEPSEN_SECONDS", "60"))  # a cap on the operation phase, for `make test`
MINIMUM = min(OPERATIONS, 500)  # fewer than this before the cap fails the run
CLIENTS = int(os.environ.get("JEPSEN_CLIENTS", "8"))
SEED = int(os.environ.get("JEPSEN_SEED", str(random.SystemRandom().randrange(1_000_000))))
WEIGHTS = {"start": 12, "claim": 18, "complete": 45, "complete_again": 3, "suspend": 5, "resume": 12, "abort": 3}
OPEN = ("pending", "in_progress")
FINAL = ("completed", "aborted")


@dataclass
class Op:
    client: int
    user: str
    op: str
    target: int | None = None  # task or process id
    key: str = ""
    body: dict = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    status: int | None = None  # the final answer; None = indeterminate
    replayed: bool = False
    tries: list = field(default_factory=list)  # what each failed try got
    answer: dict = field(default_factory=dict)


class Run:
    """The shared state of one run: servers, the history, the operation counter."""

    def __init__(self, cluster, servers, workers, apis):
        self.cluster, self.servers, self.workers, self.apis = cluster, servers, workers, apis
        self.history: list[Op] = []
        self.lock = threading.Lock()
        self.done = 0
        self.stop = threading.Event()
        self.faults: list[dict] = []
        self.started_processes: dict[int, dict] = {}  # id -> {starter, status}
        self.contexts: dict[str, dict] = {}  # business key -> start context
        self.peak_connections = 0

    def progress(self) -> float:
        """The share of the run done: of the operations, or of the time cap if that is further."""
        return max(self.done / OPERATIONS, (time.monotonic() - self.t0) / SECONDS)

    def next_op(self) -> bool:
        with self.lock:
            if self.done >= OPERATIONS or time.monotonic() - self.t0 >= SECONDS:
                return False
            self.done += 1
            return True

    def fault(self, kind: str, **details) -> None:
        with self.lock:
            self.faults.append({"kind": kind, "at_op": self.done, "t": round(time.monotonic() - self.t0, 2),
                                **details})


# --- clients -------------------------------------------------------------------------------------

class Client(threading.Thread):
    def __init__(self, run: Run, index: int, api, rng: random.Random):
        super().__init__(name=f"jepsen-client-{index}", daemon=True)
        self.run_, self.index, self.api, self.rng = run, index, api, rng
        self.admin = api.user.is_superuser
        self.completed: list[int] = []  # tasks this client completed (for complete_again)
        self.error: BaseException | None = None
        self.seen: list[dict] = []  # the last inbox read, used for a few operations (stale on purpose)
        self.reads = 0

    def run(self) -> None:
        try:
            while not self.run_.stop.is_set() and self.run_.next_op():
                self.one()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    # HTTP with retries: same key, either server.
    def send(self, method: str, path: str, body=None, key: str | None = None, params=None):
        tries = []
        first = self.rng.randrange(len(self.run_.servers))
        for attempt in range(8):  # a random server first, then the others in turn
            server = self.run_.servers[(first + attempt) % len(self.run_.servers)]
            try:
                if method == "GET":
                    response = self.api.session.get(server.url + path, params=params, timeout=15)
                else:
                    headers = {"Idempotency-Key": key} if key else {}
                    response = self.api.session.post(server.url + path, json=body or {}, headers=headers,
                                                     timeout=15)
            except requests.RequestException as exc:
                tries.append(type(exc).__name__)
            else:
                if response.status_code < 500:
                    return response, tries
                tries.append(response.status_code)
            time.sleep(min(1.0, 0.05 * 2 ** attempt))
        return None, tries

    def write(self, op: str, path: str, body: dict, target: int | None) -> Op:
        record = Op(self.index, self.api.username, op, target, key=uuid.uuid4().hex, body=body,
                    started=time.monotonic())
        response, record.tries = self.send("POST", path, body, record.key)
        record.ended = time.monotonic()
        if response is not None:
            record.status = response.status_code
            record.replayed = response.headers.get("Idempotent-Replayed") == "true"
            data = response.json()
            record.answer = {k: data.get(k) for k in ("id", "status", "assigned_to", "business_key", "result")} \
                if isinstance(data, dict) and "error" not in data else {"error": (data.get("error") or {}).get("code")}
        with self.run_.lock:
            self.run_.history.append(record)
        return record

    def inbox(self) -> list[dict]:
        """The last inbox read, read again every third use: some entries are stale by then,
        which makes for the races a person with an old page open causes."""
        self.reads += 1
        if self.reads % 3 == 0 or not self.seen:
            self.seen = self.read_inbox()
        return self.seen

    def read_inbox(self) -> list[dict]:
        params = {"limit": 25}
        if self.admin:
            params["user_id"] = self.rng.choice([a.username for a in self.run_.apis if not a.user.is_superuser])
        response, _ = self.send("GET", "/api/tasks/inbox", params=params)
        return response.json() if response is not None and response.status_code == 200 else []

    def one(self) -> None:
        ops = list(WEIGHTS)
        op = self.rng.choices(ops, weights=[WEIGHTS[o] for o in ops])[0]
        for choice in (op, "complete", "claim", "start"):
            if getattr(self, f"do_{choice}")():
                return

    def do_start(self) -> bool:
        business_key = f"bk-{uuid.uuid4().hex}"
        context = {"channel": self.rng.choice(["web", "branch", "phone"]), "ref": self.rng.randrange(10_000)}
        with self.run_.lock:
            self.run_.contexts[business_key] = context
        record = self.write("start", "/api/processes/start",
                            {"journey_id": "rel-jepsen", "context": context, "business_key": business_key}, None)
        if record.status == 201:
            with self.run_.lock:
                self.run_.started_processes[record.answer["id"]] = {"starter": self.api.username, "status": "running"}
        return True

    def do_claim(self) -> bool:
        tasks = [t for t in self.inbox() if t["assigned_to"] is None and t["kind"] == "human"]
        if not tasks or self.admin:
            return False
        task = self.rng.choice(tasks)
        self.seen.remove(task)
        self.write("claim", f"/api/tasks/{task['id']}/start", {}, task["id"])
        return True

    def do_complete(self) -> bool:
        tasks = [t for t in self.inbox() if t["kind"] == "human"
                 and (self.admin or t["assigned_to"] == self.api.username)]
        if not tasks:
            return False
        task = self.rng.choice(tasks)
        self.seen.remove(task)
        result = {"j-apply": {"amount": self.rng.randrange(1000)},
                  "j-join": {"approved": self.rng.random() < 0.5}}.get(task["atom_id"], {})
        record = self.write("complete", f"/api/tasks/{task['id']}/complete", {"result": result}, task["id"])
        if record.status == 200:
            self.completed.append(task["id"])
        return True

    def do_complete_again(self) -> bool:
        """A double submit without the key: must never be a second success."""
        if not self.completed:
            return False
        task_id = self.rng.choice(self.completed)
        self.write("complete_again", f"/api/tasks/{task_id}/complete", {"result": {}}, task_id)
        return True

    def _steerable(self, statuses) -> int | None:
        with self.run_.lock:
            ids = [pid for pid, p in self.run_.started_processes.items()
                   if p["status"] in statuses and (self.admin or p["starter"] == self.api.username)]
        return self.rng.choice(ids) if ids else None

    def _steer(self, op: str, statuses, body=None) -> bool:
        pid = self._steerable(statuses)
        if pid is None:
            return False
        record = self.write(op, f"/api/processes/{pid}/{op}", body or {}, pid)
        if record.status == 200 or record.answer.get("error") in ("invalid_state",):
            response, _ = self.send("GET", f"/api/processes/{pid}")
            if response is not None and response.status_code == 200:
                with self.run_.lock:
                    self.run_.started_processes[pid]["status"] = response.json()["status"]
        return True

    def do_suspend(self) -> bool:
        return self._steer("suspend", ("running",))

    def do_resume(self) -> bool:
        return self._steer("resume", ("suspended",))

    def do_abort(self) -> bool:
        return self._steer("abort", ("running", "suspended"), {"reason": "jepsen-lite"})


# --- faults ---------------------------------------------------------------------------------------

def backends(pattern: str = "rel-c6-%") -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, application_name, state FROM pg_stat_activity WHERE application_name LIKE %s"
                       " AND datname = current_database()", [pattern])
        return cursor.fetchall()


def nemesis(run: Run, rng: random.Random) -> None:
    """Faults at fixed shares of the run; `at` is the share of operations done."""
    server, worker = run.servers[0], run.workers[0]
    plan = [(0.10, "terminate"), (0.20, "kill_server"), (0.25, "terminate"), (0.32, "restart_server"),
            (0.40, "terminate"), (0.45, "kill_worker"), (0.55, "restart_worker"), (0.60, "terminate"),
            (0.70, "pause_redis"), (0.80, "terminate"), (0.90, "terminate")]
    try:
        for share, kind in plan:
            while run.progress() < share and not run.stop.is_set():
                time.sleep(0.1)
                rows = backends()
                run.peak_connections = max(run.peak_connections, len(rows))
            if run.stop.is_set() and kind not in ("restart_server", "restart_worker"):
                continue
            if kind == "terminate":
                rows = backends()
                active = [r for r in rows if r[2] != "idle"] or rows
                victims = rng.sample(active, min(3, len(active)))
                with connection.cursor() as cursor:
                    for pid, _, _ in victims:
                        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
                run.fault(kind, backends=[f"{name}:{state}" for _, name, state in victims])
            elif kind == "kill_server":
                server.kill()
                run.fault(kind, server=server.name)
            elif kind == "restart_server":
                server.start().wait_ready()
                run.fault(kind, server=server.name)
            elif kind == "kill_worker":
                import redis

                worker.kill()
                held = redis.Redis.from_url(run.cluster.redis.url).zcard("unacked_index")
                run.fault(kind, worker=worker.name, unacked_messages=held)
            elif kind == "restart_worker":
                worker.start().wait_ready()
                run.fault(kind, worker=worker.name)
            elif kind == "pause_redis":
                run.cluster.redis.signal(19)  # SIGSTOP
                time.sleep(1.0)
                run.cluster.redis.signal(18)  # SIGCONT
                run.fault(kind, seconds=1.0)
    finally:
        connection.close()


def beat(run: Run) -> None:
    """Stands in for celery beat: the sweep every 2 s, for steps waiting over 3 s."""
    while not run.stop.wait(2.0):
        try:
            run.cluster.sweep(older_than=3)
        except Exception:  # noqa: BLE001 - Redis paused or busy: the next tick tries again
            pass


# --- the checker ------------------------------------------------------------------------------------

def check(run: Run, cluster) -> tuple[list[str], dict]:
    problems: list[str] = []
    processes = {p.pk: p for p in ProcessInstance.objects.filter(workflow_id="rel-jepsen")}
    tasks = {t.pk: t for t in TaskInstance.objects.filter(process_id__in=processes)}
    events = list(ProcessEvent.objects.filter(process_id__in=processes).order_by("id"))
    by_type: dict[tuple[int, str], int] = Counter((e.process_id, e.type) for e in events)
    completed_events = Counter(e.task_id for e in events if e.type == "task.completed")
    history = run.history

    # 1. Every acknowledged write persisted.
    for op in history:
        if op.status is None or op.status >= 300:
            continue
        if op.op == "complete":
            task = tasks.get(op.target)
            if task is None or task.status != "completed" or task.result != op.body["result"]:
                problems.append(f"acknowledged completion of task {op.target} not persisted: "
                                f"{task and (task.status, task.result)} vs {op.body['result']}")
            elif task.completed_by.username != op.user:
                problems.append(f"task {op.target} completed by {task.completed_by} but acknowledged to {op.user}")
        elif op.op == "complete_again":
            problems.append(f"task {op.target} completed a second time under a new key ({op.status})")
        elif op.op == "start":
            matches = [p for p in processes.values() if p.business_key == op.body["business_key"]]
            if len(matches) != 1 or matches[0].pk != op.answer["id"]:
                problems.append(f"acknowledged start {op.body['business_key']} -> {[p.pk for p in matches]}")
        elif op.op == "claim":
            claims = [e for e in events if e.task_id == op.target and e.type == "task.assigned"
                      and e.payload.get("claimed")]
            if [e.username for e in claims] != [op.user]:
                problems.append(f"acknowledged claim of task {op.target} by {op.user}: {[e.username for e in claims]}")
        elif op.op == "abort" and processes[op.target].status != "aborted":
            problems.append(f"acknowledged abort of process {op.target} but it is {processes[op.target].status}")
    for op_name, event in (("suspend", "process.suspended"), ("resume", "process.resumed")):
        acked, unknown = Counter(), Counter()
        for op in history:
            if op.op == op_name:
                (acked if op.status == 200 else unknown if op.status is None else Counter())[op.target] += 1
        for pid in set(acked) | set(unknown):
            if not acked[pid] <= by_type[(pid, event)] <= acked[pid] + unknown[pid]:
                problems.append(f"process {pid}: {acked[pid]} acknowledged {op_name}s, {unknown[pid]} unknown, "
                                f"{by_type[(pid, event)]} {event} events")

    # 2. No task completed twice.
    for task_id, count in completed_events.items():
        if count != 1:
            problems.append(f"task {task_id} has {count} task.completed events")
    keys_ok = defaultdict(set)
    for op in history:
        if op.op in ("complete", "complete_again") and op.status == 200:
            keys_ok[op.target].add(op.key)
    problems += [f"task {t} acknowledged as completed under {len(k)} keys" for t, k in keys_ok.items() if len(k) > 1]
    for task in tasks.values():
        if (task.status == "completed") != (completed_events[task.pk] == 1):
            problems.append(f"task {task.pk} is {task.status} with {completed_events[task.pk]} completion events")

    # 3. No open task under a closed process; each cancelled task was cancelled once, on the record.
    problems += [f"open task {t.pk} ({t.atom_id}) under {processes[t.process_id].status} process {t.process_id}"
                 for t in tasks.values() if t.status in OPEN and processes[t.process_id].status in FINAL]
    cancelled_events = Counter(e.task_id for e in events if e.type == "task.cancelled")
    problems += [f"task {t.pk} is {t.status} with {cancelled_events[t.pk]} task.cancelled events"
                 for t in tasks.values() if (t.status == "cancelled") != (cancelled_events[t.pk] == 1)]

    # 4. Exactly one end event for a finished process, none for the others.
    for pid, process in processes.items():
        ends = (by_type[(pid, "process.completed")], by_type[(pid, "process.aborted")])
        expected = {"completed": (1, 0), "aborted": (0, 1)}.get(process.status, (0, 0))
        if ends != expected:
            problems.append(f"process {pid} is {process.status} with end events {ends}")

    # 5. Replaying the event log on the engine core rebuilds the stored state.
    order: dict[int, list[int]] = defaultdict(list)
    for e in events:
        if e.type == "task.completed":
            order[e.process_id].append(e.task_id)
    for pid, process in processes.items():
        context = run.contexts.get(process.business_key)
        if context is None:
            problems.append(f"process {pid} has a business key no client sent: {process.business_key}")
            continue
        blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
        step = core.start(blueprint, context)
        for task_id in order[pid]:
            task = tasks[task_id]
            step = core.complete(blueprint, step.runtime, step.context, task.atom_id, task.result or {})
        if by_type[(pid, "process.aborted")]:
            step = core.abort(step.runtime, step.context)  # its active atoms are cancelled
        fired = {a: sorted(t) for a, t in step.runtime.fired.items()}
        if (dict(step.runtime.states), fired, step.context) != (process.atom_states, process.fired_edges,
                                                              process.context):
            problems.append(f"process {pid}: replay gives {dict(step.runtime.states)} / {step.context}, "
                            f"stored {process.atom_states} / {process.context}")
        if step.completed != (process.status == "completed"):
            problems.append(f"process {pid} is {process.status} but the replay says completed={step.completed}")

    # 6. System work: each effect once, nothing left waiting, nothing failed.
    redelivered = 0
    for task in tasks.values():
        if task.kind != "system":
            continue
        attempts = cluster.attempts(task.pk)
        redelivered += attempts > 1
        if task.status == "completed" and task.atom_id in ("j-open", "j-effect") and cluster.effects(task.pk) != 1:
            problems.append(f"system task {task.pk} completed without its effect")
        if task.status in OPEN and processes[task.process_id].status == "running":
            problems.append(f"system task {task.pk} of running process {task.process_id} left waiting")
    problems += [f"process {pid} failed: {p.failure}" for pid, p in processes.items() if p.status == "failed"]

    latencies = defaultdict(list)
    for op in history:
        latencies[op.op].append(op.ended - op.started)
    latency = {name: {"p50": round(sorted(v)[len(v) // 2], 3), "p95": round(sorted(v)[int(len(v) * 0.95)], 3),
                      "max": round(max(v), 3)} for name, v in sorted(latencies.items())}
    outcomes = Counter(f"{op.op}:{op.status if op.status is not None else 'indeterminate'}" for op in history)
    numbers = {
        "operations": len(history),
        "clients": CLIENTS,
        "seed": SEED,
        "outcomes": dict(sorted(outcomes.items())),
        "latency_seconds": latency,
        "retried_operations": sum(1 for op in history if op.tries),
        "indeterminate": sum(1 for op in history if op.status is None),
        "indeterminate_detail": [(op.op, op.target, op.tries) for op in history if op.status is None][:20],
        "failed_tries": dict(Counter(str(t) for op in history for t in op.tries)),
        "replayed_answers": sum(1 for op in history if op.replayed),
        "processes": dict(Counter(p.status for p in processes.values())),
        "tasks": dict(Counter(t.status for t in tasks.values())),
        "events": len(events),
        "system_steps_run_more_than_once": redelivered,
        "faults": run.faults,
        "peak_connections": run.peak_connections,
        "violations": len(problems),
    }
    return problems, numbers


# --- the test ---------------------------------------------------------------------------------------

def test_c6_jepsen_lite_history_keeps_the_invariants_under_faults(cluster, publish):
    publish(journeys.JEPSEN)
    rng = random.Random(SEED)
    users = [("j-officer-1", ["role-rel-a"]), ("j-reviewer-1", ["role-rel-q"]), ("j-officer-2", ["role-rel-a"]),
             ("j-reviewer-2", ["role-rel-q"]), ("j-officer-3", ["role-rel-a"]), ("j-admin", [])]
    apis = [make_api(name, roles, superuser=name == "j-admin") for name, roles in users]
    cluster.start_redis()
    settings_env = {"DEBUG": "0"}  # as in production: no query log kept per request
    servers = [cluster.server(f"c6-server-{i}", **settings_env) for i in range(2)]
    workers = [cluster.worker(f"c6-worker-{i}") for i in range(2)]
    [p.wait_ready() for p in servers + workers]

    run = Run(cluster, servers, workers, apis)
    run.t0 = time.monotonic()
    clients = [Client(run, i, apis[i % len(apis)], random.Random(rng.random())) for i in range(CLIENTS)]
    helpers = [threading.Thread(target=nemesis, args=(run, random.Random(rng.random())), daemon=True),
               threading.Thread(target=beat, args=(run,), daemon=True)]
    [t.start() for t in clients + helpers]
    deadline = time.monotonic() + SECONDS + 60
    for client in clients:
        client.join(max(0.1, deadline - time.monotonic()))
    ran_for = time.monotonic() - run.t0
    run.stop.set()
    helpers[0].join(60)
    helpers[1].join(5)
    assert not any(c.is_alive() for c in clients), f"the clients did not finish in time ({run.done} operations)"
    assert not [c.error for c in clients if c.error], [c.error for c in clients if c.error]

    # Quiesce: everything up; the sweep until no system step waits; the dead worker's
    # unacknowledged messages back as late duplicates; then nothing left in Redis.
    for proc in servers + workers:
        if not proc.alive:
            proc.start().wait_ready()

    def settled() -> bool:
        cluster.sweep()
        time.sleep(0.3)
        return not TaskInstance.objects.filter(kind="system", status__in=OPEN, process__status="running").exists()

    wait_for(settled, 60, 0.5, "the system steps to drain")
    late = len(cluster.redeliver_unacked())
    wait_for(cluster.queue_empty, 30, 0.1, "the late duplicates to be consumed")
    time.sleep(0.5)

    problems, numbers = check(run, cluster)
    numbers.update(seconds_running=round(ran_for, 1), late_duplicates_redelivered=late,
                   target_operations=OPERATIONS, stopped_by_time_cap=len(run.history) < OPERATIONS,
                   operations_per_second=round(len(run.history) / ran_for, 1))
    print("\nJepsen-lite:", json.dumps(numbers, indent=1))
    if os.environ.get("JEPSEN_REPORT"):
        with open(os.environ["JEPSEN_REPORT"], "w") as report:
            json.dump({**numbers, "problems": problems[:200],
                       "history_sample": [asdict(op) for op in run.history[:20]]}, report, indent=1)
    assert len(run.history) == run.done and len(run.history) >= MINIMUM, (len(run.history), ran_for)
    assert {f["kind"] for f in run.faults} >= {"kill_server", "restart_server", "kill_worker", "restart_worker",
                                                "terminate", "pause_redis"}
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems[:50])
