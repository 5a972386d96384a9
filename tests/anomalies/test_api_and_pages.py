"""`GET /api/monitoring/anomalies`, acknowledging, who sees what, and the page and panel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from anomalies.detection import detect
from anomalies.models import Anomaly
from processes.services import start_process
from tasks.models import Profile
from tests.factories import UserFactory

from .conftest import seed_history

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def stuck(team) -> Anomaly:
    seed_history(team, good=10)
    held = start_process(workflow_id="journey-small", user=team.sam)
    detect(now=timezone.now() + timedelta(hours=4))
    return Anomaly.objects.get(kind="stuck", process=held)


def test_the_list_says_why_and_links_to_the_process(team, stuck):
    response = api(team.admin).get("/api/monitoring/anomalies")

    assert response.status_code == 200
    rows = [row for row in response.json() if row["kind"] == "stuck"]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == stuck.pk and row["status"] == "open"
    assert row["process_id"] == stuck.process_id and row["process_url"] == f"/processes/{stuck.process_id}/"
    assert row["reason"].startswith("No progress for 4h 0m while at “Apply”")
    assert row["details"]["samples"] == 10 and row["atom_id"] == "atom-apply"
    assert api(team.admin).get("/api/monitoring/anomalies", {"kind": "unusual_path"}).json() == []
    assert api(team.admin).get("/api/monitoring/anomalies", {"status": "bogus"}).status_code == 400


def test_managers_see_their_teams_and_others_are_refused(team, stuck):
    other_manager = UserFactory(username="otto")
    Profile.objects.filter(user=UserFactory(username="oscar")).update(manager=other_manager)

    as_mona = api(team.mona).get("/api/monitoring/anomalies")  # clara, her report, holds the task
    as_otto = api(other_manager).get("/api/monitoring/anomalies")
    as_clara = api(team.clara).get("/api/monitoring/anomalies")

    assert [row["id"] for row in as_mona.json() if row["kind"] == "stuck"] == [stuck.pk]
    assert as_otto.status_code == 200 and as_otto.json() == []
    assert as_clara.status_code == 403 and as_clara.json()["error"]["code"] == "forbidden"
    assert api(None).get("/api/monitoring/anomalies").status_code == 401


def test_acknowledging(team, stuck):
    other_manager = UserFactory(username="otto")
    Profile.objects.filter(user=UserFactory(username="oscar")).update(manager=other_manager)
    url = f"/api/monitoring/anomalies/{stuck.pk}/acknowledge"

    foreign = api(other_manager).post(url, {"note": "mine?"}, format="json")
    refused = api(team.clara).post(url, {}, format="json")
    done = api(team.mona).post(url, {"note": "chasing clara"}, format="json")
    again = api(team.admin).post(url, {"note": "me too"}, format="json")

    assert foreign.status_code == 404 and refused.status_code == 403
    assert done.status_code == 200
    assert done.json()["status"] == "acknowledged" and done.json()["acknowledged_by"] == "mona"
    assert done.json()["note"] == "chasing clara"
    assert again.json()["acknowledged_by"] == "mona"  # once acknowledged, it stays as it was
    assert stuck.pk not in [row["id"] for row in api(team.mona).get("/api/monitoring/anomalies").json()]
    acknowledged = api(team.mona).get("/api/monitoring/anomalies", {"status": "acknowledged"}).json()
    assert [row["id"] for row in acknowledged] == [stuck.pk]
    assert api(team.mona).post("/api/monitoring/anomalies/999999/acknowledge").status_code == 404


def test_the_page_and_the_dashboard_panel(team, stuck):
    client = Client()
    client.force_login(team.mona)

    page = client.get("/anomalies/")
    panel = client.get("/anomalies/panel/")
    acknowledged = client.post(f"/anomalies/{stuck.pk}/acknowledge/", HTTP_HX_REQUEST="true")
    client.force_login(team.clara)
    refused = client.get("/anomalies/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "No progress for 4h 0m while at “Apply”" in html
    assert f'href="/processes/{stuck.process_id}/"' in html and "Acknowledge</button>" in html
    assert panel.content.decode().lstrip().startswith('<section class="panel anomalies" id="anomalies-panel"')
    assert acknowledged.status_code == 200 and "Acknowledge</button>" not in acknowledged.content.decode()
    stuck.refresh_from_db()
    assert stuck.acknowledged_by == team.mona
    assert refused.status_code == 403
