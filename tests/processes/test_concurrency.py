"""Races on PostgreSQL: separate connections, released together by a barrier."""

from __future__ import annotations

import pytest

from processes.errors import Conflict
from processes.models import ProcessEvent
from processes.services import start_process
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.mark.parametrize("clients", [2, 10])
def test_concurrent_completion_of_one_task_has_exactly_one_winner(small_version, clerk, clients):
    for _ in range(10 if clients == 2 else 3):
        process = start_process(workflow_id="journey-small", user=clerk)
        task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
        version_before = process.lock_version

        outcomes = race(clients, lambda i: task_services.complete_task(
            task.pk, user=clerk, result={"amount": i, "score": 700}))

        winners = [o for o in outcomes if isinstance(o, TaskInstance)]
        losers = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(winners) == 1 and len(losers) == clients - 1, outcomes
        process.refresh_from_db()
        completed = ProcessEvent.objects.filter(process=process, type="task.completed", task_id=task.pk)
        assert completed.count() == 1
        # The system step after atom-apply ran once; the split created each branch once.
        assert TaskInstance.objects.filter(process=process, atom_id="atom-score").count() == 1
        assert TaskInstance.objects.filter(process=process, atom_id="atom-a").count() == 1
        assert process.lock_version > version_before


def test_competing_join_fires_once(small_version, clerk, checker):
    for _ in range(10):
        process = start_process(workflow_id="journey-small", user=clerk)
        task_services.complete_task(
            TaskInstance.objects.get(process=process, atom_id="atom-apply").pk, user=clerk,
            result={"amount": 1, "score": 700})
        branch_a = TaskInstance.objects.get(process=process, atom_id="atom-a")
        branch_b = TaskInstance.objects.get(process=process, atom_id="atom-b")
        task_services.start_task(branch_b.pk, user=checker)

        outcomes = race(2, lambda i: task_services.complete_task(
            (branch_a, branch_b)[i].pk, user=(clerk, checker)[i], result={}))

        assert all(isinstance(o, TaskInstance) for o in outcomes), outcomes
        assert TaskInstance.objects.filter(process=process, atom_id="atom-join").count() == 1
