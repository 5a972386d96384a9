"""Live-update latency: from a task completion's commit to the event at the WebSocket clients.

    scripts/bench.sh        # or, with PostgreSQL and Redis running:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench_live REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/live.py

Starts the app under uvicorn, connects 200 session-authenticated clients to the process
channels of 10 running processes (20 each), completes 10 steps of every process through the
services in this process, and prints one JSON line: the p50/p95/p99 of commit-to-arrival.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402

PROCESSES, WATCHERS, STEPS, PORT = 10, 20, 10, int(os.environ.get("BENCH_PORT", "8765"))
PACE_S = 0.02  # one completion every 20 ms: 50 completions/s, 1,000 client deliveries/s


def session_for(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]  # a backend the server accepts
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


class Clients:
    """The WebSocket clients, on their own event loop in a thread; they note arrival times."""

    def __init__(self):
        self.arrivals: dict[int, list[float]] = {}  # task id -> perf_counter of each arrival
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()

    def run(self, targets: list[tuple[int, str]]) -> None:
        threading.Thread(target=self.loop.run_until_complete, args=(self._main(targets),), daemon=True).start()
        self.ready.wait(60)

    async def _main(self, targets) -> None:
        sockets = await asyncio.gather(*(self._connect(pid, key) for pid, key in targets))
        self.ready.set()
        await asyncio.gather(*(self._listen(ws) for ws in sockets))

    async def _connect(self, process_id: int, session_key: str):
        return await websockets.connect(
            f"ws://127.0.0.1:{PORT}/ws/processes/{process_id}/",
            additional_headers={"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{PORT}"},
        )

    async def _listen(self, ws) -> None:
        async for raw in ws:
            event = json.loads(raw)
            if event["type"] == "task.completed":
                self.arrivals.setdefault(event["task_id"], []).append(time.perf_counter())


def main() -> None:
    call_command("migrate", verbosity=0)
    from bench.engine import chain_journey
    from processes.services import start_process
    from processes.versions import publish_journey
    from tasks.models import TaskInstance
    from tasks.people import save_workflow_user
    from tasks.services import complete_task

    publish_journey({**chain_journey(STEPS), "journey": {"id": "journey-bench-live", "name": "Live bench"}})
    worker = save_workflow_user("live-worker", roles=["role-bench"]).user
    watchers = [save_workflow_user(f"watcher-{i}", roles=[], superuser=True).user for i in range(WATCHERS)]
    processes = [start_process(workflow_id="journey-bench-live", user=worker) for _ in range(PROCESSES)]
    keys = [session_for(user) for user in watchers]

    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--port", str(PORT), "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/accounts/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        clients = Clients()
        clients.run([(p.pk, keys[i]) for p in processes for i in range(WATCHERS)])
        time.sleep(1)
        committed: dict[int, float] = {}
        for step in range(STEPS):
            for process in processes:
                task_id = TaskInstance.objects.filter(process=process, status="pending").values_list("pk", flat=True)[0]
                complete_task(task_id, user=worker, result={f"v{step}": step})
                committed[task_id] = time.perf_counter()  # returns right after COMMIT
                time.sleep(PACE_S)
        time.sleep(2)
        latencies = [(t - committed[task_id]) * 1000 for task_id, times in clients.arrivals.items() for t in times]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    expected = PROCESSES * WATCHERS * STEPS
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))], 1)  # noqa: E731
    print(json.dumps({
        "benchmark": "live",
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "clients": PROCESSES * WATCHERS,
        "events_expected": expected,
        "events_received": len(latencies),
        "commit_to_client_p50_ms": pick(0.50) if ordered else None,
        "commit_to_client_p95_ms": pick(0.95) if ordered else None,
        "commit_to_client_p99_ms": pick(0.99) if ordered else None,
        "commit_to_client_mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
    }))


if __name__ == "__main__":
    main()
