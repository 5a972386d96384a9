"""Read replicas: monitoring reads go to the replica connection, writes and everything else
to the primary, and a read after a write of the same request stays on the primary.

The replica here is a second connection to the same server and database, opened read-only
(`default_transaction_read_only`, as a hot standby is): routing is what is under test, and
a write sent to it by mistake would fail.
"""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.http import JsonResponse

from gndp.db_router import REPLICA, ReplicaRoutingMiddleware, replica_reads
from processes.models import ProcessInstance
from processes.services import start_process
from tasks.models import Profile
from tests.factories import START_ANY_JOURNEY, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def replica(transactional_db):
    config = dict(connections["default"].settings_dict)
    options = {key: value for key, value in config.get("OPTIONS", {}).items() if key != "pool"}
    options["options"] = "-c default_transaction_read_only=on"
    config["OPTIONS"] = options
    connections.settings[REPLICA] = config
    connections[REPLICA].connect()  # the test case only lets its declared aliases connect lazily
    yield connections[REPLICA]
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


def _tables(queries) -> str:
    return " ".join(query["sql"] for query in queries.captured_queries)


def test_monitoring_reads_go_to_the_replica_and_other_requests_to_the_primary(replica, small_version):
    # given: a process, and a manager who may see everything
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    process = start_process(workflow_id="journey-small", user=boss)
    client = Client()
    client.force_login(boss)

    # when: the monitoring API is read
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as standby:
        response = client.get("/api/monitoring/active-processes")
    # then: its reads ran on the replica; the primary only found the session and its user (a
    # sign-in just written must be found, however far the replica lags)
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()] == [process.pk]
    assert "processes_processinstance" in _tables(standby)
    assert {q["sql"].split('FROM "')[1].split('"')[0] for q in primary.captured_queries} == {"django_session", "auth_user"}

    # when: the inbox (not a reporting path) and a write are requested
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as standby:
        assert client.get("/api/tasks/inbox").status_code == 200
        assert client.post("/api/monitoring/active-processes").status_code in (403, 405)
    # then: all of it ran on the primary
    assert "tasks_taskinstance" in _tables(primary)
    assert standby.captured_queries == []


def test_a_read_after_a_write_in_one_request_stays_on_the_primary(replica, small_version):
    user = UserFactory(username="rita", permissions=[START_ANY_JOURNEY])
    start_process(workflow_id="journey-small", user=user)

    def report(request):
        before = ProcessInstance.objects.count()  # a reporting read: the replica
        Profile.objects.filter(user=user).update(capacity=7)  # a write: the primary
        after = Profile.objects.get(user=user).capacity  # must see that write: the primary
        return JsonResponse({"before": before, "after": after})

    request = RequestFactory().get("/api/monitoring/report")
    request.user = user
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as standby:
        body = ReplicaRoutingMiddleware(report)(request)

    assert body.status_code == 200 and b'"after": 7' in body.content
    assert [q["sql"].split()[0] for q in standby.captured_queries] == ["SELECT"]
    assert "processes_processinstance" in standby.captured_queries[0]["sql"]
    assert [q["sql"].split()[0] for q in primary.captured_queries] == ["UPDATE", "SELECT"]
    assert "tasks_profile" in primary.captured_queries[1]["sql"]


def test_reads_in_transactions_and_outside_reporting_stay_on_the_primary(replica, small_version):
    start_process(workflow_id="journey-small", user=UserFactory(username="tom", permissions=[START_ANY_JOURNEY]))
    with CaptureQueriesContext(connections["default"]) as primary, CaptureQueriesContext(replica) as standby:
        assert ProcessInstance.objects.count() == 1  # the engine, a job: no reporting unit
        with replica_reads():
            assert ProcessInstance.objects.count() == 1  # the replica
            with transaction.atomic():
                assert ProcessInstance.objects.select_for_update().count() == 1  # a transaction: the primary
                assert ProcessInstance.objects.count() == 1
    assert len(standby.captured_queries) == 1
    assert len([q for q in primary.captured_queries if "processes_processinstance" in q["sql"]]) == 3
