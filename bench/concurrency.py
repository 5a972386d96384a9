"""Engine throughput with concurrent workers: several OS processes completing tasks through
the services at once, on one PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench_concurrent REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/concurrency.py [--workers 2] [--seconds 20] [--processes 400]

Each worker is a team: its own 10-step chain journey whose role has four members, and
`--processes` of it started through the bulk start path before the clock starts. Then every
worker, at once, works its team's tasks for `--seconds`: it reads the open tasks of its
processes (one query a round) and completes each as its assignee, every completion its own
transaction that locks the process row, routes the next step to the least busy member and
appends the events. A process that finishes is replaced by a new one (bulk-started).

Prints one JSON line: completions per second over the window (and its worst 5 s), the
advancement latency (one completion, which advances its process and assigns the next task
in the same transaction: assignment takes no longer than advancement) p50/p95/p99, errors,
the workers' peak memory, and the CPU the workers and PostgreSQL used.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("DEBUG", "0")

from bench.procs import cpu_seconds, named, peak_rss_mb  # noqa: E402

STEPS = 10
MEMBERS = 4


def team_journey(team: int) -> dict:
    from bench.engine import chain_journey

    definition = chain_journey(STEPS)
    role = f"role-team-{team}"
    for atom in definition["atoms"]:
        atom["performed_by"] = role
    definition["roles"] = [{"id": role, "name": f"Team {team}"}]
    definition["journey"] = {"id": f"journey-team-{team}", "name": f"Team {team} chain"}
    return definition


def setup(workers: int, processes: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from processes.services import start_processes
    from processes.versions import publish_journey
    from tasks.people import save_workflow_user

    call_command("migrate", verbosity=0)
    for team in range(workers):
        publish_journey(team_journey(team))
        for member in range(MEMBERS):
            save_workflow_user(f"team-{team}-{member}", roles=[f"role-team-{team}"])
        start_processes(workflow_id=f"journey-team-{team}", contexts=[{}] * processes)


def work(team: int, begin: float, end: float, queue) -> None:
    """One worker: complete its team's open tasks until `end`; report what it measured."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from processes.services import start_processes
    from tasks.models import TaskInstance
    from tasks.services import complete_task

    people = {user.pk: user for user in get_user_model().objects.filter(username__startswith=f"team-{team}-")}
    samples, errors, refills = [], {}, 0
    while time.time() < begin:
        time.sleep(0.001)
    cpu_begun = time.process_time()
    while time.time() < end:
        open_tasks = list(TaskInstance.objects.filter(
            process__workflow_id=f"journey-team-{team}", status="pending", assigned_to__isnull=False,
        ).values_list("pk", "assigned_to_id", "atom_id"))
        if not open_tasks:
            start_processes(workflow_id=f"journey-team-{team}", contexts=[{}] * 100)
            refills += 1
            continue
        for task_id, assignee, atom_id in open_tasks:
            if time.time() >= end:
                break
            step = int(atom_id.rsplit("-", 1)[1])
            t0 = time.perf_counter()
            try:
                complete_task(task_id, user=people[assignee], result={f"v{step}": step})
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            samples.append((time.time(), (time.perf_counter() - t0) * 1000))
    connection.close()
    queue.put({"team": team, "samples": samples, "errors": errors, "refills": refills,
               "rss_mb": peak_rss_mb(os.getpid()), "cpu_s": time.process_time() - cpu_begun})


def _cpu_of_postgres() -> float:
    """CPU seconds of every PostgreSQL process so far (with its exited children)."""
    return sum(cpu_seconds(pid, children=True) for pid in named("postgres"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=400, help="per worker, started before the clock")
    args = parser.parse_args()

    setup(args.workers, args.processes)
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    begin = time.time() + 5.0  # every worker imported and connected
    end = begin + args.seconds
    workers = [context.Process(target=work, args=(team, begin, end, queue)) for team in range(args.workers)]
    for worker in workers:
        worker.start()
    while time.time() < begin:
        time.sleep(0.01)
    pg_before, wall_before = _cpu_of_postgres(), time.time()
    reports = [queue.get(timeout=args.seconds + 120) for _ in workers]
    pg_used = (_cpu_of_postgres() - pg_before) / (time.time() - wall_before)
    for worker in workers:
        worker.join(30)

    from bench.engine import percentile

    def pct(q: float) -> float | None:
        return round(percentile(latencies, q), 2) if latencies else None

    samples = [sample for report in reports for sample in report["samples"]]
    latencies = [ms for _, ms in samples]
    buckets = [0] * max(1, int(args.seconds // 5))
    for finished, _ in samples:
        buckets[min(len(buckets) - 1, max(0, int((finished - begin) // 5)))] += 1
    errors: dict[str, int] = {}
    for report in reports:
        for name, count in report["errors"].items():
            errors[name] = errors.get(name, 0) + count
    print(json.dumps({
        "benchmark": "concurrency",
        "workers": args.workers,
        "seconds": args.seconds,
        "processes_per_worker": args.processes,
        "completions": len(samples),
        "completions_per_s": round(len(samples) / args.seconds, 1),
        "completions_per_s_min_5s": round(min(buckets) / 5, 1),
        "advancement_p50_ms": pct(0.50),
        "advancement_p95_ms": pct(0.95),
        "advancement_p99_ms": pct(0.99),
        "errors": errors,
        "worker_rss_mb_max": max(report["rss_mb"] for report in reports),
        "cpu_cores_workers": round(sum(report["cpu_s"] for report in reports) / args.seconds, 2),
        "cpu_cores_postgres": round(pg_used, 2),
    }))


if __name__ == "__main__":
    main()
