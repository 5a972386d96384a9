"""`selectors.OwnInbox`, the API's hand-written read of the caller's inbox, against the
queryset that defines the inbox (`selectors.inbox`): the same tasks, in the same order, the
same count and the same representation, over every mix of assignment, queue, role, kind,
status, priority and due date."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from processes.services import start_process
from tasks import selectors
from steps.changes import change_tasks
from tasks.models import PRIORITY_RANK, TaskInstance
from tasks.serializers import TaskSerializer
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STATUSES = ["pending", "in_progress", "completed", "failed", "cancelled"]


@pytest.fixture
def mixed_tasks(small_version, clerk):
    rng = random.Random(11)
    colleague = UserFactory(username="cleo", roles=["role-clerk", "role-checker"])
    stranger = UserFactory(username="stan", roles=["role-other"])
    process = start_process(workflow_id="journey-small", user=clerk)
    now = timezone.now()
    rows = []
    for i in range(160):
        priority = rng.choice(list(PRIORITY_RANK))
        rows.append(TaskInstance(
            process=process, atom_id="atom-apply", name=f"Task {i}", kind=rng.choice(["human", "human", "system"]),
            role=rng.choice(["role-clerk", "role-checker", "role-other", ""]),
            assigned_to=rng.choice([clerk, colleague, stranger, None, None]), status=rng.choice(STATUSES),
            priority=priority, priority_rank=PRIORITY_RANK[priority],
            # Ties on purpose: due dates from a few values (and none), creation times too.
            due_date=rng.choice([None, now - timedelta(hours=1), now + timedelta(hours=2), now + timedelta(days=1)]),
        ))
    TaskInstance.objects.bulk_create(rows)
    for minutes in (1, 5, 30):  # creation times from a few values (auto_now_add set them all to now)
        change_tasks(TaskInstance.objects.filter(pk__in=[t.pk for t in rows if rng.random() < 0.4]), 
            created_at=now - timedelta(minutes=minutes))
    return [clerk, colleague, stranger]


@pytest.mark.parametrize("status", [None, "pending", "in_progress", "completed"])
def test_own_inbox_lists_what_the_inbox_queryset_lists(mixed_tasks, status):
    for user in mixed_tasks:
        user._workflow_roles = None  # as a request finds it
        expected = selectors.inbox(user, status=status).select_related("process")
        own = selectors.OwnInbox(user, status=status)

        assert own.count() == expected.count()
        for start, stop in [(0, 50), (0, 500), (7, 19), (40, 90), (500, 550)]:
            page, reference = own[start:stop], list(expected[start:stop])
            assert [t.pk for t in page] == [t.pk for t in reference], (user.username, status, start)
            assert TaskSerializer(page, many=True).data == TaskSerializer(reference, many=True).data


def test_the_api_inbox_of_someone_else_still_goes_through_the_queryset(mixed_tasks, db):
    from rest_framework.authtoken.models import Token

    admin = UserFactory(username="boss", is_superuser=True, is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    clerk = mixed_tasks[0]

    theirs = client.get("/api/tasks/inbox", {"user_id": clerk.username, "limit": 500})
    own_client = APIClient()
    own_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clerk).key}")
    own = own_client.get("/api/tasks/inbox", {"limit": 500})
    by_name = own_client.get("/api/tasks/inbox", {"limit": 500, "user_id": clerk.username})

    assert theirs.status_code == own.status_code == by_name.status_code == 200
    assert theirs.json() == own.json() == by_name.json()
    assert theirs["X-Total-Count"] == own["X-Total-Count"] == str(selectors.inbox(clerk).count())
