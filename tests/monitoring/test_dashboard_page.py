"""The dashboard page through Django's test client: who may open it, what a manager sees,
the filters, the timeline, and the partial refreshes the live page asks for."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from monitoring.templatetags.monitoring_tags import duration, share
from processes import services as process_services
from processes.models import ProcessInstance
from steps.changes import change_tasks
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

from .conftest import HOUR, start_small

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def table_ids(html: str) -> list[int]:
    """The process ids of the active-processes table, in order."""
    return [int(pk) for pk in re.findall(r'<tr class="h-row [^"]*" data-process-id="(\d+)"', html)]


def card(html: str, name: str) -> str:
    return re.search(rf'data-card="{name}">([^<]*)<', html).group(1)


@pytest.fixture
def world(small_version, managed_clerk, manager):
    """clara (role-clerk) reports to mona; olga (role-clerk) reports to nobody and has
    her own process; root is a superuser."""
    olga = UserFactory(username="olga", roles=["role-clerk"])
    admin = UserFactory(username="root")
    admin.is_superuser = admin.is_staff = True
    admin.save()
    team_process, team_task = start_small(managed_clerk)
    Profile.objects.filter(user=managed_clerk).update(available=False)  # olga's step goes to olga
    other_process, other_task = start_small(olga)
    Profile.objects.filter(user=managed_clerk).update(available=True)
    assert other_task.assigned_to == olga
    return {"clara": managed_clerk, "olga": olga, "mona": manager, "admin": admin,
            "team": (team_process, team_task), "other": (other_process, other_task)}


# --- who may open it ------------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_the_login_page(world):
    response = Client().get("/dashboard/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_user_who_manages_nobody_is_refused_and_has_no_link(world):
    clara = client_for(world["clara"])

    refused = clara.get("/dashboard/")
    inbox = clara.get("/inbox/")

    assert refused.status_code == 403
    assert "for managers and administrators" in refused.content.decode()
    assert 'href="/dashboard/"' not in inbox.content.decode()


def test_a_manager_sees_the_teams_processes_only(world):
    team_process, _ = world["team"]
    other_process, _ = world["other"]

    response = client_for(world["mona"]).get("/dashboard/")

    html = response.content.decode()
    assert response.status_code == 200
    assert table_ids(html) == [team_process.pk]
    assert card(html, "active") == "1" and card(html, "on_track") == "1"
    assert "your team" in html and 'href="/dashboard/"' in html  # the nav link
    assert f"/processes/{other_process.pk}/" not in html
    # the workload lists the team, never olga
    assert 'data-user="clara"' in html and 'data-user="mona"' in html and 'data-user="olga"' not in html


def test_an_administrator_sees_every_process(world):
    ids = table_ids(client_for(world["admin"]).get("/dashboard/").content.decode())

    assert sorted(ids) == sorted([world["team"][0].pk, world["other"][0].pk])


def test_managers_and_administrators_listen_on_the_socket(world):
    manager_page = client_for(world["mona"]).get("/dashboard/").content.decode()
    admin_page = client_for(world["admin"]).get("/dashboard/").content.decode()

    # The socket sends each its own scope's events (monitoring.consumers): nobody polls. The
    # page's script reads the socket to follow from a data attribute (no inline script: CSP).
    assert '<div hidden data-dashboard="/ws/monitoring/"></div>' in manager_page
    assert "updates every 20 s" not in manager_page
    assert '<div hidden data-dashboard="/ws/monitoring/"></div>' in admin_page


# --- status colours, overdue counts ---------------------------------------------------------------

def test_delayed_and_blocked_processes_come_first_with_their_colours(world):
    team_process, team_task = world["team"]
    other_process, _ = world["other"]
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), due_date=timezone.now() - HOUR)
    process_services.suspend_process(other_process.pk, user=world["olga"])

    html = client_for(world["admin"]).get("/dashboard/").content.decode()

    assert table_ids(html) == [other_process.pk, team_process.pk]
    assert f'<tr class="h-row h-blocked" data-process-id="{other_process.pk}">' in html
    assert f'<tr class="h-row h-delayed" data-process-id="{team_process.pk}">' in html
    assert card(html, "delayed") == "1" and card(html, "blocked") == "1" and card(html, "overdue_tasks") == "1"
    queue_row = re.search(r'<tr data-role="role-clerk">.*?</tr>', html, re.S).group(0)
    assert '<span class="count-overdue" data-queue-overdue>1</span>' in queue_row


# --- filters --------------------------------------------------------------------------------------

def test_the_status_filter_narrows_the_table(world):
    team_process, team_task = world["team"]
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), due_date=timezone.now() - HOUR)
    admin = client_for(world["admin"])

    delayed = admin.get("/dashboard/?status=delayed").content.decode()
    on_track = admin.get("/dashboard/?status=on-track").content.decode()

    assert table_ids(delayed) == [team_process.pk]
    assert table_ids(on_track) == [world["other"][0].pk]
    assert card(delayed, "active") == "2"  # the cards still count every open process


def test_the_journey_filter_narrows_every_part(world, demo_version):
    demo_process = process_services.start_process(workflow_id="phase-processing", user=world["admin"])
    admin = client_for(world["admin"])

    everything = admin.get("/dashboard/").content.decode()
    demo_only = admin.get("/dashboard/?journey_id=journey-purchase-fha").content.decode()
    small_only = admin.get("/dashboard/?journey_id=journey-small").content.decode()

    assert demo_process.pk in table_ids(everything) and len(table_ids(everything)) == 3
    assert table_ids(demo_only) == [demo_process.pk] and card(demo_only, "active") == "1"
    assert demo_process.pk not in table_ids(small_only) and card(small_only, "active") == "2"
    assert 'data-role="role-clerk"' not in demo_only and 'data-role="role-clerk"' in small_only
    # the filter offers the journeys and their phases
    assert '<option value="journey-purchase-fha" >' in everything and '<option value="phase-processing" >' in everything


def test_the_window_decides_what_counts_as_recently_completed(world):
    team_process, _ = world["team"]
    now = timezone.now()
    ProcessInstance.objects.filter(pk=team_process.pk).update(
        status="completed", started_at=now - timedelta(days=4), completed_at=now - timedelta(days=3))
    admin = client_for(world["admin"])

    week = admin.get("/dashboard/?window=7d").content.decode()
    day = admin.get("/dashboard/?window=24h").content.decode()
    custom = admin.get("/dashboard/?window=2w").content.decode()

    assert card(week, "completed_in_window") == "1" and card(day, "completed_in_window") == "0"
    assert '<option value="24h" selected>' in day
    assert '<option value="2w" selected>2w</option>' in custom  # a window typed into the URL stays chosen


def test_bad_filters_are_a_400_page_naming_the_problem(world):
    admin = client_for(world["admin"])

    response = admin.get("/dashboard/?window=forever")
    parts = admin.get("/dashboard/?parts=cards,secrets", HTTP_HX_REQUEST="true")

    assert response.status_code == 400 and "invalid dashboard filters" in response.content.decode()
    assert parts.status_code == 400


def test_empty_filter_fields_mean_no_filter(world):
    response = client_for(world["admin"]).get("/dashboard/?journey_id=&window=&status=")

    assert response.status_code == 200 and len(table_ids(response.content.decode())) == 2


# --- the timeline -----------------------------------------------------------------------------------

def test_the_timeline_shows_the_most_urgent_process_or_the_chosen_one(world):
    team_process, team_task = world["team"]
    other_process, _ = world["other"]
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), due_date=timezone.now() - HOUR)
    admin = client_for(world["admin"])

    default = admin.get("/dashboard/").content.decode()
    chosen = admin.get(f"/dashboard/?process={other_process.pk}").content.decode()

    assert f'data-process-id="{team_process.pk}"' in re.search(r'<section id="dash-timeline"[^>]*>', default).group(0)
    assert f'data-process-id="{other_process.pk}"' in re.search(r'<section id="dash-timeline"[^>]*>', chosen).group(0)
    assert 'id="timeline-data"' in chosen and '"atom_id": "atom-apply"' in chosen


def test_a_manager_cannot_see_the_timeline_of_another_teams_process(world):
    other_process, _ = world["other"]

    response = client_for(world["mona"]).get(f"/dashboard/?process={other_process.pk}")

    assert response.status_code == 404
    assert "olga" not in response.content.decode()


# --- partial refreshes --------------------------------------------------------------------------------

def test_a_live_refresh_returns_only_the_parts_asked_for_out_of_band(world):
    team_process, team_task = world["team"]
    mona = client_for(world["mona"])
    change_tasks(TaskInstance.objects.filter(pk=team_task.pk), due_date=timezone.now() - HOUR)

    response = mona.get(f"/dashboard/?parts=cards,queues,timeline&process={team_process.pk}", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    sections = re.findall(r'<section id="(dash-[a-z]+)"[^>]*hx-swap-oob="true"', html)
    assert response.status_code == 200
    assert sections == ["dash-cards", "dash-timeline", "dash-queues"]
    assert "<html" not in html and card(html, "overdue_tasks") == "1"


def test_a_live_refresh_keeps_the_managers_scope(world):
    other_process, _ = world["other"]
    mona = client_for(world["mona"])

    cards = mona.get("/dashboard/?parts=processes,cards", HTTP_HX_REQUEST="true").content.decode()
    timeline = mona.get(f"/dashboard/?parts=timeline&process={other_process.pk}", HTTP_HX_REQUEST="true")

    assert table_ids(cards) == [world["team"][0].pk] and card(cards, "active") == "1"
    assert timeline.status_code == 404


def test_changing_a_filter_renders_the_body_alone(world):
    response = client_for(world["admin"]).get("/dashboard/?window=24h", HTTP_HX_REQUEST="true",
                                              HTTP_HX_TARGET="dashboard-body")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dashboard-body" data-refresh-url="/dashboard/?window=24h">')
    assert "hx-swap-oob" not in html and len(table_ids(html)) == 2


def test_the_selector_computes_only_the_parts_asked_for(world):
    from monitoring import selectors

    scope, filters = selectors.scope_for(world["mona"]), selectors.Filters()

    only_queues = selectors.dashboard(scope, filters, parts=["queues"])
    everything = selectors.dashboard(scope, filters)

    assert only_queues["parts"] == ["queues"]
    assert "queue_by_role" in only_queues and "cards" not in only_queues and "active_processes" not in only_queues
    assert everything["parts"] == list(selectors.DASHBOARD_PARTS)
    assert everything["timeline"]["process"]["id"] == world["team"][0].pk  # the most urgent of the team's
    assert len(everything["trend"]) == 8 and everything["trend"][-1]["started"] == 1  # 7 days back and today


# --- formatting -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0, "0s"), (45.4, "45s"), (720, "12m"), (3 * 3600, "3h"), (3 * 3600 + 20 * 60, "3h 20m"),
    (4 * 86400 + 6 * 3600 + 59, "4d 6h"), (-90, "-1m"),
], ids=lambda value: str(value))
def test_durations_read_as_the_two_largest_units(seconds, text):
    assert duration(seconds) == text


def test_shares_of_a_target_are_percentages():
    assert [share(None), share(0), share(0.004), share(1.25)] == ["—", "0%", "<1%", "125%"]


# --- prediction and the graph ---------------------------------------------------------------------

def test_a_process_predicted_to_finish_late_is_flagged_at_risk_with_its_predicted_finish(world):
    team_process, _ = world["team"]
    finish = timezone.now() + timedelta(days=3)
    ProcessInstance.objects.filter(pk=team_process.pk).update(predicted_finish=finish, at_risk=True)

    html = client_for(world["mona"]).get("/dashboard/").content.decode()

    row = re.search(rf'data-process-id="{team_process.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "At risk" in row and "ends ~" in row


def test_the_graph_part_shows_where_the_teams_processes_wait(world):
    team_process, team_task = world["team"]

    html = client_for(world["mona"]).get("/dashboard/").content.decode()

    section = re.search(r'<section id="dash-graph".*?</section>', html, re.S).group(0)
    assert f'data-hotspot="{team_task.atom_id}"' in section
    assert 'data-computed-in="sql"' in section
    waiting = re.search(rf'data-hotspot="{team_task.atom_id}">.*?<td class="num">(\d+)</td>', section, re.S).group(1)
    assert waiting == "1"  # the team's one process, not olga's
