"""Soak of background work against a running `make run`: nothing a worker does may be lost.

    make run                                   # in one terminal (PORT=..., GNDP_VAR_DIR=... as wished)
    .venv/bin/python bench/soak.py --minutes 60 [--url http://127.0.0.1:8000] [--interval 3]
                                   [--kill-worker-every 600]

Runs beside the app, on the same machine and with the same environment (it reads the
database for the workers' heartbeats, and the worker's log for the supervisor's lines).

- Loads a small journey of its own (`soak-background`, as `--admin`): a person's step, a
  system step, a person's step the system step creates, a system step that closes it. Its
  people's steps go to the queue of `--role`, whose member `--user` does them.
- Every `--interval` seconds it starts `--processes` processes and works every open step
  of them through the REST API (claim, complete, with idempotency keys), until `--minutes`
  have passed; then it only works what is left, until every process is done or
  `--deadline` seconds have passed (system steps wait for a worker).
- Keeps `--user`'s inbox WebSocket open all along and records the `task.created` of each
  review step (created by a system step, in the worker) that arrives live.
- With `--kill-worker-every S`, sends kill -9 to the running worker (its pid from its
  heartbeat) every S seconds, for the supervisor to restart it.

At the end it checks that every process completed with every step done once, that every
review step arrived live once, and that every worker that stopped beating without a clean
stop (during the soak or shortly before) was reported dead by the supervisor; prints one
JSON line of figures and exits 1 on any loss.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
JOURNEY_ID = "soak-background"
ATOMS = ["soak-fill", "soak-check", "soak-review", "soak-close"]
DIED = re.compile(r"gndp-supervisor: worker \(pid (\d+)\) died")
STARTED = re.compile(r"gndp-supervisor: worker started \(pid (\d+)\)")


def journey(role: str) -> dict:
    return {
        "format": "gndp-journey/1",
        "journey": {"id": JOURNEY_ID, "name": "Soak of background work"},
        "roles": [{"id": role, "name": role, "assignment": "queue"}],
        "phases": [{"id": "soak-phase", "name": "Soak", "modules": [
            {"id": "soak-module", "name": "Soak", "atoms": ATOMS}]}],
        "atoms": [
            {"id": "soak-fill", "name": "Fill in", "performed_by": role,
             "form": [{"name": "amount", "type": "number", "required": True}]},
            {"id": "soak-check", "name": "Check", "kind": "system", "handler": "set_context",
             "params": {"checked": True}},
            {"id": "soak-review", "name": "Review", "performed_by": role},
            {"id": "soak-close", "name": "Close", "kind": "system", "handler": "noop"},
        ],
        "edges": [{"type": "ENABLES", "from": a, "to": b} for a, b in zip(ATOMS, ATOMS[1:])],
    }


class Client:
    """One signed-in user: the REST API with its session, and its inbox socket."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.get(self.url + "/accounts/login/", timeout=30)
        response = self.session.post(self.url + "/accounts/login/", allow_redirects=False, timeout=30, data={
            "username": user, "password": password, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]},
            headers={"Referer": self.url + "/accounts/login/"})
        if response.status_code != 302:
            raise SystemExit(f"could not sign in as {user} at {self.url} ({response.status_code})")
        self.errors = 0
        self.server_errors = 0

    def call(self, method: str, path: str, body=None, *, key: str | None = None, ok=(200, 201)):
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""), "Referer": self.url + "/"}
        if key:
            headers["Idempotency-Key"] = key
        for attempt in range(3):
            try:
                response = self.session.request(method, self.url + path, json=body, headers=headers, timeout=60)
            except requests.RequestException:
                self.errors += 1
                time.sleep(1 + attempt)
                continue
            if response.status_code >= 500:
                self.server_errors += 1
                time.sleep(1 + attempt)
                continue
            if response.status_code not in ok:
                self.errors += 1
            return response
        return None

    def socket(self):
        return connect(self.url.replace("http", "ws", 1) + "/ws/inbox/", origin=self.url, proxy=None,
                       open_timeout=10, additional_headers={"Cookie": f"sessionid={self.session.cookies['sessionid']}"})


