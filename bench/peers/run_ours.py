"""Our engine on the peer workload, through the services, one instance at a time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_peer_ours \
        .venv/bin/python bench/peers/run_ours.py --instances 200

Publishes bench/peers/loan12.yaml, gives each of its four roles one member, then for each
instance: `start_process`, and `complete_task` on every open task (by its routed assignee)
until the process is completed. System steps run as Celery tasks in eager mode, so each
is its own transaction right after the commit that activated it, as a worker would run it.
Timed: the start and complete calls (system steps included). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("DEBUG", "0")
_modules = [m for m in os.environ.get("GNDP_HANDLER_MODULES", "").split(",") if m.strip()]
os.environ["GNDP_HANDLER_MODULES"] = ",".join([*_modules, "bench.peers.handlers"])

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from workload import TASKS_PER_INSTANCE, expected_arm, result_for, summary  # noqa: E402

ROLES = {"officer": "role-loan-officer", "underwriter": "role-underwriter",
         "processor": "role-processor", "closer": "role-closer"}


def step_of(atom_id: str) -> str:
    return atom_id.removeprefix("atom-").replace("-", "_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=int(os.environ.get("PEER_INSTANCES", "200")))
    parser.add_argument("--profile", metavar="FILE", help="write a pyinstrument profile of the timed loop (.html or .txt)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    from notifications import relay
    from notifications.kinds import NOTIFYING_EVENTS
    from notifications.models import DeliveredEvent
    from processes.journey import parse_text
    from processes.models import ProcessEvent, ProcessInstance
    from processes.services import start_process
    from processes.versions import publish_journey
    from tasks.models import OPEN_TASK_STATUSES, TaskInstance
    from tasks.people import save_workflow_user
    from tasks.services import complete_task

    publish_journey(parse_text((HERE / "loan12.yaml").read_text(encoding="utf-8"), filename="loan12.yaml"))
    users = {who: save_workflow_user(f"peer-{who}", roles=[role]).user for who, role in ROLES.items()}
    by_id = {user.pk: user for user in users.values()}

    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()

    latencies: list[float] = []
    process_ids: list[int] = []
    reading = reading_cpu = 0.0
    began, cpu_began = time.perf_counter(), time.thread_time()
    for n in range(args.instances):
        t0 = time.perf_counter()
        process = start_process(workflow_id="journey-loan12", user=users["officer"])
        latencies.append((time.perf_counter() - t0) * 1000)
        process_ids.append(process.pk)
        while True:
            # The inbox read: not timed, like a page load before the person acts.
            pause, pause_cpu = time.perf_counter(), time.thread_time()
            open_tasks = list(
                TaskInstance.objects.filter(process_id=process.pk, kind="human", status__in=OPEN_TASK_STATUSES)
                .order_by("pk").values_list("pk", "atom_id", "assigned_to_id")
            )
            reading += time.perf_counter() - pause
            reading_cpu += time.thread_time() - pause_cpu
            if not open_tasks:
                break
            for task_id, atom_id, assignee_id in open_tasks:
                t0 = time.perf_counter()
                complete_task(task_id, user=by_id[assignee_id], result=result_for(step_of(atom_id), n))
                latencies.append((time.perf_counter() - t0) * 1000)
    # The notifications this process delivers (the in-memory layer's setting) go out on a
    # background thread, batched: what is left of them when the last call returns is part
    # of the work, so it is timed too.
    if not relay.flush(timeout=120):
        raise SystemExit("ours: the notification deliveries did not finish")
    wall = time.perf_counter() - began
    seconds = wall - reading
    cpu = time.thread_time() - cpu_began - reading_cpu

    if profiler is not None:
        profiler.stop()
        text = profiler.output_html() if args.profile.endswith(".html") else profiler.output_text(unicode=True)
        Path(args.profile).write_text(text, encoding="utf-8")

    # Every instance ran to completion, through the arm its score picks, with 11 tasks.
    unfinished = ProcessInstance.objects.filter(pk__in=process_ids).exclude(status="completed").count()
    done = TaskInstance.objects.filter(process_id__in=process_ids, status="completed")
    arms = {arm: done.filter(atom_id=f"atom-{arm.replace('_', '-')}").count() for arm in ("auto_clear", "manual_review")}
    expected = {arm: sum(1 for n in range(args.instances) if expected_arm(n) == arm) for arm in arms}
    if unfinished or done.count() != args.instances * TASKS_PER_INSTANCE or arms != expected:
        raise SystemExit(f"ours: wrong outcome: {unfinished} unfinished, {done.count()} tasks done, arms {arms}")
    # And every event that notifies someone was delivered, in the timed window.
    notifying = ProcessEvent.objects.filter(process_id__in=process_ids, type__in=NOTIFYING_EVENTS)
    undelivered = notifying.exclude(pk__in=DeliveredEvent.objects.values("event_id")).count()
    if undelivered:
        raise SystemExit(f"ours: {undelivered} of {notifying.count()} notifying events were not delivered")

    print(json.dumps(summary(
        engine="ours", instances=args.instances, seconds=seconds, wall_seconds=wall, cpu_seconds=cpu,
        latencies_ms=latencies,
        arms=arms, database=connection.vendor,
    )))


if __name__ == "__main__":
    main()
