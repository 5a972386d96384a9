"""Notification delivery: how many committed events a notification worker turns into
notifications a second, in the batches the after-commit hand-off sends it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench .venv/bin/python bench/notifications.py

Starts processes of a chain of human steps (every start assigns a task: a `task.assigned`
event that notifies its assignee), forgets that they were delivered, then delivers every
such event again through `notifications.delivery.deliver`, `--batch` events a call, as the
worker's `deliver_events` job does. Prints one JSON line: events_per_s, the p50/p95 of one
batch, and the notifications made (one per event: the assignee is never the starter).
"""

from __future__ import annotations

import argparse
import json
import os
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

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="task.assigned events to deliver (2,000)")
    parser.add_argument("--batch", type=int, default=50, help="events a delivery call (50)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from bench.engine import chain_journey, percentile
    from notifications import relay
    from notifications.delivery import deliver
    from notifications.models import DeliveredEvent, Notification
    from processes.models import EventType, ProcessEvent
    from processes.services import start_processes
    from processes.versions import publish_journey
    from tasks.people import save_workflow_user

    publish_journey(chain_journey(2))
    from django.contrib.auth.models import Permission

    # The starter is in no role (its processes' tasks go to the members only), so it starts
    # them with the permission to start any journey.
    starter = save_workflow_user("bench-starter", roles=[]).user
    starter.user_permissions.add(Permission.objects.get(codename="start_any_journey"))
    for n in range(4):
        save_workflow_user(f"bench-member-{n}", roles=["role-bench"])
    first_event = ProcessEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    start_processes(workflow_id="journey-bench", contexts=[{}] * args.events, user=starter)
    # Without Redis this process delivers the starts' notifications itself, in the
    # background: done before they are forgotten, or some would be delivered again meanwhile.
    if not relay.flush(timeout=60):
        raise SystemExit("notifications: the starts' own deliveries did not finish")
    ids = list(ProcessEvent.objects.filter(pk__gt=first_event, type=EventType.TASK_ASSIGNED)
               .order_by("pk").values_list("pk", flat=True))
    Notification.objects.filter(event_id__in=ids).delete()
    DeliveredEvent.objects.filter(event_id__in=ids).delete()

    batches = []
    began = time.perf_counter()
    made = 0
    for start in range(0, len(ids), args.batch):
        t0 = time.perf_counter()
        made += len(deliver(ids[start:start + args.batch]))
        batches.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - began
    if made != len(ids):
        raise SystemExit(f"notifications: {made} notifications for {len(ids)} assignments")
    print(json.dumps({
        "benchmark": "notifications",
        "database": connection.vendor,
        "events": len(ids),
        "batch": args.batch,
        "events_per_s": round(len(ids) / seconds, 1),
        "batch_p50_ms": round(statistics.median(batches), 2),
        "batch_p95_ms": round(percentile(batches, 0.95), 2),
        "notifications": made,
    }))


if __name__ == "__main__":
    main()
