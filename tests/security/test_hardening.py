"""Production settings and what the browser and clients get: `check --deploy` clean with the
production environment, the security headers, and generic error bodies (S11: no stack
trace, no SQL, nothing committed halfway)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from processes.models import ProcessEvent, ProcessInstance
from tests.conftest import ROOT

HOST = "flow.example.com"
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": HOST,
    "GNDP_HTTPS": "1",
    "GNDP_FIELD_KEYS": Fernet.generate_key().decode(),
}
GENERIC_500 = {"error": {"code": "server_error", "message": "internal error", "details": {}}}

PRODUCTION_REQUESTS = f"""
import json
from django.test import Client
client = Client(HTTP_HOST="{HOST}")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
print(json.dumps({{
    "plain": [plain.status_code, plain.headers.get("Location")],
    "hsts": secure.headers.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
}}))
"""


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # As a deployment runs: none of the settings under test, nor the browser tests' switch
    # that lets sync database calls run under their event loop.
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "GNDP_FIELD_KEYS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
                   and not key.startswith("SECURE_")}
    environment.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_is_clean_with_the_production_environment():
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_names_what_a_development_environment_lacks():
    """The control: the same check fails when the production variables are missing."""
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env={"DEBUG": "1"})

    assert done.returncode == 1
    # No SECRET_KEY: one generated into var/ (not Django's insecure default, so no W009), which
    # one machine's processes share but a deployment must set itself (gndp.W002).
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016", "security.W018",
                    "gndp.W001", "gndp.W002"]:
        assert warning in done.stderr
    assert "security.W009" not in done.stderr


def test_production_redirects_to_https_sets_hsts_and_secure_cookies():
    done = _manage("shell", "--no-imports", "-c", PRODUCTION_REQUESTS, env=PRODUCTION)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"plain": [301, f"https://{HOST}/accounts/login/"],
                    "hsts": "max-age=31536000; includeSubDomains; preload", "csrf_cookie_secure": True}


@pytest.mark.django_db
def test_pages_and_api_send_the_security_headers(clerk):
    page = Client().get("/accounts/login/")
    client = Client()
    signed_in = client.post("/accounts/login/", {"username": clerk.username, "password": "pw"})
    api = client.get("/api/tasks/inbox")

    for response in (page, api):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert signed_in.status_code == 302 and signed_in.cookies["sessionid"]["httponly"] is True
    assert signed_in.cookies["sessionid"]["samesite"] == "Lax" and page.cookies["csrftoken"]["samesite"] == "Lax"


@pytest.fixture
def database_failure(db):
    """Every insert into the event log fails with a database error whose text looks like SQL,
    the way a broken constraint, a full disk or a bug in a query would. Created inside the
    test's transaction, so it is gone afterwards."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION test_fail_insert() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'SELECT secret FROM processes_processevent WHERE id = 42'; END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_fail_insert BEFORE INSERT ON processes_processevent
                FOR EACH ROW EXECUTE FUNCTION test_fail_insert();
        """)


def _leaks(text: str) -> list[str]:
    return [word for word in ("SELECT", "secret", "processes_processevent", "Traceback", "psycopg", "File \"")
            if word in text]


@pytest.mark.postgres
def test_a_database_error_gives_the_generic_body_and_commits_nothing(database_failure, small_version, clerk):
    api = APIClient()
    api.force_authenticate(clerk)
    processes_before = ProcessInstance.objects.count()

    response = api.post("/api/processes/start", {"journey_id": "journey-small", "context": {"a": 1}}, format="json",
                        HTTP_IDEMPOTENCY_KEY="db-error")

    assert response.status_code == 500
    assert response.json() == GENERIC_500
    assert _leaks(response.content.decode()) == []
    assert ProcessInstance.objects.count() == processes_before  # fail closed: no process without its events
    assert ProcessEvent.objects.count() == 0


@pytest.mark.postgres
def test_a_database_error_on_a_page_gives_a_generic_page(database_failure, small_version, clerk):
    client = Client()
    client.force_login(clerk)
    client.raise_request_exception = False
    processes_before = ProcessInstance.objects.count()

    response = client.post("/processes/start/", {"workflow_id": "journey-small", "context": "{}"})

    assert response.status_code == 500
    assert _leaks(response.content.decode()) == []
    assert ProcessInstance.objects.count() == processes_before
