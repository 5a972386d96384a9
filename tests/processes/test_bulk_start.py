"""The bulk start path: many processes started as the single start would start each one,
routed evenly across the batch, audited, and all or nothing on bad input."""

from __future__ import annotations

from collections import Counter

import pytest

from processes import audit
from processes.errors import Conflict, InvalidInput
from processes.models import ProcessEvent, ProcessInstance
from processes.services import BULK_BATCH, start_process, start_processes
from tasks.models import TaskInstance, TaskUserObjectPermission
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clerks(small_version):
    return [UserFactory(username=f"clerk{i}", roles=["role-clerk"]) for i in range(3)]


def shape(process: ProcessInstance) -> tuple:
    """What a start decides, without ids and times."""
    tasks = sorted(process.tasks.values_list("atom_id", "kind", "role", "status", "priority"))
    events = list(process.events.order_by("id").values_list("type", "seq"))
    return process.status, process.atom_states, process.fired_edges, process.context, tasks, events


def test_bulk_started_processes_are_what_single_starts_make(clerks, clerk):
    single = start_process(workflow_id="journey-small", context={"ref": "one"}, user=clerk)
    bulk = start_processes(workflow_id="journey-small", contexts=[{"ref": "one"}] * 3, user=clerk)

    assert len(bulk) == 3 and all(p.pk for p in bulk)
    for process in bulk:
        stored = ProcessInstance.objects.get(pk=process.pk)
        assert shape(stored) == shape(ProcessInstance.objects.get(pk=single.pk))
        assert stored.started_by == clerk and stored.version_id == single.version_id
        assert (stored.event_seq, stored.event_head) == (process.event_seq, process.event_head)
    assert audit.verify().broken == ""


def test_a_bulk_start_spreads_its_tasks_evenly_over_the_role(clerks):
    count = 2 * BULK_BATCH + 7  # three batches, the last one short
    started = start_processes(workflow_id="journey-small", contexts=[{}] * count)

    assignees = Counter(TaskInstance.objects.filter(process__in=started).values_list("assigned_to__username", flat=True))
    assert sum(assignees.values()) == count
    assert set(assignees) == {c.username for c in clerks}
    assert max(assignees.values()) - min(assignees.values()) <= 1
    # Each task's assignee holds its object permissions; every event is chained.
    granted = set(TaskUserObjectPermission.objects.values_list("content_object_id", "user_id"))
    assert all((t.pk, t.assigned_to_id) in granted for t in TaskInstance.objects.filter(process__in=started))
    assert ProcessEvent.objects.filter(process__in=started, seq__isnull=True).count() == 0
    assert audit.verify().broken == ""


def test_single_routing_after_a_bulk_start_sees_its_tasks(clerks):
    start_processes(workflow_id="journey-small", contexts=[{}] * 5)
    start_process(workflow_id="journey-small")

    loads = Counter(TaskInstance.objects.values_list("assigned_to__username", flat=True))
    assert sorted(loads.values()) == [2, 2, 2]


def test_bad_input_starts_nothing(clerks):
    with pytest.raises(InvalidInput) as not_objects:
        start_processes(workflow_id="journey-small", contexts=[{}, [1, 2], "x"])
    with pytest.raises(InvalidInput) as repeated:
        start_processes(workflow_id="journey-small", contexts=[{}, {}], business_keys=["K-1", "K-1"])
    with pytest.raises(InvalidInput):
        start_processes(workflow_id="journey-small", contexts=[{}, {}], business_keys=["K-1"])
    start_process(workflow_id="journey-small", business_key="K-9")
    with pytest.raises(Conflict) as taken:
        start_processes(workflow_id="journey-small", contexts=[{}, {}], business_keys=["K-8", "K-9"])

    assert set(not_objects.value.details) == {"contexts[1]", "contexts[2]"}
    assert "business_keys" in repeated.value.details
    assert taken.value.details == {"business_keys": ["K-9"]}
    assert ProcessInstance.objects.count() == 1


def test_the_api_starts_many_at_once_and_refuses_bad_input(clerks, clerk):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clerk).key}")
    body = {"journey_id": "journey-small", "contexts": [{"ref": i} for i in range(30)]}

    started = api.post("/api/processes/start-bulk", body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    replayed = api.post("/api/processes/start-bulk", body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    not_objects = api.post("/api/processes/start-bulk", {"journey_id": "journey-small", "contexts": [1]}, format="json")
    too_many = api.post("/api/processes/start-bulk", {"journey_id": "journey-small", "contexts": [{}] * 1001},
                        format="json")
    unknown = api.post("/api/processes/start-bulk", {"journey_id": "journey-nope", "contexts": [{}]}, format="json")

    assert started.status_code == 201 and started.json()["started"] == 30
    assert replayed.status_code == 201 and replayed.json() == started.json()
    assert sorted(started.json()["ids"]) == sorted(ProcessInstance.objects.filter(started_by=clerk)
                                                   .values_list("pk", flat=True))
    assert not_objects.status_code == 400 and "contexts" in not_objects.json()["error"]["details"]
    assert too_many.status_code == 400 and unknown.status_code == 404
    assert ProcessInstance.objects.count() == 30


def test_the_command_starts_them_and_says_how_fast(clerks, tmp_path, capsys):
    from django.core.management import call_command

    contexts = tmp_path / "contexts.json"
    contexts.write_text('[{"ref": 1}, {"ref": 2}]')
    call_command("start_processes", "journey-small", "--count", "4", "--context", '{"ref": 0}', "--user", "clerk0")
    call_command("start_processes", "journey-small", "--contexts", str(contexts), "--operator")
    out = capsys.readouterr().out

    assert "started 4 processes of journey-small as clerk0" in out and "started 2 processes" in out
    assert "as the operator" in out
    assert sorted(ProcessInstance.objects.values_list("context__ref", flat=True)) == [0, 0, 0, 0, 1, 2]
    for bad in (["--count", "0", "--operator"], ["--contexts", str(tmp_path / "missing.json"), "--operator"],
                ["--count", "2", "--context", "{", "--operator"], ["--operator"], ["--count", "1", "--user", "nobody"]):
        with pytest.raises(SystemExit) as failed:
            call_command("start_processes", "journey-small", *bad)
        assert failed.value.code == 1
    assert ProcessInstance.objects.count() == 6
