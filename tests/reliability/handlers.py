"""System handlers only the reliability tests register (servers and workers import this
module through GNDP_HANDLER_MODULES=tests.reliability.handlers).

Each keeps a side-effect ledger in the folder named by GNDP_REL_LEDGER: one line per call
in `attempts-<task id>`, and the effect itself as `effect-<task id>`, created with
O_CREAT|O_EXCL so that it exists at most once however often the handler runs. That is the
idempotency key the engine asks handlers to use (`ctx["_task_id"]`), made visible to the test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from processes import handlers


def _ledger() -> Path:
    return Path(os.environ["GNDP_REL_LEDGER"])


def record_attempt(task_id: int) -> int:
    """Append a line for this call; returns how many calls the task has seen."""
    path = _ledger() / f"attempts-{task_id}"
    with open(path, "a") as handle:
        handle.write(f"{os.getpid()} {time.time():.3f}\n")
    return len(path.read_text().splitlines())


def apply_effect(task_id: int) -> bool:
    """The outside effect, keyed by task id: True the first time, False ever after."""
    try:
        fd = os.open(_ledger() / f"effect-{task_id}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    return True


@handlers.register("rel_slow")
def rel_slow(context, params):
    """Slow on its first call (long enough to be killed in the middle), quick after."""
    task_id = context["_task_id"]
    attempt = record_attempt(task_id)
    if attempt == 1:
        time.sleep(float(params.get("first_sleep", 30)))
    apply_effect(task_id)
    return {"slow_done": True}


@handlers.register("rel_effect")
def rel_effect(context, params):
    """A short step with an idempotent outside effect (Jepsen-lite's system work)."""
    task_id = context["_task_id"]
    record_attempt(task_id)
    time.sleep(float(params.get("sleep", 0.02)))
    apply_effect(task_id)
    return {}
