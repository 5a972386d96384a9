"""Request bodies are refused before they are read (gndp.http, gndp.body_limits), against a
real uvicorn server, over raw sockets: a declared Content-Length over the path's limit is
answered 413 before the client sent any of the body; a chunked body is answered 413 while
the client is still sending, and the rest is never read; a request without credentials may
not send more than the sign-in form needs. The server's memory does not grow with them."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from tests import servers
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MiB = 1024 * 1024


@pytest.fixture
def server(transactional_db, tmp_path):
    with servers.running(servers.server_env(CELERY_TASK_ALWAYS_EAGER="1"), tmp_path / "server.log",
                         args=("--log-level", "warning")) as server:
        yield server


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def declared(port: int, path: str, length: int, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> tuple[int, dict, bytes]:
    """Headers only, declaring `length` bytes of body: the answer must come without them."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {content_type}",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        return read_response(sock)
    finally:
        sock.close()


def chunked(port: int, path: str, total: int, headers: dict[str, str] | None = None,
            content_type: str = "application/json") -> tuple[tuple[int, dict, bytes], int, bool]:
    """Sends up to `total` bytes as a chunked body while reading the answer on another
    thread; returns the answer, how much was sent when it came, and whether the server
    stopped taking the body (the connection closed under the sender)."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {content_type}",
             "Transfer-Encoding: chunked", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer: list = []
    sent_when_answered: list[int] = []
    sent = 0
    reader = threading.Thread(target=lambda: (answer.append(read_response(sock, timeout=60)),
                                              sent_when_answered.append(sent)))
    reader.start()
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    cut_off = False
    after_answer = 0
    try:
        # Sending on after the answer too: a server that stopped reading closed the
        # connection, and a send fails within a socket buffer or two.
        while sent < total and after_answer < 32 * MiB:
            sock.sendall(chunk)
            sent += len(piece)
            if answer:
                after_answer += len(piece)
        if not answer:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        cut_off = True
    reader.join(60)
    sock.close()
    assert answer, "no answer"
    return answer[0], sent_when_answered[0], cut_off


def error_of(body: bytes) -> dict:
    return json.loads(body)["error"]


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_sent(server):
    user = UserFactory(username="uploader")
    token = Token.objects.create(user=user).key
    auth = {"Authorization": f"Token {token}"}

    upload = declared(server.port, "/api/processes/1/attachments", 60 * MiB, auth,
                      content_type="multipart/form-data; boundary=b")
    start = declared(server.port, "/api/processes/start", 3 * MiB, auth)
    anonymous = declared(server.port, "/api/processes/start", 500 * 1024)
    anonymous_huge = declared(server.port, "/api/processes/start", 256 * MiB)
    sign_in = declared(server.port, "/accounts/login/", 3 * MiB, content_type="application/x-www-form-urlencoded")
    anonymous_small = declared(server.port, "/accounts/login/", 100 * 1024,
                               content_type="application/x-www-form-urlencoded")

    for status, headers, body in (upload, start, anonymous, anonymous_huge):
        assert status == 413 and headers["connection"] == "close"
        assert error_of(body)["code"] == "too_large"
    assert error_of(upload[2])["details"] == {"body": f"at most {10 * MiB + 64 * 1024} bytes"}
    assert error_of(start[2])["details"] == {"body": f"at most {MiB} bytes"}
    assert error_of(anonymous[2])["details"] == {"body": "at most 16384 bytes"}
    assert "sign in first" in error_of(anonymous[2])["message"]
    # Pages answer with the error page, not JSON.
    for status, headers, body in (sign_in, anonymous_small):
        assert status == 413 and headers["content-type"].startswith("text/html") and b"Too large" in body


def test_a_chunked_body_is_cut_off_at_the_limit_and_the_server_does_not_grow(server):
    user = UserFactory(username="uploader")
    token = Token.objects.create(user=user).key
    before = rss_kib(server.pid)

    (status, _, body), sent, cut_off = chunked(server.port, "/accounts/login/", 256 * MiB,
                                               content_type="application/x-www-form-urlencoded")
    (auth_status, _, auth_body), auth_sent, auth_cut_off = chunked(
        server.port, "/api/tasks/1/attachments", 60 * MiB, {"Authorization": f"Token {token}"},
        content_type="multipart/form-data; boundary=b")

    assert status == 413 and b"Too large" in body
    assert auth_status == 413 and error_of(auth_body)["code"] == "too_large"
    # Answered while the client was still sending: far short of what it meant to send (the
    # rest of what was sent sat in socket buffers), and then the server stopped reading.
    assert sent < 16 * MiB and cut_off, sent
    assert 10 * MiB < auth_sent < 30 * MiB and auth_cut_off, auth_sent
    assert rss_kib(server.pid) - before < 20 * 1024


def test_bodies_within_the_limits_still_go_through(server):
    from django.test import Client

    user = UserFactory(username="uploader", is_superuser=True)
    token = Token.objects.create(user=user).key
    browser = Client()
    browser.force_login(user)
    session = browser.cookies["sessionid"].value
    from processes.services import start_process
    from tests.fixtures import SMALL_JOURNEY
    import yaml
    from processes.versions import publish_journey

    publish_journey(yaml.safe_load(SMALL_JOURNEY))
    process = start_process(workflow_id="journey-small", user=user)

    # A 2 MiB PDF, chunked, with a token: past the anonymous limit, within the upload limit.
    boundary = "gndpboundary"
    pdf = b"%PDF-1.4\n" + b"0" * (2 * MiB)
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n"
                 f"Content-Type: application/pdf\r\n\r\n").encode() + pdf + f"\r\n--{boundary}--\r\n".encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (f"POST /api/processes/{process.pk}/attachments HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Token {token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    sock.sendall(head)
    for offset in range(0, len(multipart), 65536):
        piece = multipart[offset:offset + 65536]
        sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    sock.sendall(b"0\r\n\r\n")
    status, _, body = read_response(sock)
    sock.close()
    assert status == 201, body[:500]

    # 100 KiB through the pages with a signed-in session's cookie: the simulate page's form.
    form = ("workflow_id=journey-small&context=" + "%7B%7D" + "&results=" + "%20" * (100 * 1024 // 3)).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/simulate/", data=form, method="POST",
                                     headers={"Cookie": f"sessionid={session}",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(request, timeout=10)
        answered = 200
    except urllib.error.HTTPError as exc:
        answered = exc.code
    assert answered == 403  # reached Django: refused for its missing CSRF token, not for its size

    # The same with a session key that maps to no session: refused for its size, unread.
    status, _, body = declared(server.port, "/simulate/", len(form), {"Cookie": "sessionid=made-up"},
                               content_type="application/x-www-form-urlencoded")
    assert status == 413 and b"sign in first" in body
