from __future__ import annotations

from datetime import timedelta

import pytest

from processes.services import start_process
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

HOUR = timedelta(hours=1)


@pytest.fixture
def manager(db):
    return UserFactory(username="mona")


@pytest.fixture
def managed_clerk(clerk, manager):
    """The clerk (role-clerk), reporting to mona."""
    Profile.objects.filter(user=clerk).update(manager=manager)
    return clerk


def start_small(user) -> tuple:
    """A process of the small journey and its first task (atom-apply: target 4 h, escalation 8 h)."""
    process = start_process(workflow_id="journey-small", user=user)
    return process, TaskInstance.objects.get(process=process, atom_id="atom-apply")
