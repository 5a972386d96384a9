"""Our engine side by side with Viewflow and SpiffWorkflow on the same 12-step loan journey.

    .venv/bin/python bench/peers/run.py                      # 200 instances, one round
    .venv/bin/python bench/peers/run.py --instances 1000 --rounds 3
    .venv/bin/python bench/peers/run.py --only ours --profile var/peers/ours.html

Creates the peers' virtualenvs under var/peers/ from requirements-viewflow.txt and
requirements-spiff.txt when missing (PyPI is needed only then; a peer that cannot be
installed is reported as skipped, and the run still succeeds). Then, in each round, each
engine gets a fresh database on the same PostgreSQL (gndp_peer_ours, gndp_peer_viewflow,
gndp_peer_spiff) and runs the same number of instances, one at a time in one OS process;
the engines run one after another, in a rotated order from round to round. Prints one JSON
line: each engine's tasks per second (the median over the rounds), how much of a task's
time its calling thread spent on the CPU and how much it waited, the ratios of ours to each
peer, the ratios ours would reach with no CPU at all (`ceiling_ratio_vs_*`: its waits on the
database as they are), and the parameters. bench/peers/workload.py defines the workload and
what a task is.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENVS = ROOT / "var" / "peers"
ENGINES = ("ours", "viewflow", "spiff")
PEERS = {"viewflow": "requirements-viewflow.txt", "spiff": "requirements-spiff.txt"}
SCRIPTS = {"ours": "run_ours.py", "viewflow": "run_viewflow.py", "spiff": "run_spiff.py"}

sys.path.insert(0, str(HERE))
from workload import TASKS_PER_INSTANCE  # noqa: E402


def log(message: str) -> None:
    print(f"peers: {message}", file=sys.stderr, flush=True)


def ensure_venv(peer: str) -> tuple[Path | None, str]:
    """The peer's interpreter, installing its virtualenv if missing or out of date.

    Returns (None, reason) when it cannot be installed (PyPI unreachable, most likely)."""
    requirements = HERE / PEERS[peer]
    venv = VENVS / peer
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return python, ""
    log(f"installing {peer} into {venv.relative_to(ROOT)} from {requirements.name}")
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--timeout", "20",
         "--retries", "2", "-r", str(requirements)],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])[:300]
            shutil.rmtree(venv, ignore_errors=True)
            return None, f"could not install {requirements.name} (is PyPI reachable?): {tail}"
    marker.write_text(digest + "\n")
    return python, ""


def recreate_database(name: str, args: argparse.Namespace) -> None:
    for statement in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(
            ["psql", "-q", "-h", args.host, "-p", str(args.port), "-U", args.user, "-d", "postgres", "-c", statement],
            check=True, capture_output=True, text=True,
        )


def run_engine(engine: str, python: Path, args: argparse.Namespace) -> dict:
    database = f"gndp_peer_{engine}"
    recreate_database(database, args)
    env = dict(os.environ, PEER_DB_NAME=database, PEER_DB_HOST=args.host, PEER_DB_PORT=str(args.port),
               PEER_DB_USER=args.user, PYTHONDONTWRITEBYTECODE="1")
    command = [str(python), str(HERE / SCRIPTS[engine]), "--instances", str(args.instances)]
    if engine == "ours":
        env["DATABASE_URL"] = f"postgres://{args.user}@{args.host}:{args.port}/{database}"
        env.pop("NEO4J_URI", None)  # the embedded graph store, like the peers' plain tables
        env.pop("REDIS_URL", None)
        if args.profile:
            command += ["--profile", str(Path(args.profile).resolve())]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"peers: {engine} failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"{engine}: {result['tasks_per_s']} tasks/s ({time.perf_counter() - started:.0f} s with setup)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200, help="loan instances per engine and round (200)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; each engine's figure is the median (1)")
    parser.add_argument("--only", choices=ENGINES, action="append", help="run only this engine (repeatable)")
    parser.add_argument("--profile", metavar="FILE", help="profile our engine's timed loop with pyinstrument")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to one engine's run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()

    engines = [engine for engine in ENGINES if not args.only or engine in args.only]
    pythons: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for engine in engines:
        if engine == "ours":
            pythons[engine] = ROOT / ".venv" / "bin" / "python"
            continue
        python, reason = ensure_venv(engine)
        if python is None:
            log(f"{engine} skipped: {reason}")
            skipped[engine] = reason
        else:
            pythons[engine] = python

    runs: dict[str, list[dict]] = {engine: [] for engine in pythons}
    order = list(pythons)
    for round_no in range(args.rounds):
        rotated = order[round_no % len(order):] + order[:round_no % len(order)]
        for engine in rotated:
            runs[engine].append(run_engine(engine, pythons[engine], args))

    figures: dict[str, dict] = {}
    for engine, results in runs.items():
        best = sorted(results, key=lambda r: r["tasks_per_s"])[len(results) // 2]  # the median round
        figures[engine] = {
            "tasks_per_s": best["tasks_per_s"],
            "cpu_ms_per_task": best["cpu_ms_per_task"],
            "wait_ms_per_task": best["wait_ms_per_task"],
            "call_p50_ms": best["call_p50_ms"],
            "call_p99_ms": best["call_p99_ms"],
            "seconds": best["seconds"],
            **({"version": best["version"]} if "version" in best else {}),
            **({"rounds_tasks_per_s": [r["tasks_per_s"] for r in results]} if len(results) > 1 else {}),
        }
    for engine, reason in skipped.items():
        figures[engine] = {"skipped": reason}

    def ratio(peer: str, *, without_our_cpu: bool = False) -> float | None:
        if "tasks_per_s" not in figures.get("ours", {}) or "tasks_per_s" not in figures.get(peer, {}):
            return None
        if without_our_cpu:
            # Ours with no CPU at all, its waits (the database's round trips, its work, the
            # commits) as they are: the most that making its Python faster could give.
            return round(1000 / figures[peer]["tasks_per_s"] / figures["ours"]["wait_ms_per_task"], 2)
        return round(figures["ours"]["tasks_per_s"] / figures[peer]["tasks_per_s"], 2)

    per_round = {}
    if args.rounds > 1 and "ours" in runs:
        for peer in ("viewflow", "spiff"):
            if peer in runs:
                per_round[f"rounds_ratio_vs_{peer}"] = [
                    round(ours["tasks_per_s"] / theirs["tasks_per_s"], 2) for ours, theirs in zip(runs["ours"], runs[peer])
                ]

    print(json.dumps({
        "benchmark": "peers",
        "date": datetime.date.today().isoformat(),
        "instances": args.instances,
        "tasks_per_instance": TASKS_PER_INSTANCE,
        "rounds": args.rounds,
        **figures,
        "ratio_vs_viewflow": ratio("viewflow"),
        "ratio_vs_spiff": ratio("spiff"),
        "ceiling_ratio_vs_viewflow": ratio("viewflow", without_our_cpu=True),
        "ceiling_ratio_vs_spiff": ratio("spiff", without_our_cpu=True),
        **per_round,
        "targets": {"ratio_vs_viewflow": 9, "ratio_vs_spiff": 2},
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
