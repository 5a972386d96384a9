"""What each trick of `steps.tricks` saves, in instructions: the count with every trick on,
and with each set aside in turn (`GNDP_PLAIN=name`), by `bench/instructions.py`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench .venv/bin/python bench/tricks.py [NAME ...]

The tricks of the services are counted on a completion, those of the API on a client's round
(the inbox read and a completion through DRF, `--api`). Each count takes a few minutes under
valgrind, one after the other. Prints one JSON line: the two counts with everything on, and
for each trick the count without it and its gain in percent of the count with it. These are
the figures of the decision records in docs/performance.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steps.tricks import TRICKS  # noqa: E402

# The tricks whose work is the API's; the others are the services'.
API = {"token_auth", "representation", "throttling", "own_inbox"}


def count(api: bool, plain: str = "") -> int:
    env = dict(os.environ, GNDP_PLAIN=plain)
    argv = [sys.executable, str(ROOT / "bench" / "instructions.py"), *(["--api"] if api else [])]
    run = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0 or not run.stdout.strip():
        raise SystemExit(f"tricks: the count with GNDP_PLAIN={plain!r} failed: {run.stderr.strip()[-2000:]}")
    line = json.loads(run.stdout.strip().splitlines()[-1])
    return line["api_round_instructions" if api else "completion_instructions"]


def main() -> None:
    names = sys.argv[1:] or list(TRICKS)
    unknown = set(names) - set(TRICKS)
    if unknown:
        raise SystemExit(f"tricks: unknown: {', '.join(sorted(unknown))}")
    base = {}
    if any(name not in API for name in names):
        base["completion_instructions"] = count(api=False)
    if any(name in API for name in names):
        base["api_round_instructions"] = count(api=True)
    gains = {}
    for name in names:
        api = name in API
        with_it = base["api_round_instructions" if api else "completion_instructions"]
        without = count(api, plain=name)
        gains[name] = {"counted_on": "api round" if api else "completion", "instructions_without": without,
                       "gain_percent": round(100 * (without - with_it) / with_it, 1)}
    print(json.dumps({"benchmark": "tricks", **base, "gains": gains}))


if __name__ == "__main__":
    main()
