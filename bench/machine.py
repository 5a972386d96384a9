"""How fast this machine is right now: the yardstick `bench/check.py` scales the records by.

    .venv/bin/python bench/machine.py

Prints one JSON line: `python_loop_ms`, the best of seven runs of a fixed pure-Python
workload (arithmetic, a dict and a list, as an interpreter spends its time). The
benchmarks run on machines of one size whose speed differs by more than the regression
check's tolerance (the same loop took 0.68 to 1.6 s on three of them, and drifted by the
hour on one), so a record compared unscaled fails on a slower machine with no change of
code, and passes a real regression on a faster one. `scripts/bench.sh` runs this before
and after the benchmarks.
"""

from __future__ import annotations

import json
import time

RUNS = 7


def workload() -> int:
    total, seen, items = 0, {}, []
    for i in range(300_000):
        total += i * 7 % 13
        seen[i & 1023] = total
        items.append(total)
        if len(items) > 512:
            items.clear()
    return total + len(seen)


def python_loop_ms() -> float:
    best = float("inf")
    for _ in range(RUNS):
        begun = time.perf_counter()
        workload()
        best = min(best, time.perf_counter() - begun)
    return round(best * 1000, 1)


def main() -> None:
    print(json.dumps({"benchmark": "machine", "python_loop_ms": python_loop_ms()}))


if __name__ == "__main__":
    main()
