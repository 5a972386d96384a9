from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from processes.services import start_process
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory


@dataclass
class World:
    """sam started the process; clara holds its first task (atom-apply) and reports to
    mona; chet and cheryl are checkers (a queue); the stranger has nothing to do with it."""

    process: object
    task: object
    sam: object
    clara: object
    mona: object
    chet: object
    cheryl: object
    stranger: object


@pytest.fixture
def world(small_version) -> World:
    sam = UserFactory(username="sam", permissions=[START_ANY_JOURNEY])  # starts processes; in no role
    mona = UserFactory(username="mona")
    clara = UserFactory(username="clara", roles=["role-clerk"])
    chet = UserFactory(username="chet", roles=["role-checker"])
    cheryl = UserFactory(username="cheryl", roles=["role-checker"])
    stranger = UserFactory(username="stranger")
    Profile.objects.filter(user=clara).update(manager=mona)
    process = start_process(workflow_id="journey-small", user=sam)
    task = TaskInstance.objects.get(process=process, atom_id="atom-apply")
    assert task.assigned_to == clara
    return World(process, task, sam, clara, mona, chet, cheryl, stranger)


def queued_checker_task(world: World) -> TaskInstance:
    """Complete atom-apply: the split puts atom-b in the checker queue (seen by chet and
    cheryl, whose processes list does not hold this one)."""
    task_services.complete_task(world.task.pk, user=world.clara, result={"amount": 1000, "score": 700})
    return TaskInstance.objects.get(process=world.process, atom_id="atom-b")


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
