"""Two sweeps at once (two beats by mistake) on PostgreSQL: every timer still fires once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from monitoring import sla
from processes.models import ProcessEvent
from tasks.models import TaskInstance

from .conftest import HOUR, start_small

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def run_together(n: int, action) -> list[object]:
    """Run `action(i)` in n threads released by one barrier; each on its own connection."""
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = action(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_concurrent_sweeps_escalate_each_task_once(small_version, managed_clerk, manager):
    started = [start_small(managed_clerk) for _ in range(30)]
    when = max(task.created_at for _, task in started) + 9 * HOUR

    for _ in range(3):  # the second and third rounds find nothing left to fire
        outcomes = run_together(2, lambda i: sla.sweep(now=when, batch_size=4))
        assert all(isinstance(o, sla.SweepResult) for o in outcomes), outcomes
        when += HOUR

    per_task = Counter(ProcessEvent.objects.filter(type__in=["sla.warning", "sla.breached", "task.escalated"])
                       .values_list("task_id", "type"))
    for _, task in started:
        assert (per_task[(task.pk, "sla.warning")], per_task[(task.pk, "sla.breached")],
                per_task[(task.pk, "task.escalated")]) == (1, 1, 1)
    assert TaskInstance.objects.filter(atom_id="atom-apply", assigned_to=manager, escalated=True).count() == 30


def test_sweeps_racing_each_other_split_the_work(small_version, managed_clerk, manager):
    started = [start_small(managed_clerk) for _ in range(20)]
    when = max(task.created_at for _, task in started) + 9 * HOUR

    outcomes = run_together(4, lambda i: sla.sweep(now=when, batch_size=3))

    assert sum(o.warned for o in outcomes) == 20
    assert sum(o.breached for o in outcomes) == 20 and sum(o.escalated for o in outcomes) == 20
    assert sla.sweep(now=when).as_dict() | {"seconds": 0} == {"retimed": 0, "warned": 0, "breached": 0,
                                                               "escalated": 0, "seconds": 0}
