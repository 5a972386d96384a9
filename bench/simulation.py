"""Simulation, validation and prediction speed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench .venv/bin/python bench/simulation.py

Prints one JSON line (milliseconds, median of several repetitions after a warm-up):
- simulate_500_atoms_ms: a dry run of a 500-atom journey as POST /api/simulation/test-journey
  does it (processes.simulation.dry_run: the version lookup, the history query, handlers,
  every decision explained); target < 50;
- validate_500_atoms_ms: GET /api/simulation/validate-workflow on it
  (processes.validation.validate_workflow: re-normalizing the stored definition, the rule
  reasoning, the roles query); target < 200;
- monte_carlo_10000_runs_ms: 10,000 Monte Carlo runs of the demo journey
  (journeys/fha-purchase.yaml) with a history for every atom; target < 2000.
"""

from __future__ import annotations

import json
import os
import random
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

import yaml  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

BLOCKS = 100  # of 5 atoms each: 500 atoms
REPEAT = int(os.environ.get("BENCH_REPEAT", "15"))


def large_journey(blocks: int = BLOCKS) -> dict:
    """A chain of blocks: a decision (rule edge and default), two branches that merge, a
    system step. Every construct the simulator and the analysis work through."""
    atoms, edges, previous = [], [], None
    for b in range(blocks):
        decide, fast, slow, merge, step = (f"atom-{b}-{name}" for name in ("decide", "fast", "slow", "merge", "step"))
        atoms += [
            {"id": decide, "name": decide, "performed_by": "role-bench", "sla": {"target": "PT4H"},
             "form": [{"name": "score", "type": "integer", "required": True}]},
            {"id": fast, "name": fast, "performed_by": "role-bench", "sla": {"target": "PT2H"}},
            {"id": slow, "name": slow, "performed_by": "role-bench", "sla": {"target": "PT8H"}},
            {"id": merge, "name": merge, "performed_by": "role-bench", "sla": {"target": "PT1H"}},
            {"id": step, "name": step, "kind": "system", "handler": "set_context", "params": {f"done_{b}": True}},
        ]
        if previous:
            edges.append({"type": "ENABLES", "from": previous, "to": decide})
        edges += [
            {"type": "ENABLES", "from": decide, "to": fast, "rule": "rule-good-score"},
            {"type": "ENABLES", "from": decide, "to": slow, "default": True},
            {"type": "ENABLES", "from": fast, "to": merge},
            {"type": "ENABLES", "from": slow, "to": merge},
            {"type": "ENABLES", "from": merge, "to": step},
        ]
        previous = step
    return {"format": "gndp-journey/1", "journey": {"id": "journey-bench-500", "name": "Bench 500"},
            "roles": [{"id": "role-bench", "name": "Bench"}], "atoms": atoms, "edges": edges,
            "rules": [{"rule_id": "rule-good-score",
                       "conditions": [{"field": "score", "operator": "gte", "value": 620}]}]}


def median_ms(action, repeat: int = REPEAT) -> float:
    action()  # warm-up: caches filled, code paths imported
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def demo_history(blueprint, rng: random.Random):
    """Lognormal durations around each atom's SLA target, and a 70/30 split at each branch."""
    from processes.engine.prediction import History

    durations = {
        atom_id: [rng.lognormvariate(0, 0.5) * (atom.sla_target.total_seconds() if atom.sla_target else 60.0)
                  for _ in range(200)]
        for atom_id, atom in blueprint.atoms.items()
    }
    branches = {}
    for atom_id, edges in blueprint.outgoing.items():
        conditional = [edge.target for edge in edges if edge.conditional]
        default = [edge.target for edge in edges if edge.default]
        if conditional and default:
            branches[atom_id] = {frozenset(conditional[:1]): 70, frozenset(default): 30}
    return History(durations=durations, branches=branches)


def main() -> None:
    call_command("migrate", verbosity=0)
    from processes import simulation, validation, versions
    from processes.engine.prediction import build_model, monte_carlo
    from processes.versions import publish_journey

    publish_journey(large_journey())
    demo = publish_journey(yaml.safe_load((ROOT / "journeys" / "fha-purchase.yaml").read_text())).version
    results = {f"atom-{b}-decide": {"score": 700 if b % 2 else 500} for b in range(BLOCKS)}

    simulate_ms = median_ms(lambda: simulation.dry_run("journey-bench-500", {}, results))
    validate_ms = median_ms(lambda: validation.validate_workflow("journey-bench-500"))
    blueprint = versions.get_blueprint(demo.pk, demo.journey_id)
    model = build_model(blueprint, demo_history(blueprint, random.Random(1)))
    monte_carlo_ms = median_ms(lambda: monte_carlo(model, 10_000), repeat=3)

    print(json.dumps({
        "benchmark": "simulation",
        "database": connection.vendor,
        "simulate_500_atoms_ms": simulate_ms,
        "validate_500_atoms_ms": validate_ms,
        "monte_carlo_10000_runs_ms": monte_carlo_ms,
        "demo_atoms": len(blueprint.atoms),
    }))


if __name__ == "__main__":
    main()
