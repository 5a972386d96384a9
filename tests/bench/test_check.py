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
    bench, figures = next((bench, figures) for bench, figures in baseline.items() if bench != "machine")
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


SCALED = {"machine": {"python_loop_ms": 40.0}, **BASELINE}


def test_on_a_slower_machine_the_records_are_scaled_to_it():
    # This machine runs the yardstick 1.5 times as long: 300/s is expected as 200/s, 10 ms as 15 ms.
    results = {"machine": {"python_loop_ms": 60.0}, "engine": {"completions_per_s": 190.0, "complete_p99_ms": 14.0}}
    lines, regressions = compare(results, SCALED)
    assert regressions == []
    assert lines[0].startswith("machine.python_loop_ms: 60.0 (recorded 40.0)") and "1.50 times as slow" in lines[0]
    assert "engine.completions_per_s: 190.0 (recorded 300.0, 200 on this machine, -5%) ok" in lines


def test_on_a_faster_machine_an_unchanged_figure_is_a_regression_of_the_code():
    # Twice as fast: 300/s should have become 600/s; 300 again means the code lost half.
    results = {"machine": {"python_loop_ms": 20.0}, "engine": {"completions_per_s": 300.0, "complete_p99_ms": 10.0}}
    _, regressions = compare(results, SCALED)
    assert [line.split(":")[0] for line in regressions] == ["engine.completions_per_s", "engine.complete_p99_ms"]


def test_a_count_of_instructions_is_never_scaled_and_regresses_when_it_grows_by_a_quarter():
    baseline = {"machine": {"python_loop_ms": 40.0}, "instructions": {"completion_instructions": 4_000_000}}
    slower = {"machine": {"python_loop_ms": 80.0}}
    lines, regressions = compare({**slower, "instructions": {"completion_instructions": 4_400_000}}, baseline)
    assert regressions == []
    assert "instructions.completion_instructions: 4400000 (recorded 4000000, +10%) ok" in lines
    _, regressions = compare({**slower, "instructions": {"completion_instructions": 5_100_000}}, baseline)
    assert [line.split(":")[0] for line in regressions] == ["instructions.completion_instructions"]


def test_without_the_yardstick_on_either_side_the_figures_are_compared_as_recorded():
    results = {"engine": {"completions_per_s": 240.0, "complete_p99_ms": 12.4}}
    lines, regressions = compare(results, SCALED)
    assert regressions == [] and "engine.completions_per_s: 240.0 (recorded 300.0, -20%) ok" in lines


def test_the_yardstick_is_averaged_over_its_runs(tmp_path):
    from bench.check import read_results

    results = tmp_path / "latest.jsonl"
    results.write_text("\n".join(json.dumps(line) for line in [
        {"benchmark": "machine", "python_loop_ms": 50.0},
        {"benchmark": "engine", "completions_per_s": 250.0},
        {"benchmark": "machine", "python_loop_ms": 70.0},
    ]) + "\n")
    assert read_results(results)["machine"]["python_loop_ms"] == 60.0


def test_recording_takes_the_named_figures_and_the_machine_or_nothing():
    from bench.check import record

    results = {"machine": {"python_loop_ms": 55.5},
               "engine": {"completions_per_s": 280.0, "complete_p99_ms": 7.1, "other_ms": 3.0}}
    new, missing = record(results, BASELINE)
    assert missing == [] and new == {"machine": {"python_loop_ms": 55.5},
                                     "engine": {"completions_per_s": 280.0, "complete_p99_ms": 7.1}}
    _, missing = record({"engine": {"completions_per_s": 280.0}}, BASELINE)
    assert missing == ["machine.python_loop_ms", "engine.complete_p99_ms"]


def test_the_yardstick_prints_its_figure():
    run = subprocess.run([sys.executable, "bench/machine.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    line = json.loads(run.stdout)
    assert line["benchmark"] == "machine" and line["python_loop_ms"] > 0


def test_each_benchmark_is_scaled_to_the_machines_speed_around_it(tmp_path):
    from bench.check import read_results

    results = tmp_path / "latest.jsonl"
    results.write_text("\n".join(json.dumps(line) for line in [
        {"benchmark": "machine", "python_loop_ms": 80.0},  # slow while the engine ran
        {"benchmark": "engine", "completions_per_s": 160.0, "complete_p99_ms": 19.0},
        {"benchmark": "machine", "python_loop_ms": 80.0},
        {"benchmark": "api", "completions_per_s": 290.0},
        {"benchmark": "machine", "python_loop_ms": 40.0},
    ]) + "\n")
    read = read_results(results)
    assert read["machine"]["by_benchmark"] == {"engine": 80.0, "api": 60.0}
    baseline = {"machine": {"python_loop_ms": 40.0}, **BASELINE, "api": {"completions_per_s": 300.0}}
    lines, regressions = compare(read, baseline)
    # The engine ran on a machine twice as slow: 150/s expected. The api at 1.5: 200/s expected.
    assert regressions == []
    assert "engine.completions_per_s: 160.0 (recorded 300.0, 150 on this machine, +7%) ok" in lines
    assert "api.completions_per_s: 290.0 (recorded 300.0, 200 on this machine, +45%) ok" in lines


def test_a_unit_followed_by_what_it_was_measured_under_is_judged():
    from bench.check import direction

    assert direction("inbox_p95_ms_100k_open") == -1
    assert direction("completions_per_s_min_5s") == 1
    assert direction("bulk_start_s") == -1
    assert direction("requests_per_completion") == 0


def test_the_record_keeps_the_machines_speed_by_benchmark():
    from bench.check import record

    results = {"machine": {"python_loop_ms": 50.0, "by_benchmark": {"engine": 45.0, "other": 70.0}},
               "engine": {"completions_per_s": 280.0, "complete_p99_ms": 7.1}}
    new, missing = record(results, {"machine": {"python_loop_ms": 40.0, "by_benchmark": {"engine": 41.0}}, **BASELINE})
    assert missing == []
    assert new["machine"] == {"python_loop_ms": 50.0, "by_benchmark": {"engine": 45.0}}
