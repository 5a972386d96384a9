"""Viewflow 2 on the peer workload, one instance at a time, in its own virtualenv.

    PEER_DB_NAME=gndp_peer_viewflow var/peers/viewflow/bin/python bench/peers/run_viewflow.py --instances 200

The Django project is bench/peers/vf_project (flow in loans/flows.py). Each step is driven
the way Viewflow's own task views drive it on a POST, without the HTTP layer: the flow lock
(`select_for_update` on the process row) and a transaction around reading the task,
checking that the user may execute it, `activation.start()`, saving the process fields the
form would save, and `activation.execute()`; the start is the Start view's
`create`/`start`/save/`execute`. Timed: those calls. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vf_project"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vf_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.exceptions import PermissionDenied  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.http import Http404  # noqa: E402
from viewflow.workflow import PROCESS, STATUS  # noqa: E402
from viewflow.workflow.models import Task  # noqa: E402

from loans.flows import LoanFlow  # noqa: E402
from loans.models import LoanProcess  # noqa: E402
from workload import STEPS, TASKS_PER_INSTANCE, USERS, expected_arm, result_for, summary  # noqa: E402

OPEN = [STATUS.NEW, STATUS.ASSIGNED]


def start(applicant_no: int, user) -> int:
    """The Start view's POST: create the activation, check, start, save the form, execute."""
    flow_task = LoanFlow.submit
    activation = flow_task.activation_class.create(flow_task, None, None)
    if not flow_task.can_execute(user, activation.task):
        raise PermissionDenied
    with transaction.atomic():
        activation.start(SimpleNamespace(user=user))
        process = activation.process
        for field, value in result_for("submit", applicant_no).items():
            setattr(process, field, value)
        process.save()
        activation.execute()
    return process.pk


def complete(task_pk: int, process_pk: int, user, result: dict) -> None:
    """A task view's POST: under the flow lock, read the task, check, start, save, execute."""
    with LoanFlow.lock(process_pk), transaction.atomic():
        task = Task.objects.get(pk=task_pk)
        if task.process.flow_class != LoanFlow:
            raise Http404
        flow_task = task.flow_task
        activation = flow_task.activation_class(task)
        if not flow_task.can_execute(user, task):
            raise PermissionDenied
        activation.start(SimpleNamespace(user=user))
        process = activation.process
        for field, value in result.items():
            setattr(process, field, value)
        process.save()
        activation.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=int(os.environ.get("PEER_INSTANCES", "200")))
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    users = {who: User.objects.get_or_create(username=f"peer-{who}")[0] for who in USERS}
    users["officer"].user_permissions.add(Permission.objects.get(codename="can_submit_loanprocess"))
    users = {who: User.objects.get(pk=user.pk) for who, user in users.items()}  # fresh permission cache
    by_id = {user.pk: user for user in users.values()}
    step_of = {getattr(LoanFlow, step): step for step, _, _, _ in STEPS}

    latencies: list[float] = []
    process_ids: list[int] = []
    reading = reading_cpu = 0.0
    began, cpu_began = time.perf_counter(), time.thread_time()
    for n in range(args.instances):
        t0 = time.perf_counter()
        process_pk = start(n, users["officer"])
        latencies.append((time.perf_counter() - t0) * 1000)
        process_ids.append(process_pk)
        while True:
            pause, pause_cpu = time.perf_counter(), time.thread_time()
            open_tasks = list(
                Task.objects.filter(process_id=process_pk, status__in=OPEN, flow_task_type="HUMAN").order_by("pk")
            )
            reading += time.perf_counter() - pause
            reading_cpu += time.thread_time() - pause_cpu
            if not open_tasks:
                break
            for task in open_tasks:
                t0 = time.perf_counter()
                complete(task.pk, process_pk, by_id[task.owner_id], result_for(step_of[task.flow_task], n))
                latencies.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - began
    seconds = wall - reading
    cpu = time.thread_time() - cpu_began - reading_cpu

    unfinished = LoanProcess.objects.filter(pk__in=process_ids).exclude(status=PROCESS.DONE).count()
    done = Task.objects.filter(process_id__in=process_ids, status=STATUS.DONE)
    steps_done = sum(done.filter(flow_task=node).count() for node in step_of)
    arms = {arm: done.filter(flow_task=getattr(LoanFlow, arm)).count() for arm in ("auto_clear", "manual_review")}
    expected = {arm: sum(1 for n in range(args.instances) if expected_arm(n) == arm) for arm in arms}
    if unfinished or steps_done != args.instances * TASKS_PER_INSTANCE or arms != expected:
        raise SystemExit(f"viewflow: wrong outcome: {unfinished} unfinished, {steps_done} steps done, arms {arms}")

    import viewflow

    print(json.dumps(summary(
        engine="viewflow", instances=args.instances, seconds=seconds, wall_seconds=wall, cpu_seconds=cpu,
        latencies_ms=latencies,
        arms=arms, version=getattr(viewflow, "__version__", None) or _version("django-viewflow"),
        rows_per_instance=round(Task.objects.filter(process_id__in=process_ids).count() / args.instances, 1),
    )))


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
