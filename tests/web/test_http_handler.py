"""gndp.http.HTTPHandler, called as an ASGI server calls it: rendered and streamed responses,
a refused request, the request signals, and the database connections given back by the
threads that used them."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from rest_framework.authtoken.models import Token

from gndp.http import HTTPHandler
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def call(handler: HTTPHandler, path: str, *, method: str = "GET", headers=(), body: bytes = b"") -> dict:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), *[(k.encode(), v.encode()) for k, v in headers]],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(handler(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {"status": start["status"], "headers": {k.lower(): v for k, v in start["headers"]},
            "body": b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")}


def connections_of_its_threads(handler: HTTPHandler) -> list[bool]:
    """Whether each of the handler's threads holds an open database connection."""
    size = handler._executor._max_workers
    barrier = threading.Barrier(size)

    def holds() -> bool:
        barrier.wait(5)  # one call on each thread
        return connection.connection is not None

    return [future.result(10) for future in [handler._executor.submit(holds) for _ in range(size)]]


def test_an_api_request_is_answered_and_its_connection_given_back():
    user = UserFactory(username="hana")
    token = Token.objects.create(user=user)
    handler = HTTPHandler()
    seen = []

    def note(sender, **kwargs):
        seen.append(sender)

    request_started.connect(note, dispatch_uid="t-started")
    request_finished.connect(note, dispatch_uid="t-finished")
    try:
        answered = call(handler, "/api/tasks/inbox", headers=[("authorization", f"Token {token.key}")])
        refused = call(handler, "/api/tasks/inbox")
    finally:
        request_started.disconnect(dispatch_uid="t-started")
        request_finished.disconnect(dispatch_uid="t-finished")

    assert answered["status"] == 200 and answered["body"] == b"[]"
    assert answered["headers"][b"x-total-count"] == b"0"
    assert refused["status"] == 401 and b'"error"' in refused["body"]
    assert seen == [HTTPHandler, HTTPHandler, HTTPHandler, HTTPHandler]  # started, finished, twice
    assert connections_of_its_threads(handler) == [False] * handler._executor._max_workers


# Django warns that it reads a file response's synchronous iterator on a thread to send it
# asynchronously: what every ASGI server does with a file it is given.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_a_streamed_file_arrives_whole():
    from pathlib import Path

    from django.conf import settings

    expected = (Path(settings.BASE_DIR) / "static" / "vendor" / "htmx.min.js").read_bytes()
    handler = HTTPHandler()

    served = call(handler, "/static/vendor/htmx.min.js")

    assert served["status"] == 200 and served["body"] == expected
    assert connections_of_its_threads(handler) == [False] * handler._executor._max_workers


def test_a_bad_host_is_refused_without_an_error():
    handler = HTTPHandler()
    scope_host = call(handler, "/api/tasks/inbox", headers=[("host", "evil.example")])

    assert scope_host["status"] == 400