class Listener(threading.Thread):
    """The inbox socket, kept open (and opened again when it drops): the review steps' task.created."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True, name="soak-inbox")
        self.client = client
        self.reviews: dict[int, list[float]] = {}  # task id -> latencies (s), one per arrival
        self.reconnects = 0
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.client.socket() as socket:
                    self.ready.set()
                    while not self.stopping.is_set():
                        try:
                            frame = json.loads(socket.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if frame.get("type") == "task.created" and frame.get("atom_id") == "soak-review":
                            sent = datetime.fromisoformat(frame["timestamp"])
                            latency = (datetime.now(timezone.utc) - sent).total_seconds()
                            self.reviews.setdefault(frame["task_id"], []).append(latency)
            except Exception:  # noqa: BLE001 - a dropped socket is opened again, and counted
                if self.stopping.is_set():
                    return
                self.reconnects += 1
                time.sleep(1)


def worker_log_lines(path: Path, offset: int) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


def broker_of(path: Path) -> str:
    """The broker the worker said it connected to last (its log's "Connected to" line)."""
    lines = worker_log_lines(path, 0)
    found = [m[1] for line in lines if (m := re.search(r"Connected to (\w+)://", line))]
    return found[-1] if found else "unknown"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def heartbeats(since: datetime) -> list[dict]:
    from monitoring.models import WorkerHeartbeat

    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=since).values(
        "pid", "node", "started_at", "last_seen_at", "stopped_at"))


