from __future__ import annotations

import os
import shutil

import pytest
from django.core.management import call_command

from tests import servers

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_app(transactional_db, tmp_path):
    """The real app under uvicorn on the test database, with the demo loaded; system steps
    run eagerly inside it, so no worker is needed."""
    call_command("seed_demo", verbosity=0)
    with servers.running(servers.server_env(CELERY_TASK_ALWAYS_EAGER="1"), tmp_path / "server.log") as server:
        yield server.url


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module: Playwright's loop must be gone before other modules'
    async tests start theirs."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("GNDP_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium is required: apt-get install chromium")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls are still plain synchronous code, which Django must be told to allow.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _real_password(username: str) -> None:
    """The suite hashes passwords with a fast test-only hasher the server does not accept;
    give this user a real hash before it logs in through the browser."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = get_user_model().objects.get(username=username)
    user.password = PBKDF2PasswordHasher().encode("demo1234", PBKDF2PasswordHasher().salt(), iterations=1000)
    user.save(update_fields=["password"])


@pytest.fixture
def login(browser, live_app):
    """A fresh browser context logged in as the given demo user."""
    contexts = []

    def open_as(username: str):
        _real_password(username)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto(live_app + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "demo1234")
        page.click("button[type=submit]")
        page.wait_for_url(live_app + "/inbox/")
        return page

    yield open_as
    for context in contexts:
        context.close()
