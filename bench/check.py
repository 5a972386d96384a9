"""Compare benchmark results with the recorded figures; fail on a regression over 25%.

    scripts/bench.sh          # runs the benchmarks, then this on what they printed
    .venv/bin/python bench/check.py var/bench/latest.jsonl
    .venv/bin/python bench/check.py --record var/bench/latest.jsonl   # make them the record

Reads the JSON lines the benchmarks print and `bench/baseline.json` (the figures recorded
in docs/performance.md). A figure named `*_per_s` regresses when it falls more than 25%
below its baseline; one named `*_ms`, `*_s` or `*_instructions` when it rises more than 25%
above. Prints one
line per compared figure and exits 1 if any regressed. A benchmark that did not run is not
compared (and says so); one that ran without measuring a recorded figure has regressed.

The record holds the speed of the machine it was made on (`bench/machine.py`, a pure-Python
loop, measured between the benchmarks), and where the results hold it too, each recorded
figure but a count of instructions (which the machine's speed does not move) is first scaled
to the machine's speed when its benchmark ran: on one that runs the loop 1.5 times as
long, a throughput is expected 1.5 times lower and a latency 1.5 times higher. Machines of
one size here differ by more than the tolerance, so unscaled, the check failed a slower one
with no change of code, and would pass a real regression on a faster one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = 0.25
BASELINE = Path(__file__).with_name("baseline.json")
MACHINE = "machine"  # the yardstick's lines, not a benchmark of ours
YARDSTICK = "python_loop_ms"
BY_BENCHMARK = "by_benchmark"


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when not a figure we judge. The
    unit may be followed by what the figure was measured under (`inbox_p95_ms_100k_open`)."""
    words = name.split("_")
    if "per" in words and words[words.index("per") + 1:words.index("per") + 2] == ["s"]:
        return 1
    if "ms" in words or words[-1] in ("s", "instructions"):
        return -1
    return 0


def timed(name: str) -> bool:
    """Whether a figure moves with the machine's speed: all but counts of instructions."""
    return name.split("_")[-1] != "instructions"


def yardstick(records: dict[str, dict], bench: str | None = None) -> float | None:
    """The machine's speed when `bench` ran (the yardsticks around it), else over the run."""
    machine = records.get(MACHINE, {})
    value = machine.get(BY_BENCHMARK, {}).get(bench, machine.get(YARDSTICK))
    return value if isinstance(value, (int, float)) and value > 0 else None


def slowdown(results: dict[str, dict], baseline: dict[str, dict], bench: str | None = None) -> float | None:
    """How many times slower this machine was than the record's (None: not both measured)."""
    now, then = yardstick(results, bench), yardstick(baseline, bench)
    return None if now is None or then is None else now / then


def compare(results: dict[str, dict], baseline: dict[str, dict]) -> tuple[list[str], list[str]]:
    lines, regressions = [], []
    overall = slowdown(results, baseline)
    if overall is not None:
        lines.append(f"{MACHINE}.{YARDSTICK}: {yardstick(results)} (recorded {yardstick(baseline)}): "
                     f"the records are scaled to the machine's speed when each benchmark ran "
                     f"({overall:.2f} times as slow over the run)")
    for bench, figures in baseline.items():
        if bench == MACHINE:
            continue
        measured = results.get(bench)
        if measured is None:
            lines.append(f"{bench}: not run")
            continue
        factor = slowdown(results, baseline, bench)
        for name, recorded in figures.items():
            value, sense = measured.get(name), direction(name)
            if not sense:
                lines.append(f"{bench}.{name}: not a figure to judge")
                continue
            if not isinstance(value, (int, float)):
                # The benchmark ran and could not measure it (nothing arrived, nothing was
                # completed): that is a failure, not a figure to skip.
                line = f"{bench}.{name}: not measured REGRESSED"
                lines.append(line)
                regressions.append(line)
                continue
            scaling = factor if timed(name) else None
            expected = recorded if scaling is None else (recorded / scaling if sense > 0 else recorded * scaling)
            change = (value - expected) / expected if expected else 0.0
            worse = -change * sense
            verdict = "REGRESSED" if worse > TOLERANCE else "ok"
            scaled = "" if scaling is None else f", {expected:.4g} on this machine"
            line = f"{bench}.{name}: {value} (recorded {recorded}{scaled}, {change:+.0%}) {verdict}"
            lines.append(line)
            if verdict != "ok":
                regressions.append(line)
    return lines, regressions


