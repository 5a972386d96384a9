"""Engine throughput through the services, one process at a time, sequentially.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/engine.py

Prints one JSON line: processes_started_per_s, completions_per_s and the p50/p95/p99 of one
task completion in milliseconds. The journey is a chain of human steps whose role has one
member, so every completion routes the next task: the hot path of a real inbox.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

STEPS = int(os.environ.get("BENCH_STEPS", "10"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "200"))


def chain_journey(steps: int) -> dict:
    atoms = [{"id": f"atom-step-{i}", "name": f"Step {i}", "performed_by": "role-bench",
              "sla": {"target": "PT4H"}, "form": [{"name": f"v{i}", "type": "integer"}]} for i in range(steps)]
    edges = [{"type": "ENABLES", "from": f"atom-step-{i}", "to": f"atom-step-{i + 1}"} for i in range(steps - 1)]
    return {"format": "gndp-journey/1", "journey": {"id": "journey-bench", "name": "Bench chain"},
            "roles": [{"id": "role-bench", "name": "Bench"}], "atoms": atoms, "edges": edges}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    call_command("migrate", verbosity=0)
    from processes.services import start_process
    from processes.versions import publish_journey
    from tasks.models import TaskInstance
    from tasks.people import save_workflow_user
    from tasks.services import complete_task

    publish_journey(chain_journey(STEPS))
    user = save_workflow_user("bench-user", roles=["role-bench"]).user

    started = time.perf_counter()
    processes = [start_process(workflow_id="journey-bench", user=user) for _ in range(PROCESSES)]
    start_seconds = time.perf_counter() - started

    latencies = []
    cpu = 0.0  # the completing thread's own CPU; the rest of a completion is waiting on PostgreSQL
    begun = time.perf_counter()
    for process in processes:
        for i in range(STEPS):
            task_id = TaskInstance.objects.filter(process=process, status="pending").values_list("pk", flat=True)[0]
            t0, c0 = time.perf_counter(), time.thread_time()
            complete_task(task_id, user=user, result={f"v{i}": i})
            latencies.append((time.perf_counter() - t0) * 1000)
            cpu += time.thread_time() - c0
    total = time.perf_counter() - begun
    print(json.dumps({
        "benchmark": "engine",
        "database": connection.vendor,
        "processes": PROCESSES,
        "steps_per_process": STEPS,
        "processes_started_per_s": round(PROCESSES / start_seconds, 1),
        "completions_per_s": round(len(latencies) / sum(latencies) * 1000, 1),
        "completions_per_s_wall": round(len(latencies) / total, 1),
        "complete_p50_ms": round(statistics.median(latencies), 2),
        "complete_p95_ms": round(percentile(latencies, 0.95), 2),
        "complete_p99_ms": round(percentile(latencies, 0.99), 2),
        "complete_cpu_ms_mean": round(cpu / len(latencies) * 1000, 2),
    }))


if __name__ == "__main__":
    main()
