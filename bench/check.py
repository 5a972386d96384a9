"""Compare benchmark results with the recorded figures; fail on a regression over 25%.

    scripts/bench.sh          # runs the benchmarks, then this on what they printed
    .venv/bin/python bench/check.py var/bench/latest.jsonl

Reads the JSON lines the benchmarks print and `bench/baseline.json` (the figures recorded
in docs/performance.md). A figure named `*_per_s` regresses when it falls more than 25%
below its baseline; one named `*_ms` or `*_s` when it rises more than 25% above. Prints one
line per compared figure and exits 1 if any regressed. A benchmark that did not run is not
compared (and says so); one that ran without measuring a recorded figure has regressed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = 0.25
BASELINE = Path(__file__).with_name("baseline.json")


def direction(name: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when not a figure we judge."""
    if name.endswith("_per_s"):
        return 1
    if name.endswith("_ms") or name.endswith("_s"):
        return -1
    return 0


def compare(results: dict[str, dict], baseline: dict[str, dict]) -> tuple[list[str], list[str]]:
    lines, regressions = [], []
    for bench, figures in baseline.items():
        measured = results.get(bench)
        if measured is None:
            lines.append(f"{bench}: not run")
            continue
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
            change = (value - recorded) / recorded if recorded else 0.0
            worse = -change * sense
            verdict = "REGRESSED" if worse > TOLERANCE else "ok"
            line = f"{bench}.{name}: {value} (recorded {recorded}, {change:+.0%}) {verdict}"
            lines.append(line)
            if verdict != "ok":
                regressions.append(line)
    return lines, regressions


def read_results(path: Path) -> dict[str, dict]:
    results = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            results[record.get("benchmark", "?")] = record
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: bench/check.py RESULTS.jsonl", file=sys.stderr)
        return 2
    lines, regressions = compare(read_results(Path(argv[1])), json.loads(BASELINE.read_text()))
    print("\n".join(lines))
    if regressions:
        print(f"\nBENCHMARK REGRESSION: {len(regressions)} figure(s) more than {TOLERANCE:.0%} worse than recorded:",
              *regressions, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
