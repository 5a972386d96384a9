"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis):
no 5xx, every response matches the schema (status codes, content types, bodies). Then the
same operations with hostile bodies built from generated ones (nested 2,000 deep, long
strings, 3 MB and 20 MB): never a 5xx, every refusal the contract's error body."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlencode

import pytest
import schemathesis
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gndp.asgi import application
from processes.services import start_process
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12
DEPTH_AND_SIZE_EXAMPLES = 2  # each becomes a dozen hostile bodies


@pytest.mark.parametrize("superuser", [False, True], ids=["member", "admin"])
def test_the_api_survives_schema_driven_fuzzing(small_version, superuser):
    user = UserFactory(username="fuzzer", roles=["role-clerk", "role-checker"])
    user.is_superuser = user.is_staff = superuser
    user.save()
    start_process(workflow_id="journey-small", user=user)  # something real to find by id
    token = Token.objects.create(user=user).key
    schema = schemathesis.openapi.from_asgi("/api/schema/", application)
    failures = []
    statuses = Counter()

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {exc}")

    assert not failures, "\n\n".join(failures)
    # The fuzzing reached the views, not only the front door.
    assert statuses[200] > 20 and sum(statuses.values()) > 150, statuses


# --- depth and size ------------------------------------------------------------------------------

DEEP = 2000
MiB = 1024 * 1024


def _deep(depth: int = DEEP) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def _payloads(body) -> list[tuple[str, bytes]]:
    """Hostile bodies built from a generated one: nested 2,000 deep as a whole and in each
    field, each string field 20,000 characters long, and 3 MB and 20 MB bodies."""
    payloads = [("deep body", _deep().encode()), ("deep list", ("[" * DEEP + "]" * DEEP).encode()),
                ("3 MB", b'{"x": "' + b"a" * (3 * MiB) + b'"}'), ("20 MB", b'{"x": "' + b"a" * (20 * MiB) + b'"}')]
    if isinstance(body, dict):
        for key in body:
            text = json.dumps({**body, key: "\0DEEP\0"})
            payloads.append((f"deep {key}", text.replace('"\\u0000DEEP\\u0000"', _deep()).encode()))
            payloads.append((f"long {key}", json.dumps({**body, key: "x" * 20_000}).encode()))
            if isinstance(body[key], dict):
                payloads.append((f"long {key} value", json.dumps({**body, key: {"k": "x" * 20_000}}).encode()))
    return payloads


def _call(method: str, path: str, query: str, body: bytes, token: str) -> tuple[int, bytes]:
    """One request through the whole ASGI application (gndp.http's body limits included)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Token {token}".encode()),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async_to_sync(application)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("superuser", [False, True], ids=["member", "admin"])
def test_depth_and_size_cases_on_every_operation_are_never_a_500(small_version, superuser):
    user = UserFactory(username="fuzzer", roles=["role-clerk", "role-checker"])
    user.is_superuser = user.is_staff = superuser
    user.save()
    start_process(workflow_id="journey-small", user=user)
    token = Token.objects.create(user=user).key
    schema = schemathesis.openapi.from_asgi("/api/schema/", application)
    failures, statuses = [], Counter()

    for result in schema.get_all_operations():
        operation = result.ok()
        cases = []

        @settings(max_examples=DEPTH_AND_SIZE_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def collect(case):
            cases.append(case)

        collect()
        for case in cases:
            query = urlencode(case.query or {}, doseq=True)
            for name, payload in _payloads(case.body):
                status, body = _call(operation.method, case.formatted_path, query, payload, token)
                statuses[status] += 1
                if status >= 500:
                    failures.append(f"{operation.label} {name}: {status} {body[:300]!r}")
                elif status >= 400 and status != 405:
                    error = json.loads(body)["error"]
                    assert set(error) == {"code", "message", "details"}, (operation.label, name, body[:300])

    assert not failures, "\n".join(failures)
    # The refusals were the limits', not only the front door's.
    assert statuses[413] > 20 and statuses[400] > 20, statuses
