from __future__ import annotations

from dataclasses import dataclass

import pytest

from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory


@dataclass
class People:
    sam: object  # starts processes; in no role
    clara: object  # role-clerk, reports to mona
    clive: object  # role-clerk, joins after clara (routing picks clara first)
    chet: object  # role-checker (a queue)
    mona: object  # clara's and clive's manager
    stranger: object


@pytest.fixture
def people(small_version) -> People:
    sam = UserFactory(username="sam", email="sam@example.com")
    mona = UserFactory(username="mona", email="mona@example.com")
    clara = UserFactory(username="clara", roles=["role-clerk"], email="clara@example.com")
    clive = UserFactory(username="clive", roles=["role-clerk"], email="clive@example.com")
    chet = UserFactory(username="chet", roles=["role-checker"], email="chet@example.com")
    stranger = UserFactory(username="stranger", email="stranger@example.com")
    Profile.objects.filter(user__in=[clara, clive]).update(manager=mona)
    return People(sam=sam, clara=clara, clive=clive, chet=chet, mona=mona, stranger=stranger)


def open_task(process, atom_id: str) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def run_to_end(process, people: People, *, score: int = 700):
    """Work every open human task the way its people would, until the process is final."""
    from tasks import services as task_services
    from tests.driver import drive

    def act(task, result):
        if task.assigned_to is None:
            task_services.start_task(task.pk, user=people.chet if task.role == "role-checker" else people.clara)
            task.refresh_from_db()
        task_services.complete_task(task.pk, user=task.assigned_to, result=result)

    return drive(process, act, overrides={"score": score})
