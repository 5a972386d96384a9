"""bench/check.py: the regression guard of `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.check import compare

ROOT = Path(__file__).resolve().parents[2]
BASELINE = {"engine": {"completions_per_s": 300.0, "complete_p99_ms": 10.0}}


def test_a_figure_within_a_quarter_of_its_record_passes():
    lines, regressions = compare({"engine": {"completions_per_s": 240.0, "complete_p99_ms": 12.4}}, BASELINE)
    assert regressions == []
    assert "engine.completions_per_s: 240.0 (recorded 300.0, -20%) ok" in lines


def test_throughput_falling_or_latency_rising_by_more_than_a_quarter_regresses():
    _, regressions = compare({"engine": {"completions_per_s": 200.0, "complete_p99_ms": 13.0}}, BASELINE)
    assert [line.split(":")[0] for line in regressions] == ["engine.completions_per_s", "engine.complete_p99_ms"]


def test_a_benchmark_that_did_not_run_is_reported_not_failed():
    lines, regressions = compare({}, BASELINE)
    assert lines == ["engine: not run"] and regressions == []


def test_the_command_exits_non_zero_and_names_the_regression(tmp_path):
    results = tmp_path / "latest.jsonl"
    baseline = json.loads((ROOT / "bench" / "baseline.json").read_text())
    bench, figures = next(iter(baseline.items()))
    name, recorded = next((n, v) for n, v in figures.items() if n.endswith("_per_s"))
    results.write_text(json.dumps({"benchmark": bench, name: recorded / 2}) + "\n")
    run = subprocess.run([sys.executable, "bench/check.py", str(results)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1
    assert f"{bench}.{name}" in run.stderr and "REGRESSION" in run.stderr


def test_a_benchmark_that_ran_but_measured_nothing_regresses():
    # The live benchmark once received no events at all and printed null latencies.
    lines, regressions = compare({"engine": {"completions_per_s": 310.0, "complete_p99_ms": None}}, BASELINE)
    assert regressions == ["engine.complete_p99_ms: not measured REGRESSED"]
    assert "engine.completions_per_s: 310.0 (recorded 300.0, +3%) ok" in lines
