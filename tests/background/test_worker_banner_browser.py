"""The dashboard's workers banner in a real headless Chromium (Debian's /usr/bin/chromium)
against the app under uvicorn: red and first on the page when no worker runs system steps,
green again without a reload once a real worker has run them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from monitoring.models import WorkerHeartbeat
from processes.services import start_process
from processes.versions import publish_journey
from steps.changes import change_tasks
from tasks.models import TaskInstance
from tests.background.conftest import BACKGROUND_JOURNEY
from tests.factories import UserFactory
from tests.web.conftest import browser, live_app, login  # noqa: F401 - the browser fixtures

pytestmark = [pytest.mark.slow, pytest.mark.worker]

RED = "rgb(185, 28, 28)"  # --blocked
GREEN_TEXT = "rgb(20, 83, 45)"


def test_the_dashboard_shows_a_red_banner_while_no_worker_runs_system_steps(children, purge_broker, live_app, login,
                                                                             tmp_path):
    # given: three processes whose system step has waited five minutes, and the last
    # worker's heartbeat four minutes old (it died then)
    publish_journey(yaml.safe_load(BACKGROUND_JOURNEY))
    UserFactory(username="bea", roles=["role-bg"])  # who the review after the system step goes to
    admin_user = get_user_model().objects.get(username="admin")
    processes = [start_process(workflow_id="journey-bg", user=admin_user) for _ in range(3)]
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(process__in=processes, atom_id="bg-check"), created_at=now - timedelta(minutes=5))
    WorkerHeartbeat.objects.create(node="celery@laptop", hostname="laptop", pid=4242, started_at=now - timedelta(hours=1),
                                   last_seen_at=now - timedelta(minutes=4))

    # when: an administrator opens the dashboard
    admin = login("admin")
    errors: list[str] = []
    admin.on("pageerror", lambda error: errors.append(str(error)))
    admin.goto(live_app + "/dashboard/")

    # then: a red banner, first in the page's body, says what is wrong and since when
    banner = admin.locator("#dash-workers")
    expect(banner).to_have_attribute("data-worker-state", "down")
    expect(banner).to_contain_text("No worker seen for 4m: system steps are not being run.")
    expect(banner).to_contain_text("3 system steps have waited longer than 2m, the oldest for 5m.")
    expect(banner).to_contain_text("The last worker: celery@laptop, pid 4242.")
    assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    assert banner.evaluate("e => e.parentElement.firstElementChild === e")
    box, cards = banner.bounding_box(), admin.locator("#dash-cards").bounding_box()
    assert box["y"] + box["height"] <= cards["y"] and box["y"] < 300  # above the figures, in view
    expect(admin.locator("[data-card=blocked]")).to_have_text("3")
    admin.screenshot(path=str(tmp_path / "dashboard-no-worker.png"), full_page=False)
    banner.screenshot(path=str(tmp_path / "banner-no-worker.png"))
    admin.evaluate("window.notReloaded = true")

    # when: a real worker starts and runs the waiting steps
    children.worker(GNDP_WORKER_HEARTBEAT_SECONDS="0.5")

    # then: the banner turns green on the page as it is, within its refresh time
    expect(banner).to_have_attribute("data-worker-state", "ok", timeout=40_000)
    expect(banner).to_contain_text("1 worker running")
    assert banner.evaluate("e => getComputedStyle(e).color") == GREEN_TEXT
    expect(admin.locator("[data-card=blocked]")).to_have_text("0", timeout=20_000)
    banner.screenshot(path=str(tmp_path / "banner-ok.png"))
    assert admin.evaluate("window.notReloaded") is True
    assert errors == []