def running_worker_pid() -> int | None:
    from monitoring.models import WorkerHeartbeat

    for row in WorkerHeartbeat.objects.filter(stopped_at__isnull=True).order_by("-last_seen_at")[:5]:
        if pid_alive(row.pid):
            return row.pid
    return None


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.admin = Client(args.url, args.admin, args.admin_password)
        self.user = Client(args.url, args.user, args.password)
        self.processes: set[int] = set()
        self.completions = 0
        self.kills = 0

    def load_journey(self) -> None:
        response = self.admin.call("POST", "/api/journeys/import", journey(self.args.role))
        if response is None or response.status_code not in (200, 201):
            raise SystemExit(f"could not load the soak journey: {getattr(response, 'text', '')[:300]}")

    def start_processes(self) -> None:
        for _ in range(self.args.processes):
            response = self.user.call("POST", "/api/processes/start", {"journey_id": JOURNEY_ID},
                                      key=f"soak-start-{uuid.uuid4()}", ok=(201,))
            if response is not None and response.status_code == 201:
                self.processes.add(response.json()["id"])

    def work(self) -> None:
        """Claim and complete every open person's step of our processes."""
        response = self.user.call("GET", "/api/tasks/inbox?limit=500")
        if response is None or response.status_code != 200:
            return
        tasks = response.json()
        tasks = tasks["results"] if isinstance(tasks, dict) else tasks
        for task in tasks:
            if task["process_instance_id"] not in self.processes or task["status"] not in ("pending", "in_progress"):
                continue
            if task["assigned_to"] is None:
                claimed = self.user.call("POST", f"/api/tasks/{task['id']}/start", key=f"soak-claim-{task['id']}")
                if claimed is None or claimed.status_code != 200:
                    continue
            result = {"amount": 1000} if task["atom_id"] == "soak-fill" else {}
            done = self.user.call("POST", f"/api/tasks/{task['id']}/complete", {"result": result},
                                  key=f"soak-complete-{task['id']}")
            if done is not None and done.status_code == 200:
                self.completions += 1

    def maybe_kill_worker(self, last_kill: float) -> float:
        every = self.args.kill_worker_every
        if not every or time.monotonic() - last_kill < every:
            return last_kill
        pid = running_worker_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self.kills += 1
        return time.monotonic()

    def states(self) -> dict[int, dict]:
        found = {}
        for process_id in sorted(self.processes):
            response = self.user.call("GET", f"/api/processes/{process_id}")
            found[process_id] = response.json() if response is not None and response.status_code == 200 else {}
        return found

    def reviews_made(self) -> dict[int, int]:
        """Review task id -> process id, from each process's history (the truth)."""
        made = {}
        for process_id in sorted(self.processes):
            response = self.user.call("GET", f"/api/processes/{process_id}/history")
            events = response.json() if response is not None and response.status_code == 200 else []
            events = events["results"] if isinstance(events, dict) else events
            for event in events:
                if event["type"] == "task.created" and event.get("atom_id") == "soak-review":
                    made[event["task_id"]] = process_id
        return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("GNDP_SOAK_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between rounds")
    parser.add_argument("--processes", type=int, default=1, help="processes started a round")
    parser.add_argument("--deadline", type=float, default=180.0,
                        help="seconds the end waits for what is left (system steps wait for a worker)")
    parser.add_argument("--user", default="olivia")
    parser.add_argument("--password", default="demo1234")
    parser.add_argument("--role", default="role-loan-officer", help="a role of --user: the soak's steps go to it")
    parser.add_argument("--admin", default="admin", help="who loads the soak journey")
    parser.add_argument("--admin-password", default="demo1234")
    parser.add_argument("--worker-log", type=Path,
                        default=Path(os.environ.get("GNDP_VAR_DIR", ROOT / "var")) / "worker.log")
    parser.add_argument("--kill-worker-every", type=float, default=0.0, help="seconds; 0: never")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
    import django

    django.setup()
    from django.conf import settings

    began_at = datetime.now(timezone.utc)
    began = time.monotonic()
    log_offset = args.worker_log.stat().st_size if args.worker_log.exists() else 0
    soak = Soak(args)
    soak.load_journey()
    listener = Listener(soak.user)
    listener.start()
    if not listener.ready.wait(30):
        raise SystemExit("the inbox socket did not open")

    last_kill = time.monotonic()
    while time.monotonic() - began < args.minutes * 60:
        round_began = time.monotonic()
        soak.start_processes()
        soak.work()
        last_kill = soak.maybe_kill_worker(last_kill)
        time.sleep(max(0.0, args.interval - (time.monotonic() - round_began)))

    # The end: work what is left until every process is done, or the deadline.
    ending = time.monotonic()
    while time.monotonic() - ending < args.deadline:
        soak.work()
        states = soak.states()
        if all(state.get("status") == "completed" for state in states.values()):
            break
        time.sleep(1)
    drained_in = time.monotonic() - ending
    time.sleep(3)  # the last reviews' live messages
    listener.stopping.set()

    states = soak.states()
    complete = [pid for pid, state in states.items() if state.get("status") == "completed"
                and sorted(state.get("completed_steps") or []) == sorted(ATOMS)
                and (state.get("context") or {}).get("checked") is True]
    made = soak.reviews_made()
    arrived = listener.reviews
    latencies = sorted(min(times) for task_id, times in arrived.items() if task_id in made)

    lines = worker_log_lines(args.worker_log, log_offset)
    died = [int(pid) for line in lines for pid in DIED.findall(line)]
    restarted = [int(pid) for line in lines for pid in STARTED.findall(line)]
    ever_died = {int(pid) for line in worker_log_lines(args.worker_log, 0) for pid in DIED.findall(line)}
    # The workers that beat during the soak, or shortly before it began (one that died just
    # before is as much a loss as one that dies during it).
    beats = heartbeats(began_at - timedelta(seconds=2 * settings.GNDP_WORKER_STALE_SECONDS))
    beaten = {row["pid"] for row in beats}
    # A worker that stopped beating with no clean stop and is gone: a death.
    gone = {row["pid"] for row in beats if row["stopped_at"] is None and not pid_alive(row["pid"])}

    figures = {
        "duration_minutes": round((time.monotonic() - began) / 60, 2),
        "interval_seconds": args.interval,
        "processes_started": len(soak.processes),
        "processes_completed": len(complete),
        "processes_lost": len(soak.processes) - len(complete),
        "drain_seconds": round(drained_in, 1),
        "steps_completed_by_api": soak.completions,
        "review_steps_made_by_system_steps": len(made),
        "review_steps_seen_live": len(set(arrived) & set(made)),
        "review_steps_missed_live": len(set(made) - set(arrived)),
        "review_steps_seen_twice": sum(1 for times in arrived.values() if len(times) > 1),
        "live_latency_p50_seconds": round(statistics.median(latencies), 3) if latencies else None,
        "live_latency_p95_seconds": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "socket_reconnects": listener.reconnects,
        "worker_kills": soak.kills,
        "worker_deaths_reported": len(died),
        "worker_starts_reported": len(restarted),
        "worker_heartbeat_rows": len(beats),
        "worker_deaths_unreported": len(gone - ever_died),
        "worker_deaths_never_beaten": len(set(died) - beaten),
        "api_errors": soak.user.errors + soak.admin.errors,
        "api_server_errors": soak.user.server_errors + soak.admin.server_errors,
        "broker": broker_of(args.worker_log),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
    }
    print(json.dumps(figures))
    lost = (figures["processes_lost"] or figures["review_steps_missed_live"] or figures["review_steps_seen_twice"]
            or figures["worker_deaths_unreported"] or figures["api_server_errors"]
            or (args.kill_worker_every and figures["worker_deaths_reported"] < soak.kills))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
