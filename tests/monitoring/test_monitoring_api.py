"""The four monitoring endpoints and /metrics, over HTTP, scoped to the caller."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitoring import sla
from processes import services as process_services
from processes.models import ProcessInstance
from tasks import services as task_services
from steps.changes import change_tasks
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

from .conftest import HOUR, start_small

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def world(small_version, managed_clerk, manager):
    """Two clerks: clara (mona's team) and olga (nobody's); a process each, and a
    superuser."""
    olga = UserFactory(username="olga", roles=["role-clerk"])
    admin = UserFactory(username="root")
    admin.is_superuser = admin.is_staff = True
    admin.save()
    team_process, team_task = start_small(managed_clerk)
    other_process, other_task = start_small(olga)
    return {"clara": managed_clerk, "olga": olga, "mona": manager, "admin": admin,
            "team": (team_process, team_task), "other": (other_process, other_task)}


def test_active_processes_for_a_manager_are_the_teams_only(world):
    team_process, _ = world["team"]

    mine = client_for(world["mona"]).get("/api/monitoring/active-processes")
    everything = client_for(world["admin"]).get("/api/monitoring/active-processes")

    assert mine.status_code == 200
    assert [row["id"] for row in mine.json()] == [team_process.pk] and mine["X-Total-Count"] == "1"
    assert {row["id"] for row in everything.json()} == {team_process.pk, world["other"][0].pk}
    row = mine.json()[0]
    assert row["status"] == "on-track" and row["process_status"] == "running"
    assert row["current_steps"] == ["atom-apply"] and row["current_step_names"] == ["Apply"]
    assert row["percent_complete"] == 0.0 and row["age_seconds"] >= 0 and row["journey_id"] == "journey-small"


def test_only_managers_and_administrators_see_the_dashboard(world):
    refused = client_for(world["clara"]).get("/api/monitoring/metrics")
    anonymous = APIClient().get("/api/monitoring/metrics")

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert anonymous.status_code == 401


def test_status_is_delayed_past_a_due_date_and_blocked_when_suspended(world):
    team_process, team_task = world["team"]
    other_process, _ = world["other"]
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), due_date=timezone.now() - HOUR)
    process_services.suspend_process(other_process.pk, user=world["olga"])
    api = client_for(world["admin"])

    rows = {row["id"]: row for row in api.get("/api/monitoring/active-processes").json()}
    delayed = api.get("/api/monitoring/active-processes?status=delayed").json()

    assert rows[team_process.pk]["status"] == "delayed" and rows[team_process.pk]["overdue_tasks"] == 1
    assert rows[other_process.pk]["status"] == "blocked"
    assert list(rows) == [other_process.pk, team_process.pk]  # blocked first
    assert [row["id"] for row in delayed] == [team_process.pk]


def test_bad_filters_are_400_with_the_fields_named(world):
    api = client_for(world["admin"])

    window = api.get("/api/monitoring/metrics?window=forever")
    journey = api.get("/api/monitoring/sla-compliance?journey_id=Not%20An%20Id")
    too_long = api.get("/api/monitoring/bottlenecks?window=P900D")
    status = api.get("/api/monitoring/active-processes?status=late")

    assert window.status_code == 400 and "window" in window.json()["error"]["details"]
    assert journey.status_code == 400 and "journey_id" in journey.json()["error"]["details"]
    assert too_long.status_code == 400 and status.status_code == 400


def test_metrics_count_throughput_cycle_time_errors_and_queues(world):
    team_process, team_task = world["team"]
    now = timezone.now()
    ProcessInstance.objects.filter(pk=team_process.pk).update(
        status="completed", started_at=now - 2 * HOUR, completed_at=now - HOUR)

    body = client_for(world["admin"]).get("/api/monitoring/metrics?window=24h").json()

    assert body["cycle_time"]["completed"] == 1
    assert body["cycle_time"]["p50_seconds"] == pytest.approx(3600, abs=1)
    assert sum(day["completed"] for day in body["throughput"]) == 1
    assert sum(day["started"] for day in body["throughput"]) == 2
    assert body["errors"] == {"failed": 0, "finished": 1, "error_rate": 0.0}
    assert body["task_completion"]["open"] == 2 and body["task_completion"]["completed"] == 0
    assert body["queue_depth"] == [{"role": "role-clerk", "open": 2, "unassigned": 0, "in_progress": 0,
                                    "overdue": 0, "oldest_wait_seconds": body["queue_depth"][0]["oldest_wait_seconds"]}]
    assert body["active"] == {"active": 1, "on_track": 1, "delayed": 0, "blocked": 0}


def test_journey_filter_narrows_every_endpoint(world):
    api = client_for(world["admin"])

    for path in ("active-processes", "metrics", "sla-compliance", "bottlenecks"):
        response = api.get(f"/api/monitoring/{path}?journey_id=journey-other")
        assert response.status_code == 200, path
    assert api.get("/api/monitoring/active-processes?journey_id=journey-other").json() == []
    assert len(api.get("/api/monitoring/active-processes?journey_id=module-intake").json()) == 0
    assert len(api.get("/api/monitoring/active-processes?journey_id=journey-small").json()) == 2


def test_sla_compliance_per_atom_against_the_target(world):
    team_process, team_task = world["team"]
    other_process, other_task = world["other"]
    task_services.complete_task(team_task.pk, user=world["clara"], result={"amount": 1, "score": 700})
    task_services.complete_task(other_task.pk, user=world["olga"], result={"amount": 1, "score": 700})
    # One took 1 h (within the 4 h target); the other 6 h (late).
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), created_at=now - HOUR, due_date=now + 3 * HOUR,
                                                        completed_at=now)
    change_tasks(TaskInstance.objects.filter(pk=other_task.pk), created_at=now - 6 * HOUR, due_date=now - 2 * HOUR,
                                                         completed_at=now, sla_warned_at=now - HOUR)

    everything = client_for(world["admin"]).get("/api/monitoring/sla-compliance?window=7d").json()
    team = client_for(world["mona"]).get("/api/monitoring/sla-compliance").json()

    apply = next(row for row in everything["atoms"] if row["atom_id"] == "atom-apply")
    assert apply["target_seconds"] == 4 * 3600 and apply["completed"] == 2
    assert apply["percent_within_target"] == 50.0 and apply["warned"] == 1
    assert apply["p50_seconds"] == pytest.approx(3.5 * 3600, abs=1)
    assert apply["p95_seconds"] == pytest.approx((1 + 0.95 * 5) * 3600, abs=1)
    assert sum(day["completed"] for day in everything["series"]) == 2
    team_apply = next(row for row in team["atoms"] if row["atom_id"] == "atom-apply")
    assert team_apply["completed"] == 1 and team_apply["percent_within_target"] == 100.0


def test_bottlenecks_rank_atoms_by_waiting_time(world, checker):
    team_process, team_task = world["team"]
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), created_at=now - 10 * HOUR)
    # A second atom with a shorter queue: a checker task waiting 1 h.
    TaskInstance.objects.create(process=team_process, atom_id="atom-b", name="Branch B", role="role-checker",
                                created_at=now)
    change_tasks(TaskInstance.objects.filter(atom_id="atom-b"), created_at=now - HOUR)

    body = client_for(world["admin"]).get("/api/monitoring/bottlenecks").json()

    ranked = [(row["rank"], row["atom_id"]) for row in body["atoms"]]
    assert ranked == [(1, "atom-apply"), (2, "atom-b")]
    first = body["atoms"][0]
    assert first["queue_depth"] == 2 and first["target_seconds"] == 4 * 3600
    assert first["max_wait_seconds"] == pytest.approx(10 * 3600, abs=5)


def test_prometheus_exposition_needs_an_administrator_or_the_token(world, settings):
    process_services.suspend_process(world["other"][0].pk, user=world["olga"])
    sla.sweep(now=timezone.now() + 20 * HOUR)  # clara's task breaches (olga's is suspended)

    anonymous = APIClient().get("/metrics")
    staff = client_for(world["admin"]).get("/metrics")
    settings.GNDP_METRICS_TOKEN = "s3cret"
    scraper = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    wrong = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    assert anonymous.status_code == 403 and wrong.status_code == 403
    assert staff.status_code == 200 and scraper.status_code == 200
    text = staff.content.decode()
    assert 'gndp_process_starts_total{journey="journey-small"} 2.0' in text
    assert 'gndp_sla_breaches_total{atom="atom-apply",journey="journey-small"} 1.0' in text
    assert 'gndp_queue_depth{role="role-clerk"} 2.0' in text
    assert 'gndp_task_wait_seconds_bucket{atom="atom-apply",journey="journey-small",le="+Inf"} 0.0' in text
    for name in ("gndp_process_completions_total", "gndp_task_completions_total", "gndp_task_handling_seconds",
                 "gndp_event_relay_lag_seconds", "gndp_sla_timers_due", "gndp_processes{"):
        assert name in text, name


def test_the_schema_validates_with_the_monitoring_urls(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn",
                 "--file", str(tmp_path / "schema.yaml"))
    assert "/api/monitoring/sla-compliance" in (tmp_path / "schema.yaml").read_text()


def test_a_manager_without_reports_is_refused(world):
    Profile.objects.filter(manager=world["mona"]).update(manager=None)

    assert client_for(world["mona"]).get("/api/monitoring/bottlenecks").status_code == 403


def test_window_accepts_short_and_iso_forms(world):
    api = client_for(world["admin"])

    for window, seconds in (("24h", 86400), ("2w", 14 * 86400), ("PT12H", 43200), ("P30D", 30 * 86400)):
        body = api.get(f"/api/monitoring/sla-compliance?window={window}").json()
        assert body["window_seconds"] == seconds, window
    assert timedelta(seconds=api.get("/api/monitoring/metrics").json()["window_seconds"]) == timedelta(days=7)
