"""The API as integrations use it: over HTTP, with tokens, against PostgreSQL for the races."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from django.test import Client
from rest_framework.test import APIClient

from processes.models import ProcessEvent
from tasks.models import TaskInstance
from tests.driver import fill_form
from tests.factories import UserFactory
from tests.races import race


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_start_inbox_complete_and_history(small_version, clerk):
    api = client_for(clerk)

    started = api.post("/api/processes/start", {"journey_id": "journey-small", "context": {"ref": "A-1"}}, format="json")
    inbox = api.get("/api/tasks/inbox").json()
    done = api.post(f"/api/tasks/{inbox[0]['id']}/complete", {"result": {"amount": 5, "score": 700}}, format="json")
    history = api.get(f"/api/processes/{started.json()['id']}/history").json()

    assert started.status_code == 201
    body = started.json()
    assert {"id", "journey_id", "version", "status", "started_at", "completed_at", "context", "current_steps",
            "completed_steps"} <= set(body)
    assert body["current_steps"] == ["atom-apply"] and body["context"] == {"ref": "A-1"}
    assert inbox[0]["atom_id"] == "atom-apply" and inbox[0]["assigned_to"] == "clara"
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert [e["type"] for e in history][:5] == [
        "process.started", "task.created", "task.assigned", "task.started", "task.completed"]


def test_errors_use_the_documented_body(small_version, clerk):
    api = client_for(clerk)

    bad_start = api.post("/api/processes/start", {"journey_id": "Not An Id"}, format="json")
    unknown = api.post("/api/processes/start", {"journey_id": "journey-nope"}, format="json")
    task = api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]
    bad_result = api.post(f"/api/tasks/{task_id}/complete", {"result": {"amount": "x"}}, format="json")
    not_json = api.post(f"/api/tasks/{task_id}/complete", "{", content_type="application/json")
    anonymous = APIClient().get("/api/tasks/inbox")

    assert task.status_code == 201
    assert bad_start.status_code == 400 and "journey_id" in bad_start.json()["error"]["details"]
    assert unknown.status_code == 404
    assert bad_result.status_code == 400
    assert bad_result.json()["error"]["details"] == {"amount": "must be a number", "score": "is required"}
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "parse_error"
    assert anonymous.status_code == 401


def test_replayed_complete_with_the_same_key_returns_the_first_response(small_version, clerk):
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]
    body = {"result": {"amount": 5, "score": 700}}

    first = api.post(f"/api/tasks/{task_id}/complete", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    events = ProcessEvent.objects.count()
    again = api.post(f"/api/tasks/{task_id}/complete", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other_body = api.post(f"/api/tasks/{task_id}/complete", {"result": {"amount": 6, "score": 700}},
                          format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    without_key = api.post(f"/api/tasks/{task_id}/complete", body, format="json")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert ProcessEvent.objects.count() == events
    assert other_body.status_code == 422
    assert without_key.status_code == 409


def test_idempotent_start_creates_one_process(small_version, clerk):
    api = client_for(clerk)
    body = {"journey_id": "journey-small"}

    first = api.post("/api/processes/start", body, format="json", HTTP_IDEMPOTENCY_KEY="start-1")
    second = api.post("/api/processes/start", body, format="json", HTTP_IDEMPOTENCY_KEY="start-1")

    assert first.json()["id"] == second.json()["id"]
    assert api.get("/api/processes").json()[0]["id"] == first.json()["id"]
    assert len(api.get("/api/processes").json()) == 1


def test_journey_import_and_detail(db, admin_user, small_definition):
    api = client_for(admin_user)

    created = api.post("/api/journeys/import", small_definition, format="json")
    unchanged = api.post("/api/journeys/import", small_definition, format="json")
    broken = api.post("/api/journeys/import", {**small_definition, "edges": [{"type": "ENABLES", "from": "atom-apply",
                                                                               "to": "atom-x"}]}, format="json")
    listing = api.get("/api/journeys").json()
    detail = api.get("/api/journeys/journey-small").json()

    assert created.status_code == 201 and created.json()["version"] == 1
    assert unchanged.status_code == 200 and unchanged.json()["hash"] == created.json()["hash"]
    assert broken.status_code == 400
    assert "edges[0].to: unknown atom 'atom-x'" in broken.json()["error"]["details"]["problems"]
    assert listing == [{"id": "journey-small", "name": "Small loan", "latest_version": 1, "may_start": True,
                        "startable": ["journey-small", "phase-intake", "module-intake", "phase-review",
                                      "module-review"]}]  # a superuser starts any part
    assert [v["number"] for v in detail["versions"]] == [1] and len(detail["atoms"]) == 8


def test_visualize_reports_states_and_fired_edges(small_version, clerk):
    api = client_for(clerk)
    process_id = api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json").json()["id"]
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]
    api.post(f"/api/tasks/{task_id}/complete", {"result": {"amount": 1, "score": 100}}, format="json")

    graph = api.get(f"/api/processes/{process_id}/visualize").json()

    states = {node["id"]: node["state"] for node in graph["nodes"]}
    fired = {(e["from"], e["to"]): e["fired"] for e in graph["edges"] if e["type"] == "ENABLES"}
    assert states["atom-apply"] == "completed"
    assert fired[("atom-apply", "atom-score")] is True
    assert fired[("atom-manual", "atom-open")] is None


def test_stats_count_open_completed_and_queued(small_version, clerk, checker):
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")

    stats = api.get("/api/tasks/stats").json()

    assert stats == {"pending": 2, "in_progress": 0, "completed": 0, "overdue": 0, "queued": 0}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_users_claim_one_queued_task_exactly_one_wins(small_version, clerk):
    checkers = [UserFactory(username=f"checker{i}", roles=["role-checker"]) for i in range(20)]
    clients = [client_for(user) for user in checkers]
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    apply_id = api.get("/api/tasks/inbox").json()[0]["id"]
    api.post(f"/api/tasks/{apply_id}/complete", {"result": {"amount": 1, "score": 100}}, format="json")
    queued = TaskInstance.objects.get(atom_id="atom-manual")
    assert queued.assigned_to is None

    codes = race(20, lambda i: clients[i].post(f"/api/tasks/{queued.pk}/start").status_code)

    assert Counter(codes) == {200: 1, 409: 19}
    claims = ProcessEvent.objects.filter(task_id=queued.pk, type="task.assigned")
    assert claims.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_clients_complete_one_task_exactly_one_wins(small_version, clerk):
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]
    clients = [client_for(clerk) for _ in range(10)]

    codes = race(10, lambda i: clients[i].post(
        f"/api/tasks/{task_id}/complete", {"result": {"amount": i, "score": 700}}, format="json").status_code)

    assert Counter(codes) == {200: 1, 409: 9}
    assert ProcessEvent.objects.filter(type="task.completed", task_id=task_id).count() == 1
    assert TaskInstance.objects.filter(atom_id="atom-score").count() == 1


@pytest.mark.django_db(transaction=True)
def test_demo_journey_walked_over_http_with_even_least_busy_routing(demo_version):
    call_command("seed_demo", verbosity=0)
    from django.contrib.auth import get_user_model

    User = get_user_model()
    clients = {user.username: client_for(user) for user in User.objects.all()}
    starter = clients["olivia"]
    process_ids = [starter.post("/api/processes/start", {"journey_id": "journey-purchase-fha"}, format="json")
                   .json()["id"] for _ in range(6)]

    for _ in range(200):
        open_tasks = list(TaskInstance.objects.filter(status__in=["pending", "in_progress"], kind="human")
                          .select_related("assigned_to", "process").order_by("pk"))
        if not open_tasks:
            break
        _assert_least_busy_is_even(open_tasks)
        task = open_tasks[0]
        if task.assigned_to is None:
            member = User.objects.filter(groups__name=task.role).order_by("pk").first().username
            assert clients[member].post(f"/api/tasks/{task.pk}/start").status_code == 200
        else:
            member = task.assigned_to.username
        result = fill_form(task.process, task.atom_id, {"credit_score": 700, "ltv_percent": 90.0})
        response = clients[member].post(f"/api/tasks/{task.pk}/complete", {"result": result}, format="json")
        assert response.status_code == 200, response.content

    statuses = [starter.get(f"/api/processes/{pid}").json()["status"] for pid in process_ids]
    assert statuses == ["completed"] * 6


def _assert_least_busy_is_even(open_tasks):
    """Among equally available members of a least_busy role, open tasks differ by at most one."""
    from django.contrib.auth import get_user_model

    for role in ("role-loan-officer", "role-closer"):
        members = list(get_user_model().objects.filter(groups__name=role).values_list("username", flat=True))
        counts = Counter({m: 0 for m in members})
        counts.update(t.assigned_to.username for t in open_tasks if t.role == role and t.assigned_to)
        assert max(counts.values()) - min(counts.values()) <= 1, (role, counts)


def test_reassign_and_escalate_move_work_between_people(small_version, clerk):
    from tasks.models import Profile

    boss = UserFactory(username="boss")
    other = UserFactory(username="other-clerk", roles=["role-clerk"])
    outsider = UserFactory(username="outsider")
    Profile.objects.filter(user=clerk).update(manager=boss)
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]

    not_member = api.post(f"/api/tasks/{task_id}/reassign", {"new_assignee": outsider.username}, format="json")
    moved = api.post(f"/api/tasks/{task_id}/reassign", {"new_assignee": other.username}, format="json")
    gone = api.get(f"/api/tasks/{task_id}")
    escalated = client_for(other).post(f"/api/tasks/{task_id}/escalate")
    again = client_for(boss).post(f"/api/tasks/{task_id}/escalate")

    assert not_member.status_code == 400 and "new_assignee" in not_member.json()["error"]["details"]
    assert moved.status_code == 200 and moved.json()["assigned_to"] == "other-clerk"
    assert gone.status_code == 404  # the previous assignee no longer sees it
    assert escalated.status_code == 409  # other-clerk has no manager
    assert again.status_code == 404  # boss manages clara, not other-clerk
    types = list(ProcessEvent.objects.filter(task_id=task_id).values_list("type", flat=True))
    assert types.count("task.reassigned") == 1


def test_escalation_goes_to_the_manager_with_high_priority(small_version, clerk):
    from tasks.models import Profile

    boss = UserFactory(username="boss")
    Profile.objects.filter(user=clerk).update(manager=boss)
    api = client_for(clerk)
    api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json")
    task_id = api.get("/api/tasks/inbox").json()[0]["id"]

    response = api.post(f"/api/tasks/{task_id}/escalate")

    assert response.status_code == 200
    assert response.json()["assigned_to"] == "boss" and response.json()["priority"] == "high"
    assert client_for(boss).get("/api/tasks/inbox").json()[0]["id"] == task_id
    assert ProcessEvent.objects.filter(task_id=task_id, type="task.escalated").count() == 1


def test_throttling_answers_429_with_retry_after(small_version, clerk, settings):
    from django.core.cache import cache
    from gndp.api.throttling import UserRateThrottle

    cache.clear()
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = {**original, "user": "3/minute"}
    try:
        api = client_for(clerk)
        codes = [api.get("/api/tasks/stats").status_code for _ in range(4)]
        last = api.get("/api/tasks/stats")
    finally:
        UserRateThrottle.THROTTLE_RATES = original
        cache.clear()

    assert codes == [200, 200, 200, 429]
    assert last.status_code == 429 and int(last["Retry-After"]) > 0
    assert last.json()["error"]["code"] == "throttled"


def test_nul_bytes_are_bad_input_not_server_errors(small_version, clerk):
    api = client_for(clerk)

    in_query = api.get("/api/tasks/inbox", {"user_id": "a\x00b"})
    in_body = api.post("/api/processes/start", {"journey_id": "journey-small", "context": {"k": "a\x00b"}},
                       format="json")
    in_page = Client().get("/inbox/?journey=%00")

    assert in_query.status_code == 400 and in_query.json()["error"]["code"] == "invalid"
    assert in_body.status_code in (201, 400)  # SQLite stores it; PostgreSQL refuses it: never a 500
    assert in_page.status_code == 400
