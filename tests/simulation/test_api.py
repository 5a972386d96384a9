"""/api/simulation/ over HTTP: authenticated users only, the documented error body."""

from __future__ import annotations

import copy

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes.services import start_process
from processes.versions import publish_journey
from tests.factories import UserFactory

from .journeys import CLEAN, ROLE

pytestmark = pytest.mark.urls("tests.simulation.urls")

HIGH = {"atom-apply": {"score": 700}}


@pytest.fixture
def clean(db):
    return publish_journey(copy.deepcopy(CLEAN)).version


@pytest.fixture
def user(db):
    return UserFactory(username="sam", roles=[ROLE])


@pytest.fixture
def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_test_journey(api, clean):
    response = api.post("/api/simulation/test-journey", {"journey_id": "journey-clean", "results": HIGH}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert {"success", "visited_atoms", "skipped_atoms", "errors", "predicted_duration", "decisions"} <= set(body)
    assert body["success"] is True and body["skipped_atoms"] == ["atom-manual"]
    assert body["decisions"][0]["from"] == "atom-apply"


def test_a_failing_dry_run_is_a_report_not_an_error(api, clean):
    response = api.post("/api/simulation/test-journey",
                        {"journey_id": "journey-clean", "results": {"atom-apply": {"score": "high"}}}, format="json")

    assert response.status_code == 200
    assert response.json()["success"] is False
    assert response.json()["errors"] == ["atom-apply.score: must be an integer"]


@pytest.mark.parametrize("body, field", [
    ({"journey_id": "Not An Id"}, "journey_id"),
    ({"journey_id": "journey-clean", "context": [1]}, "context"),
    ({"journey_id": "journey-clean", "results": {"atom-apply": 5}}, "results"),
], ids=["bad-id", "context-not-object", "result-not-object"])
def test_test_journey_refuses_bad_input(api, clean, body, field):
    response = api.post("/api/simulation/test-journey", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and field in response.json()["error"]["details"]


def test_too_deep_a_context_is_refused(api, clean):
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]

    response = api.post("/api/simulation/test-journey", {"journey_id": "journey-clean", "context": deep}, format="json")

    assert response.status_code == 400 and "context" in response.json()["error"]["details"]


def test_unknown_journeys_are_404(api, db):
    tested = api.post("/api/simulation/test-journey", {"journey_id": "journey-nope"}, format="json")
    validated = api.get("/api/simulation/validate-workflow?journey_id=journey-nope")
    predicted = api.get("/api/simulation/predict?journey_id=journey-nope")

    assert [tested.status_code, validated.status_code, predicted.status_code] == [404, 404, 404]
    assert tested.json()["error"]["code"] == "unknown_workflow"


def test_anonymous_callers_are_refused(clean):
    anonymous = APIClient()

    responses = [
        anonymous.post("/api/simulation/test-journey", {"journey_id": "journey-clean"}, format="json"),
        anonymous.get("/api/simulation/validate-workflow?journey_id=journey-clean"),
        anonymous.post("/api/simulation/coverage", {"journey_id": "journey-clean", "cases": [{}]}, format="json"),
        anonymous.get("/api/simulation/predict?journey_id=journey-clean"),
    ]

    assert [r.status_code for r in responses] == [401] * 4
    assert responses[0].json()["error"]["code"] == "not_authenticated"


def test_validate_workflow(api, clean):
    response = api.get("/api/simulation/validate-workflow?journey_id=journey-clean")
    missing = api.get("/api/simulation/validate-workflow")

    assert response.status_code == 200
    assert response.json() == {"valid": True, "errors": [], "warnings": [], "version": 1}
    assert missing.status_code == 400 and missing.json()["error"]["details"] == {"journey_id": "required"}


def test_coverage(api, clean):
    response = api.post("/api/simulation/coverage",
                        {"journey_id": "journey-clean", "cases": [{"name": "good", "results": HIGH}]}, format="json")
    empty = api.post("/api/simulation/coverage", {"journey_id": "journey-clean", "cases": []}, format="json")

    assert response.status_code == 200
    assert response.json()["atoms"]["uncovered"] == ["atom-manual"]
    assert empty.status_code == 400 and "cases" in empty.json()["error"]["details"]


def test_predict_a_journey(api, clean):
    response = api.get("/api/simulation/predict?journey_id=journey-clean&runs=300")

    body = response.json()
    assert response.status_code == 200
    assert body["runs"] == 300 and body["source"] == "sla" and body["sla_target"] == "P2D"
    assert set(body["visit_probability"]) == {atom["id"] for atom in CLEAN["atoms"]}


def test_predict_a_process_visible_to_the_caller_only(api, user, clean):
    process = start_process(workflow_id="journey-clean", user=user)
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(username='eve')).key}")

    mine = api.get(f"/api/simulation/predict?process_id={process.pk}")
    theirs = stranger.get(f"/api/simulation/predict?process_id={process.pk}")

    assert mine.status_code == 200
    assert mine.json()["process_id"] == process.pk and mine.json()["at_risk"] is False
    assert theirs.status_code == 404


@pytest.mark.parametrize("query", ["", "?journey_id=journey-clean&process_id=1", "?journey_id=journey-clean&runs=0"],
                         ids=["neither", "both", "zero-runs"])
def test_predict_refuses_bad_queries(api, clean, query):
    response = api.get(f"/api/simulation/predict{query}")

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
