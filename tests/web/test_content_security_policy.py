"""Every page under the Content-Security-Policy, in a real headless Chromium against the app
served by uvicorn as `make run` serves it (no DEBUG variable): each page loads, does its job
(graphs drawn, charts drawn, sockets live, forms sent by htmx and emptied, bars sized), and
the browser reports no violation of the policy: the templates carry no inline script, no
inline event handler and no inline style, and htmx injects none."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from processes.models import ProcessInstance

pytestmark = [pytest.mark.slow]

# Recorded in the page before any of its own scripts run; DevTools-injected, so not itself
# subject to the policy.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""


class Watch:
    """Every CSP report of a browser context: the console's and the pages' own events."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []

    def attach(self, page) -> None:
        page.context.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))

    def _console(self, page, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(f"{page.url}: {message.text}")

    def violations(self, page) -> list[str]:
        return [*self.console, *page.evaluate("window.__violations || []")]


def visit(page, url: str, watch: Watch, seen: list[str]) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    seen.extend(f"{url}: {v}" for v in watch.violations(page))
    watch.console.clear()


def test_every_page_works_with_no_policy_violation(live_app, browser, login):
    watch = Watch()
    seen: list[str] = []

    # The sign-in page, before signing in: the policy is on it too.
    context = browser.new_context()
    anonymous = context.new_page()
    watch.attach(anonymous)
    response = anonymous.goto(live_app + "/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy and "object-src 'none'" in policy
    seen.extend(watch.violations(anonymous))
    context.close()

    officer = login("olivia")
    watch.attach(officer)
    # Start a process through the page; its process page draws the graph and goes live.
    visit(officer, live_app + "/processes/start/", watch, seen)
    officer.select_option("#workflow", "phase-processing")
    officer.fill("#context", '{"loan_amount": 250000}')
    officer.click("button:has-text('Start')")
    expect(officer.locator("h1")).to_contain_text("Process #")
    process = ProcessInstance.objects.latest("pk")
    officer.wait_for_load_state("networkidle")
    expect(officer.locator("[data-live-status]")).to_have_text("live")
    assert officer.evaluate("GNDP.current.cy.nodes().length") > 0  # Cytoscape drew it
    assert officer.locator("#graph canvas").count() > 0
    # The progress bar got its width from the script, not from a style attribute.
    assert officer.evaluate("document.querySelector('[data-width]').style.width").endswith("%")
    # A comment sent by htmx lands and empties the form (the old inline hx-on handler's job).
    officer.fill("#comment-body", "Checked the **appraisal**")
    officer.click("button:has-text('Post comment')")
    expect(officer.locator("#discussion-live .comment")).to_contain_text("Checked the appraisal")
    expect(officer.locator("#comment-body")).to_have_value("")
    seen.extend(f"process page: {v}" for v in watch.violations(officer))

    # The list's status filter submits itself (the old inline onchange handler's job).
    visit(officer, live_app + "/processes/", watch, seen)
    with officer.expect_navigation():
        officer.select_option("select[name=status]", "running")
    assert "status=running" in officer.url
    seen.extend(f"process list: {v}" for v in watch.violations(officer))

    # The simulation page draws the simulated path.
    visit(officer, live_app + "/simulate/", watch, seen)
    officer.click("button:has-text('Simulate')")
    officer.wait_for_load_state("networkidle")
    assert officer.evaluate("GNDP.current.cy.nodes().length") > 0
    seen.extend(f"simulate: {v}" for v in watch.violations(officer))
    visit(officer, live_app + "/journeys/journey-purchase-fha/", watch, seen)
    assert officer.evaluate("GNDP.current.cy.nodes().length") > 0

    # The processor's inbox is live; the task page's form completes the task.
    processor = login("priya")
    watch.attach(processor)
    visit(processor, live_app + "/inbox/", watch, seen)
    expect(processor.locator("[data-live-status]")).to_have_text("live")
    task = process.tasks.get(status__in=["pending", "in_progress"])
    visit(processor, live_app + f"/tasks/{task.pk}/", watch, seen)
    processor.select_option("select[name=documents_received]", "true")
    processor.click("button:has-text('Complete')")
    expect(processor.locator("#task-panel h2")).to_have_text("Completed")
    visit(processor, live_app + "/notifications/", watch, seen)
    visit(processor, live_app + "/profile/", watch, seen)
    seen.extend(f"processor: {v}" for v in watch.violations(processor))

    # The dashboard draws its charts and follows the monitoring socket; the admin works.
    admin = login("admin")
    watch.attach(admin)
    visit(admin, live_app + "/dashboard/", watch, seen)
    expect(admin.locator("[data-live-status]")).to_have_text("live")
    admin.wait_for_function("() => document.querySelectorAll('canvas[data-chart]').length > 0 && "
                            "[...document.querySelectorAll('canvas[data-chart]')].every((c) => Chart.getChart(c))")
    heights = admin.evaluate("[...document.querySelectorAll('[data-height]')].map((e) => e.style.height)")
    assert heights and all(height.endswith("px") for height in heights)
    visit(admin, live_app + "/anomalies/", watch, seen)
    for path in ["/admin/", "/admin/processes/processinstance/", f"/admin/processes/processinstance/{process.pk}/change/",
                 "/admin/auth/user/", "/admin/auth/user/add/", "/admin/tasks/taskinstance/"]:
        visit(admin, live_app + path, watch, seen)
        assert admin.locator("#content").count() == 1, path
    seen.extend(f"admin: {v}" for v in watch.violations(admin))

    assert seen == [], "\n".join(seen)
    assert watch.errors == []


def test_the_policy_and_no_store_are_on_pages_and_api_answers_and_not_on_static_files(live_app):
    import urllib.request

    with urllib.request.urlopen(live_app + "/accounts/login/") as page:
        assert "no-store" in page.headers["Cache-Control"]
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    with urllib.request.urlopen(live_app + "/static/js/page.js") as static:
        assert "no-store" not in (static.headers["Cache-Control"] or "")
