"""What a WebSocket's access check costs a delivery that needs no check (the common case).

    .venv/bin/python bench/live_check.py

Every delivery of a process socket first asks whether a check is due (`EventConsumer.clear`:
a comparison; `processes.live_access`). Here one socket's handler delivers 200,000 events
to a sink, against the same handler forwarding without asking; the CPU time of this thread,
best of seven rounds each. Prints one JSON line: nanoseconds per delivery, both, and the
difference. No database or channel layer is touched: the check that reads them runs only
when one is due, and costs its queries (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")

import django  # noqa: E402

django.setup()

from processes.consumers import ProcessConsumer  # noqa: E402

EVENT = {"id": 1, "type": "task.completed", "timestamp": "2026-01-01T00:00:00+00:00", "process_id": 1,
         "user_id": "someone", "task_id": 1, "atom_id": "atom-a", "payload": {"result_keys": [], "assigned_to_id": 1}}
MESSAGE = {"type": "event.message", "event": EVENT}
DELIVERIES, ROUNDS = 200_000, 7


async def sink(content, close=False) -> None:
    return None


class Unchecked(ProcessConsumer):
    """The handler as it was before sockets checked: forward."""

    async def event_message(self, message) -> None:
        await self.send_json(message["event"])


def listening(cls):
    consumer = cls.__new__(cls)  # no connection: only the handler runs
    consumer.send_json = sink
    consumer.refused = False
    consumer.check_due = time.monotonic() + 3600
    return consumer


async def per_delivery(consumer) -> float:
    handler = consumer.event_message
    began = time.thread_time_ns()
    for _ in range(DELIVERIES):
        await handler(MESSAGE)
    return (time.thread_time_ns() - began) / DELIVERIES


async def main() -> None:
    best = {"unchecked": float("inf"), "checked": float("inf")}
    for _ in range(ROUNDS):
        best["unchecked"] = min(best["unchecked"], await per_delivery(listening(Unchecked)))
        best["checked"] = min(best["checked"], await per_delivery(listening(ProcessConsumer)))
    print(json.dumps({"benchmark": "live_check", "deliveries": DELIVERIES, "rounds": ROUNDS,
                      "unchecked_ns": round(best["unchecked"], 1), "checked_ns": round(best["checked"], 1),
                      "check_ns": round(best["checked"] - best["unchecked"], 1)}))


if __name__ == "__main__":
    asyncio.run(main())
