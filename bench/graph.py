"""The Neo4j graph store and the runtime mirror: a large import, a workflow read, mirror lag.

    eval "$(scripts/falkordb.sh start)"     # or NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD of a Neo4j 5
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench_graph REDIS_URL=redis://127.0.0.1:6379/10 \
        CELERY_TASK_ALWAYS_EAGER=0 .venv/bin/python bench/graph.py
    scripts/falkordb.sh stop

Prints one JSON line:
- import of a journey of BENCH_ATOMS (2,000) atoms into an empty graph, the same import again
  (unchanged: nothing written), and the median read of the whole workflow back;
- mirror lag while the services complete tasks at BENCH_RATE (100) completions/s for
  BENCH_SECONDS (10) s, with the mirror running back to back in a process of its own (as a
  busy worker would): from the commit of a completion to the mirror's cursor passing its
  events, and afterwards the number of differences `reconcile` finds (0 expected).
On FalkorDB (user falkordb) batches default to 2,500 bytes: it crashes on larger parameters.
With Redis and jobs not run eagerly, as in service: a completion hands its notifications to a
worker instead of delivering them itself (no worker runs here; the mirror has the spare core).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

ATOMS = int(os.environ.get("BENCH_ATOMS", "2000"))
RATE = float(os.environ.get("BENCH_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
STEPS = 10


def large_journey(atoms: int) -> dict:
    """Modules of 50 atoms in phases of 10 modules; a chain with a parallel pair every 10 steps."""
    ids = [f"atom-{i:05d}" for i in range(atoms)]
    modules = [{"id": f"module-{m:03d}", "name": f"Module {m}", "atoms": ids[m * 50:(m + 1) * 50]}
               for m in range((atoms + 49) // 50)]
    phases = [{"id": f"phase-{p:02d}", "name": f"Phase {p}", "modules": modules[p * 10:(p + 1) * 10]}
              for p in range((len(modules) + 9) // 10)]
    edges = []
    for i in range(atoms - 1):
        edges.append({"type": "ENABLES", "from": ids[i], "to": ids[i + 1]})
        if i % 10 == 0 and i + 2 < atoms:
            edges.append({"type": "ENABLES", "from": ids[i], "to": ids[i + 2]})
    return {
        "format": "gndp-journey/1",
        "journey": {"id": "journey-bench-large", "name": "Bench large"},
        "roles": [{"id": "role-bench", "name": "Bench"}],
        "phases": phases,
        "atoms": [{"id": atom_id, "name": f"Step {i}", "performed_by": "role-bench",
                   "sla": {"target": "PT4H"}} for i, atom_id in enumerate(ids)],
        "edges": edges,
    }


def chain_journey(steps: int) -> dict:
    atoms = [{"id": f"atom-step-{i}", "name": f"Step {i}", "performed_by": "role-bench"} for i in range(steps)]
    edges = [{"type": "ENABLES", "from": f"atom-step-{i}", "to": f"atom-step-{i + 1}"} for i in range(steps - 1)]
    return {"format": "gndp-journey/1", "journey": {"id": "journey-bench-chain", "name": "Bench chain"},
            "roles": [{"id": "role-bench", "name": "Bench"}], "atoms": atoms, "edges": edges}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure_import(store) -> dict:
    from processes import handlers
    from processes.journey import normalize

    definition = normalize(large_journey(ATOMS), known_handlers=handlers.names())
    store.delete_journey("journey-bench-large")
    t0 = time.perf_counter()
    store.save_journey(definition)
    imported = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.save_journey(definition)
    unchanged = time.perf_counter() - t0
    reads = []
    for _ in range(5):
        t0 = time.perf_counter()
        store.get_journey("journey-bench-large")
        reads.append((time.perf_counter() - t0) * 1000)
    return {"atoms": ATOMS, "import_s": round(imported, 2), "reimport_unchanged_s": round(unchanged, 2),
            "read_workflow_ms": round(statistics.median(reads), 1)}


def mirror_loop(passes_path: str) -> None:
    """The mirror run back to back in a process of its own (as a worker would run it): one
    line per pass, the wall-clock time and the cursor."""
    from processes.graph import get_store
    from processes.graph.mirror import mirror_events

    store = get_store()
    with open(passes_path, "a", buffering=1) as passes:
        while True:
            try:
                result = mirror_events(store)
            except Exception as exc:  # noqa: BLE001 - a failed run is retried, as the periodic job would be
                passes.write(f"error {type(exc).__name__}\n")
                connection.close()
                time.sleep(0.2)
                continue
            passes.write(f"{time.time()} {result.cursor}\n")
            if not result.events:
                time.sleep(0.02)


def read_passes(path: Path) -> tuple[list[tuple[float, int]], int]:
    passes, errors = [], 0
    for line in path.read_text().splitlines():
        first, second = line.split()
        if first == "error":
            errors += 1
        else:
            passes.append((float(first), int(second)))
    return passes, errors


def passed_at(passes: list[tuple[float, int]], event_id: int) -> float:
    return next((at for at, cursor in passes if cursor >= event_id), float("inf"))


def measure_mirror_lag(store) -> dict:
    from processes.graph.mirror import mirror_events, reconcile
    from processes.models import ProcessEvent
    from processes.services import start_process
    from processes.versions import publish_journey
    from tasks.models import TaskInstance
    from tasks.people import save_workflow_user
    from tasks.services import complete_task

    publish_journey(chain_journey(STEPS))
    user = save_workflow_user("bench-user", roles=["role-bench"]).user
    total = int(RATE * SECONDS)
    processes = [start_process(workflow_id="journey-bench-chain", user=user) for _ in range(total // STEPS + 1)]
    mirror_events(store)  # the starts are not what is measured
    passes_path = Path(tempfile.mkdtemp()) / "passes"
    passes_path.touch()
    loop = subprocess.Popen([sys.executable, __file__, "--mirror-loop", str(passes_path)], env=os.environ.copy())
    committed: list[tuple[float, int]] = []
    begun = time.time()
    for n in range(total):
        time.sleep(max(0.0, begun + n / RATE - time.time()))
        process = processes[n // STEPS]
        task_id = TaskInstance.objects.filter(process=process, status="pending").values_list("pk", flat=True)[0]
        complete_task(task_id, user=user, result={})
        committed.append((time.time(), ProcessEvent.objects.latest("pk").pk))
    achieved = total / (time.time() - begun)
    deadline = time.time() + 60
    while passed_at(read_passes(passes_path)[0], committed[-1][1]) == float("inf") and time.time() < deadline:
        time.sleep(0.05)
    loop.terminate()
    loop.wait()
    passes, errors = read_passes(passes_path)
    lags = [passed_at(passes, event_id) - at for at, event_id in committed]
    return {
        "completions": total,
        "completions_per_s": round(achieved, 1),
        "mirror_lag_p50_ms": round(statistics.median(lags) * 1000, 1),
        "mirror_lag_p95_ms": round(percentile(lags, 0.95) * 1000, 1),
        "mirror_lag_max_ms": round(max(lags) * 1000, 1),
        "mirror_runs_failed": errors,
        "reconcile_differences_after": reconcile(store, repair=False).differences,
    }


def main() -> None:
    if not settings.NEO4J_URI:
        sys.exit("set NEO4J_URI (see the docstring: scripts/falkordb.sh start)")
    if settings.NEO4J_USER == "falkordb":
        settings.NEO4J_BATCH_BYTES = int(os.environ.get("NEO4J_BATCH_BYTES", "2500"))
    if sys.argv[1:2] == ["--mirror-loop"]:
        return mirror_loop(sys.argv[2])
    call_command("migrate", verbosity=0)
    from processes.graph import get_store

    store = get_store()
    result = {"benchmark": "graph", "graph_server": store.driver.get_server_info().agent,
              "database": connection.vendor}
    result.update(measure_import(store))
    result.update(measure_mirror_lag(store))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
