"""The monitoring dashboard in a real headless Chromium, against the app served by uvicorn:
its counters move when a process completes, with no reload."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from processes.services import start_process
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import UserFactory
from tests.fixtures import SMALL_JOURNEY

pytestmark = [pytest.mark.slow]


def api_post(base: str, user, path: str, body: dict | None = None) -> dict:
    """A POST to the REST API as `user` (the server runs the service and publishes the
    events after commit, as it does for any client)."""
    token = Token.objects.get_or_create(user=user)[0].key
    request = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def open_task(process, atom_id: str) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def test_the_dashboard_counts_a_completed_process_live(live_app, login):
    # given: the small journey, a clerk and a checker, and one running process
    publish_journey(yaml.safe_load(SMALL_JOURNEY))
    clerk = UserFactory(username="clara", roles=["role-clerk"])
    checker = UserFactory(username="chet", roles=["role-checker"])
    process = start_process(workflow_id="journey-small", user=clerk)

    admin = login("admin")
    errors: list[str] = []
    admin.on("pageerror", lambda error: errors.append(str(error)))
    admin.goto(live_app + "/dashboard/")
    expect(admin.locator("[data-live-status]")).to_have_text("live")
    expect(admin.locator("[data-card=active]")).to_have_text("1")
    expect(admin.locator("[data-card=completed_in_window]")).to_have_text("0")
    expect(admin.locator(f"#dash-processes tr[data-process-id='{process.pk}']")).to_be_visible()
    admin.wait_for_function("() => Chart.getChart(document.querySelector('canvas[data-chart=gantt]')) !== undefined")
    admin.evaluate("window.notReloaded = true")

    # when: every human step is completed through the API, the last system step closes it
    api_post(live_app, clerk, f"/api/tasks/{open_task(process, 'atom-apply').pk}/complete",
             {"result": {"amount": 1000, "score": 700}})
    api_post(live_app, clerk, f"/api/tasks/{open_task(process, 'atom-a').pk}/complete", {"result": {}})
    branch_b = open_task(process, "atom-b")
    api_post(live_app, checker, f"/api/tasks/{branch_b.pk}/start")
    api_post(live_app, checker, f"/api/tasks/{branch_b.pk}/complete", {"result": {}})
    api_post(live_app, clerk, f"/api/tasks/{open_task(process, 'atom-join').pk}/complete", {"result": {}})
    process.refresh_from_db()
    assert process.status == "completed"

    # then: the counters and the table follow without a reload
    expect(admin.locator("[data-card=completed_in_window]")).to_have_text("1", timeout=10_000)
    expect(admin.locator("[data-card=active]")).to_have_text("0")
    expect(admin.locator(f"#dash-processes tr[data-process-id='{process.pk}']")).to_have_count(0)
    # the timeline of the process it was showing has followed it to the end
    admin.wait_for_function("() => document.getElementById('timeline-data').textContent.includes('atom-join')")
    assert admin.evaluate("window.notReloaded") is True
    assert errors == []


def test_the_filters_and_the_timeline_change_in_place(live_app, login):
    publish_journey(yaml.safe_load(SMALL_JOURNEY))
    clerk = UserFactory(username="clara", roles=["role-clerk"])
    first = start_process(workflow_id="journey-small", user=clerk)
    second = start_process(workflow_id="journey-small", user=clerk)

    admin = login("admin")
    admin.goto(live_app + "/dashboard/")
    expect(admin.locator("[data-card=active]")).to_have_text("2")
    expect(admin.locator("#dash-timeline")).to_have_attribute("data-process-id", str(first.pk))  # the oldest
    admin.evaluate("window.notReloaded = true")

    # when: another journey is chosen
    admin.select_option("#f-journey", "journey-purchase-fha")
    # then: nothing of the small journey is left, and the address says why
    expect(admin.locator("[data-card=active]")).to_have_text("0")
    expect(admin.locator("#dash-processes")).to_contain_text("No open processes")
    assert "journey_id=journey-purchase-fha" in admin.url

    # when: back to every journey, the second process's timeline is opened from the keyboard
    admin.select_option("#f-journey", "")
    expect(admin.locator("[data-card=active]")).to_have_text("2")
    admin.locator(f"#dash-processes tr[data-process-id='{second.pk}'] a:has-text('Timeline')").focus()
    admin.keyboard.press("Enter")
    # then: the timeline shows it and its row is marked as the one shown
    expect(admin.locator("#dash-timeline")).to_have_attribute("data-process-id", str(second.pk))
    expect(admin.locator(f"#dash-processes tr[data-process-id='{second.pk}']")).to_have_attribute("aria-current", "true")
    assert f"process={second.pk}" in admin.url
    assert admin.evaluate("window.notReloaded") is True


def test_a_managers_dashboard_follows_its_teams_work_live(live_app, login):
    # given: mona (no staff flag) manages clara; olga is on nobody's team
    from tasks.models import Profile

    publish_journey(yaml.safe_load(SMALL_JOURNEY))
    mona = UserFactory(username="mona")
    clerk = UserFactory(username="clara", roles=["role-clerk"])
    Profile.objects.filter(user=clerk).update(manager=mona)
    process = start_process(workflow_id="journey-small", user=clerk)

    manager = login("mona")
    manager.goto(live_app + "/dashboard/")
    # then: the page listens on /ws/monitoring/ (no polling) and shows the team's process
    expect(manager.locator("[data-live-status]")).to_have_text("live")
    expect(manager.locator("[data-card=active]")).to_have_text("1")
    manager.evaluate("window.notReloaded = true")

    # when: clara completes her step through the API
    api_post(live_app, clerk, f"/api/tasks/{open_task(process, 'atom-apply').pk}/complete",
             {"result": {"amount": 10, "score": 500}})

    # then: the timeline follows without a reload
    manager.wait_for_function("() => document.getElementById('timeline-data').textContent.includes('atom-manual')",
                              timeout=10_000)
    assert manager.evaluate("window.notReloaded") is True