def read_results(path: Path) -> dict[str, dict]:
    """The last line of each benchmark, and the machine's yardstick: over the run (the mean
    of its lines) and by benchmark (the mean of the lines just before and after it: the
    yardstick runs between the benchmarks, and a machine's speed may drift by the minute)."""
    results, order = {}, []  # order: ("yardstick", value) or ("benchmark", name), as printed
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            name = record.get("benchmark", "?")
            if name == MACHINE:
                if isinstance(record.get(YARDSTICK), (int, float)):
                    order.append((MACHINE, record[YARDSTICK]))
                continue
            results[name] = record
            order.append(("benchmark", name))
    yardsticks = [value for kind, value in order if kind == MACHINE]
    if yardsticks:
        by_benchmark = {}
        for i, (kind, name) in enumerate(order):
            if kind == "benchmark":
                before = next((v for k, v in reversed(order[:i]) if k == MACHINE), None)
                after = next((v for k, v in order[i + 1:] if k == MACHINE), None)
                around = [v for v in (before, after) if v is not None]
                by_benchmark[name] = round(sum(around) / len(around), 1)
        results[MACHINE] = {YARDSTICK: round(sum(yardsticks) / len(yardsticks), 1), BY_BENCHMARK: by_benchmark}
    return results


def record(results: dict[str, dict], baseline: dict[str, dict]) -> tuple[dict[str, dict], list[str]]:
    """A new record: the recorded figures' names (and the machine's speed) with the values
    of `results`, and what `results` lacks of them (then nothing is recorded)."""
    new, missing = {}, []
    for bench, figures in {MACHINE: {YARDSTICK: None}, **baseline}.items():
        for name in figures:
            value = results.get(bench, {}).get(name)
            if isinstance(value, (int, float)):
                new.setdefault(bench, {})[name] = value
            elif name != BY_BENCHMARK:
                missing.append(f"{bench}.{name}")
    by_benchmark = results.get(MACHINE, {}).get(BY_BENCHMARK, {})
    if MACHINE in new and by_benchmark:
        new[MACHINE][BY_BENCHMARK] = {bench: by_benchmark[bench] for bench in baseline if bench in by_benchmark}
    return new, missing


def main(argv: list[str]) -> int:
    args = argv[1:]
    recording = args[:1] == ["--record"]
    if recording:
        args = args[1:]
    if len(args) != 1:
        print("usage: bench/check.py [--record] RESULTS.jsonl", file=sys.stderr)
        return 2
    results, baseline = read_results(Path(args[0])), json.loads(BASELINE.read_text())
    if recording:
        new, missing = record(results, baseline)
        if missing:
            print(f"not in the results, so not recorded: {', '.join(missing)}", file=sys.stderr)
            return 1
        BASELINE.write_text("{\n" + ",\n".join(f"  {json.dumps(bench)}: {json.dumps(figures)}"
                                                 for bench, figures in new.items()) + "\n}\n")
        print(f"recorded {sum(len(figures) for figures in new.values())} figures in {BASELINE}")
        return 0
    lines, regressions = compare(results, baseline)
    print("\n".join(lines))
    if regressions:
        print(f"\nBENCHMARK REGRESSION: {len(regressions)} figure(s) more than {TOLERANCE:.0%} worse than recorded:",
              *regressions, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
