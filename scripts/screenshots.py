"""Screenshots of the main pages, against the demo data, in headless Chromium.

    make screenshots        # writes docs/screenshots/*.png

Runs on a throw-away SQLite database (the embedded defaults), so it needs nothing running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict) -> None:
    """Migrate, seed the demo, and move a few loans along so the pages have something to show."""
    code = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0); call_command("seed_demo", verbosity=0)
from django.contrib.auth import get_user_model
from processes.services import start_process
from steps.changes import change_tasks
from tasks.models import TaskInstance
from tasks.services import complete_task, start_task
from tests.driver import fill_form
User = get_user_model()
olivia = User.objects.get(username="olivia")
REALISTIC = {"decision": "approve", "ltv_percent": 93.5, "interest_rate": 6.375, "loan_term_months": 360,
             "loan_amount": 289500, "property_value": 310000, "annual_income": 96000, "monthly_debts": 850,
             "upfront_mip": 5066, "appraised_value": 312000, "borrower_name": "Dana Whitfield", "ssn": "123-45-6789",
             "property_address": "18 Alder Lane, Springfield", "employer_name": "Northwind Logistics",
             "verified_annual_income": 96000, "down_payment": 20500, "conditions_count": 3}
for n, steps in enumerate([12, 7, 3, 0, 16]):
    process = start_process(workflow_id="journey-purchase-fha", user=olivia, context={"loan_number": f"FHA-{1041 + n}"})
    for _ in range(steps):
        task = TaskInstance.objects.filter(process=process, status__in=["pending", "in_progress"], kind="human").first()
        if task is None:
            break
        user = task.assigned_to or User.objects.filter(groups__name=task.role).order_by("pk").first()
        if task.assigned_to is None:
            start_task(task.pk, user=user)
        complete_task(task.pk, user=user, result=fill_form(process, task.atom_id, dict(REALISTIC, credit_score=700 - 60 * (n % 2))))
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def spread_over_days(env: dict) -> None:
    """Before the dashboard is shot: the demo loans were worked through in a second, so give
    their steps the days a real team takes (each step some share of its SLA target, parallel
    steps side by side, every step after the ones it waited for), and suspend the loan that
    has not started, so that the timeline, the SLA chart and the status colours show a
    working week. Touches tasks and processes only, never the event log."""
    code = """
import django; django.setup()
import random
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from processes.models import ProcessInstance
from processes.services import suspend_process
from tasks.models import TaskInstance
random.seed(11)
now = timezone.now()
for index, process in enumerate(ProcessInstance.objects.order_by("pk")):
    tasks = list(TaskInstance.objects.filter(process=process).order_by("created_at", "pk"))
    done, moved, start = [], [], timedelta(0)
    for task in tasks:
        created = max([new for old, new in done if old <= task.created_at], default=start)
        target = task.due_date - task.created_at if task.due_date else None
        escalation = task.escalate_at - task.created_at if task.escalate_at else None
        if task.kind == "system":
            took = timedelta(seconds=random.uniform(2, 30))
        elif target:
            took = target * random.uniform(0.2, 1.35)
        else:
            took = timedelta(hours=random.uniform(0.5, 6))
        moved.append((task, created, took, target, escalation))
        if task.completed_at:
            done.append((task.completed_at, created + took))
    last = max([new for _, new in done], default=start)
    # The latest completion some hours ago; the third loan has waited past its step's target.
    shift = now - timedelta(hours=(2, 7, 80, 1, 26)[index % 5]) - last
    ProcessInstance.objects.filter(pk=process.pk).update(started_at=start + shift - timedelta(minutes=20))
    for task, created, took, target, escalation in moved:
        fields = {"created_at": created + shift, "due_date": created + shift + target if target else None,
                  "escalate_at": created + shift + escalation if escalation else None}
        if task.completed_at:
            fields.update(started_at=created + shift + took * random.uniform(0.05, 0.4), completed_at=created + shift + took)
        elif task.started_at:
            fields.update(started_at=created + shift + timedelta(minutes=10))
        change_tasks(TaskInstance.objects.filter(pk=task.pk), **fields)
idle = ProcessInstance.objects.filter(status="running", tasks__status="completed").values("pk")
waiting = ProcessInstance.objects.filter(status="running").exclude(pk__in=idle).order_by("pk").first()
if waiting:
    suspend_process(waiting.pk, user=get_user_model().objects.get(username="admin"))
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="gndp-shots-")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="gndp.settings", GNDP_VAR_DIR=workdir, CELERY_TASK_ALWAYS_EAGER="1",
               DEBUG="1", PYTHONPATH=str(ROOT))
    for key in ("DATABASE_URL", "REDIS_URL", "NEO4J_URI"):
        env.pop(key, None)
    prepare(env)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            shoot(browser, base, env)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


def shoot(browser, base: str, env: dict) -> None:
    def page_as(username: str):
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "demo1234")
        page.click("button[type=submit]")
        page.wait_for_url(base + "/inbox/")
        return page

    priya = page_as("priya")
    priya.wait_for_timeout(500)
    priya.screenshot(path=OUT / "inbox.png", full_page=True)
    priya.locator("#inbox-live tbody a").first.click()
    priya.wait_for_load_state("networkidle")
    priya.click("button:has-text('Complete')")  # shows the inline errors of the generated form
    priya.wait_for_timeout(400)
    priya.screenshot(path=OUT / "task.png", full_page=True)
    olivia = page_as("olivia")
    olivia.goto(base + "/processes/1/")
    olivia.wait_for_timeout(800)
    olivia.screenshot(path=OUT / "process.png", full_page=True)
    olivia.goto(base + "/simulate/")
    olivia.fill("#results", '{"atom-lo-record-credit-results": {"credit_score": 590, "monthly_debts": 900}, '
                            '"atom-uw-manual-credit-review": {"decision": "approve"}}')
    olivia.select_option("#workflow", "journey-purchase-fha")
    olivia.check("#fill")
    olivia.click("button:has-text('Simulate')")
    olivia.wait_for_timeout(800)
    olivia.screenshot(path=OUT / "simulation.png", full_page=True)
    spread_over_days(env)
    manager = page_as("manager")
    if manager.goto(base + "/dashboard/?process=1").status == 200:
        manager.wait_for_timeout(1200)
        manager.screenshot(path=OUT / "dashboard.png", full_page=True)


if __name__ == "__main__":
    main()
