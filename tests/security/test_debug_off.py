"""`make run` is the product: a real server started the way scripts/run.sh starts it, with
no DEBUG, SECRET_KEY or ALLOWED_HOSTS in its environment. Its answers never carry Django's
debug pages (URL patterns, settings, tracebacks): unknown URLs, oversized forms, a bad Host
and a server error get the error page or the contract's JSON body. It still just works: the
pages and their static files, on the address it binds, signed with a secret key of its own
that survives a restart. And every answer but a static file is `no-store`."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import servers
from tests.conftest import ROOT
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow]

# What a debug page shows and an answer must never carry.
LEAKS = ["Traceback", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "urlpatterns", "URLconf", "ALLOWED_HOSTS",
         "postgres://", "redis://", "gndp/settings.py", "site-packages", "DEBUG = True"]
PRODUCT_ENV_DROPPED = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE", "HOST"}
BOUND = "127.0.0.2"  # an address of its own on loopback, as `HOST=... make run` would bind


def product_env(var_dir) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if key not in PRODUCT_ENV_DROPPED}
    return servers.server_env(base, GNDP_VAR_DIR=str(var_dir), HOST=BOUND, CELERY_TASK_ALWAYS_EAGER="1")


def start_server(env, port: int, log_path):
    return servers.start(env, log_path, host=BOUND, port=port, args=("--log-level", "warning"))


stop = servers.stop


def fetch(url: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, _lower(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), exc.read().decode("utf-8", "replace")


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def post_large(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, str]:
    """POST a large body the way a patient client does: the headers first, and the body only
    if the server has not answered within two seconds (it answers at once when it refuses
    by Content-Length, and then closes: sending the body anyway would break the pipe)."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}",
            "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.settimeout(2)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        sock.sendall(body)
        data = b""
    sock.settimeout(20)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head_text, _, content = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    response_headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if response_headers.get("transfer-encoding") == "chunked":
        content = _unchunk(content)
    return int(lines[0].split()[1]), response_headers, content.decode("utf-8", "replace")


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            break
        out, data = out + rest[:length], rest[length + 2:]
    return out


def leaks(text: str) -> list[str]:
    return [word for word in LEAKS if word in text]


@pytest.mark.django_db(transaction=True)
def test_the_product_server_shows_no_debug_page_and_just_works(tmp_path):
    user = UserFactory(username="reader")
    token = Token.objects.create(user=user).key
    port = servers.free_port(BOUND)
    env = product_env(tmp_path / "var")
    server = start_server(env, port, tmp_path / "server.log")
    base = f"http://{BOUND}:{port}"
    try:
        unknown_page = fetch(base + "/no/such/page/")
        unknown_api = fetch(base + "/api/no/such/thing")
        big_form = post_large(base + "/accounts/login/", b"username=" + b"a" * (3 * 1024 * 1024),
                              {"Content-Type": "application/x-www-form-urlencoded"})
        big_json = post_large(base + "/api/processes/start", b'{"context": "' + b"a" * (3 * 1024 * 1024) + b'"}',
                              {"Content-Type": "application/json", "Authorization": f"Token {token}"})
        bad_host = fetch(base + "/accounts/login/", headers={"Host": "evil.example"})
        no_csrf = fetch(base + "/accounts/login/", data=b"username=a&password=b",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        stylesheet = fetch(base + "/static/css/app.css")
        admin_script = fetch(base + "/static/admin/js/core.js")
        api = fetch(base + "/api/tasks/inbox", headers={"Authorization": f"Token {token}"})
    finally:
        stop(server)

    assert unknown_page[0] == 404 and "Not found" in unknown_page[2]
    assert unknown_api[0] == 404
    assert json.loads(unknown_api[2]) == {"error": {"code": "not_found", "message": "not found", "details": {}}}
    assert big_form[0] == 413 and "Too large" in big_form[2]
    assert big_json[0] == 413 and '"code": "too_large"' in big_json[2]
    assert bad_host[0] == 400 and "Bad request" in bad_host[2]
    assert no_csrf[0] == 403 and "reload the page" in no_csrf[2]
    for status, headers, body in (unknown_page, unknown_api, big_form, big_json, bad_host, no_csrf):
        assert leaks(body) == [], (status, leaks(body))
        assert "no-store" in headers.get("cache-control", ""), (status, headers)
    # It still just works with DEBUG off: static files, the address it binds, the API.
    assert stylesheet[0] == 200 and ".grid" in stylesheet[2] and "no-store" not in stylesheet[1].get("cache-control", "")
    assert admin_script[0] == 200
    assert api[0] == 200 and api[1]["cache-control"] == "no-store"

    # A secret key of its own, not the public default, kept in the var folder, readable by
    # its owner only, and the same after a restart (sessions survive).
    key_file = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 50 and "insecure" not in key
    seen = [subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                            "print(settings.SECRET_KEY, settings.DEBUG, settings.ALLOWED_HOSTS)"],
                           cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "gndp.settings"}, capture_output=True,
                           text=True, timeout=60).stdout.split(" ", 2) for _ in range(2)]
    assert seen[0] == seen[1]
    assert seen[0][0] == key and seen[0][1] == "False" and BOUND in seen[0][2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_server_error_on_the_product_server_gives_the_generic_answers(tmp_path, small_version):
    """A database error whose text looks like SQL, on the API and on a page."""
    user = UserFactory(username="starter", roles=["role-clerk"])
    token = Token.objects.create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION test_fail_insert() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'SELECT secret FROM processes_processevent WHERE id = 42'; END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_fail_insert BEFORE INSERT ON processes_processevent
                FOR EACH ROW EXECUTE FUNCTION test_fail_insert();
        """)
    port = servers.free_port(BOUND)
    server = start_server(product_env(tmp_path / "var"), port, tmp_path / "server.log")
    try:
        api = fetch(f"http://{BOUND}:{port}/api/processes/start", data=b'{"journey_id": "journey-small"}',
                    headers={"Content-Type": "application/json", "Authorization": f"Token {token}"})
    finally:
        stop(server)
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_fail_insert ON processes_processevent; DROP FUNCTION test_fail_insert();")

    assert api[0] == 500
    assert json.loads(api[2]) == {"error": {"code": "server_error", "message": "internal error", "details": {}}}
    assert leaks(api[2]) == [] and "processes_processevent" not in api[2]


@pytest.mark.django_db
def test_every_answer_that_can_carry_decrypted_fields_is_no_store(small_version):
    """The API's process (its context decrypted for the reader), its task results, its
    history; the pages showing them; errors too."""
    from processes.services import start_process

    user = UserFactory(username="starter", roles=["role-clerk"])
    process = start_process(workflow_id="journey-small", user=user, context={"who": "ann"})
    api = APIClient()
    api.force_authenticate(user)
    from django.test import Client

    page = Client()
    page.force_login(user)
    answers = [api.get(f"/api/processes/{process.pk}"), api.get(f"/api/processes/{process.pk}/history"),
               api.get("/api/tasks/inbox"), api.get("/api/processes/999999"),
               api.post("/api/processes/start", {"journey_id": "journey-small"}, format="json"),
               page.get(f"/processes/{process.pk}/"), page.get("/inbox/"), page.get("/processes/999999/")]

    for response in answers:
        assert "no-store" in response["Cache-Control"], (response.status_code, response.request["PATH_INFO"])
