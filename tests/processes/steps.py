"""Helpers of the Part 2 tests (choices, loops): one desk role whose member works each step."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tasks import services as task_services
from tasks.models import TaskInstance
from tests.factories import UserFactory

ROLE = "role-desk"


@pytest.fixture
def desk(db):
    return UserFactory(username="dana", roles=[ROLE])


def open_task(process, atom_id) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def work(process, atom_id, user, result=None) -> TaskInstance:
    """Claim the step from the desk's queue (unless claimed) and complete it."""
    task = open_task(process, atom_id)
    if task.assigned_to_id is None:
        task_services.start_task(task.pk, user=user)
    return task_services.complete_task(task.pk, user=user, result=result or {})


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client
