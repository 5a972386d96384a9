"""R1 api_crash_after_commit: the server dies after the completion committed and before it
answered; the client's retry with the same Idempotency-Key gets the original answer.

The moment is made from outside the app: the completed step is followed by a system step
that the server (eager Celery, as `make run` without a worker) runs right after the commit,
still inside the request. Its handler (`rel_slow`) sleeps on its first call, so the test
sees the completion in the database, sees the handler started, and SIGKILLs the server
while the response is still unsent.
"""

from __future__ import annotations

import threading

import pytest
import requests

from processes.models import IdempotencyRecord, ProcessEvent, ProcessInstance
from tasks.models import TaskInstance
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_r1_retry_after_a_crash_between_commit_and_response_returns_the_original_result(
        cluster, crash_journey, rel_clerk):
    first = cluster.server("r1-a", redis=False, eager=True).wait_ready()
    started = rel_clerk.post(first.url, "/api/processes/start", {"journey_id": "rel-crash"})
    assert started.status_code == 201, started.text
    process_id = started.json()["id"]
    fill = TaskInstance.objects.get(process_id=process_id, atom_id="rel-fill")
    body = {"result": {"amount": 1234}}
    outcome: dict = {}

    def complete() -> None:
        try:
            outcome["response"] = rel_clerk.post(first.url, f"/api/tasks/{fill.pk}/complete", body, key="r1-key")
        except requests.RequestException as exc:
            outcome["error"] = exc

    client = threading.Thread(target=complete)
    client.start()
    # The commit is visible, and the post-commit work (the slow system step) has begun:
    # the response has not been written yet.
    wait_for(lambda: TaskInstance.objects.filter(pk=fill.pk, status="completed").exists(), 20,
             what="the completion to commit")
    slow = wait_for(lambda: TaskInstance.objects.filter(process_id=process_id, atom_id="rel-slow").first(), 5,
                    what="the system step")
    wait_for(lambda: cluster.attempts(slow.pk) == 1, 20, what="the post-commit handler to start")
    first.kill()
    client.join(10)

    assert "response" not in outcome, "the server answered before it was killed"
    assert isinstance(outcome["error"], requests.ConnectionError)
    process = ProcessInstance.objects.get(pk=process_id)
    events_after_crash = ProcessEvent.objects.filter(process_id=process_id).count()
    record = IdempotencyRecord.objects.filter(user=rel_clerk.user, key="r1-key").first()

    second = cluster.server("r1-b", redis=False, eager=True).wait_ready()
    retry = rel_clerk.post(second.url, f"/api/tasks/{fill.pk}/complete", body, key="r1-key")
    retry_again = rel_clerk.post(second.url, f"/api/tasks/{fill.pk}/complete", body, key="r1-key")
    without_key = rel_clerk.post(second.url, f"/api/tasks/{fill.pk}/complete", body)
    other_body = rel_clerk.post(second.url, f"/api/tasks/{fill.pk}/complete", {"result": {"amount": 1}},
                                key="r1-key")

    # The original result: the response recorded in the completion's own transaction.
    assert retry.status_code == 200, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert record is not None and retry.json() == record.response  # committed with the completion
    assert retry.json()["id"] == fill.pk and retry.json()["status"] == "completed"
    assert retry.json()["result"] == body["result"]
    assert retry_again.json() == retry.json()
    assert without_key.status_code == 409
    assert other_body.status_code == 422
    # The process advanced once, and the retries changed nothing.
    process.refresh_from_db()
    assert ProcessEvent.objects.filter(process_id=process_id).count() == events_after_crash
    assert ProcessEvent.objects.filter(task_id=fill.pk, type="task.completed").count() == 1
    assert TaskInstance.objects.filter(process_id=process_id, atom_id="rel-slow").count() == 1
    assert TaskInstance.objects.filter(process_id=process_id).count() == 2
    assert process.context == {"amount": 1234}
    assert process.atom_states == {"rel-fill": "completed", "rel-slow": "active", "rel-check": "waiting"}
