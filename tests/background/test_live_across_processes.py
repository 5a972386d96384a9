"""Live updates from the worker on the embedded default. The in-memory channel layer lives in
one process, so a task that a system step created in the worker reached an inbox only at its
next reload. Now the server follows what other processes commit (processes.tail).

Each test runs a real uvicorn server (gndp.asgi) and a real Celery worker, with no REDIS_URL
(the in-memory layer and the folder queue), on a fresh SQLite file (the embedded default)
and on PostgreSQL, set up through the management commands as a user of `make run` would.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
from django.db import connection

from tests.background.conftest import wait_until
from tests.background.embedded import EmbeddedApp

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def received(socket, seconds: float) -> list[dict]:
    """Every frame the socket gets within `seconds`."""
    frames, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(json.loads(socket.recv(timeout=left)))
        except TimeoutError:
            break
    return frames


def receive_until(socket, predicate, timeout: float, seen: list) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"not received within {timeout} s; got {[f.get('type') for f in seen]}")
        try:
            frame = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            continue
        seen.append(frame)
        if predicate(frame):
            return frame


@pytest.fixture(params=["sqlite", "postgres"])
def embedded_app(request, transactional_db, tmp_path):
    """Prepared, not started: `app.start(servers=N)` in the test."""
    if request.param == "postgres" and connection.vendor != "postgresql":
        if os.environ.get("GNDP_REQUIRE_SERVICES") == "1":
            pytest.fail("the PostgreSQL case needs DATABASE_URL")
        pytest.skip("the PostgreSQL case needs DATABASE_URL")
    app = EmbeddedApp(tmp_path, request.param)
    app.prepare()
    try:
        yield app
    finally:
        app.stop()


def branches_of(app) -> dict:
    """Start a process and complete its first step: the worker's system steps then create
    branch A (assigned to clara) and branch B (queued for the checkers). Returns the process."""
    process = app.api("clara", "POST", "/api/processes/start", {"journey_id": "journey-small"})
    apply = next(task for task in app.api("clara", "GET", "/api/tasks/inbox") if task["atom_id"] == "atom-apply")
    app.api("clara", "POST", f"/api/tasks/{apply['id']}/complete", {"result": {"amount": 1000, "score": 700}})
    return process


def once_each(frames: list[dict]) -> None:
    events = Counter(f["id"] for f in frames if "id" in f and f.get("type") != "notification.created")
    assert [event_id for event_id, n in events.items() if n > 1] == []
    bells = Counter(n["id"] for f in frames if f.get("type") == "notification.created" for n in f["notifications"])
    assert [notification_id for notification_id, n in bells.items() if n > 1] == []


def test_a_task_a_system_step_creates_in_the_worker_reaches_the_open_inboxes_live_and_once(embedded_app):
    app = embedded_app
    app.start()
    # given both people's inboxes open
    with app.inbox_socket("clara") as clara, app.inbox_socket("chet") as chet:
        # when a process is started and the clerk completes its first step: the server
        # commits that, and the worker runs the two system steps that follow (atom-score,
        # atom-open); the last creates the branches
        process = branches_of(app)
        # then, without a reload, the clerk hears of branch A (assigned to her), its bell
        # rings, and the checker hears of branch B (queued in his role)
        clara_frames: list[dict] = []
        created = receive_until(clara, lambda f: f.get("type") == "task.created" and f.get("atom_id") == "atom-a",
                                20, clara_frames)
        bell = receive_until(clara, lambda f: f.get("type") == "notification.created"
                             and any(n["task_id"] == created["task_id"] for n in f["notifications"]), 20, clara_frames)
        chet_frames: list[dict] = []
        queued = receive_until(chet, lambda f: f.get("type") == "task.created" and f.get("atom_id") == "atom-b",
                               20, chet_frames)
        # and when the checker mentions her in a comment on his branch (made and notified by
        # the server itself, then also read by its tail)
        app.api("chet", "POST", f"/api/tasks/{queued['task_id']}/comments", {"body": "@clara all set here"})
        receive_until(clara, lambda f: f.get("type") == "notification.created"
                      and f["notifications"][0]["kind"] == "mentioned", 20, clara_frames)
        clara_frames += received(clara, 2.0)
        chet_frames += received(chet, 0.5)

    assert created["process_id"] == process["id"] and created["payload"]["assigned_to_id"]
    assert queued["payload"]["queued"] is True and queued["payload"]["role"] == "role-checker"
    assert bell["unread_count"] >= 1 and "Branch A" in bell["notifications"][0]["title"]
    # the branches were made in the worker: by the system step, which nobody performed
    history = app.api("clara", "GET", f"/api/processes/{process['id']}/history")
    events = history["results"] if isinstance(history, dict) else history
    made_by = {event["atom_id"]: event for event in events if event["type"] == "task.completed"}
    assert made_by["atom-open"]["user_id"] is None and made_by["atom-apply"]["user_id"] == "clara"
    # and every event and notification reached each inbox once: the server's own commits
    # (the completion, the comment's bell) from the server, the worker's from the tail
    once_each(clara_frames)
    once_each(chet_frames)
    assert any(f.get("type") == "task.completed" and f.get("atom_id") == "atom-apply" for f in clara_frames)


def test_what_one_server_process_commits_reaches_the_sockets_of_another(embedded_app):
    # given two server processes on the embedded default (as `uvicorn --workers 2`), and
    # clara watching her branch's discussion and her inbox on the first
    app = embedded_app
    app.start(servers=2)
    process = branches_of(app)

    def task_of(user: str, atom_id: str):
        return next((task for task in app.api(user, "GET", "/api/tasks/inbox") if task["atom_id"] == atom_id), None)

    branch_a = wait_until(lambda: task_of("clara", "atom-a"), 20, "branch A")
    branch_b = wait_until(lambda: task_of("chet", "atom-b"), 20, "branch B")
    with app.inbox_socket("clara") as inbox, app.inbox_socket("clara", f"/ws/tasks/{branch_a['id']}/") as discussion:
        # when, through the second server, the checker mentions her on his branch and she
        # comments on hers
        app.api("chet", "POST", f"/api/tasks/{branch_b['id']}/comments", {"body": "@clara see branch B"},
                url=app.urls[1])
        app.api("clara", "POST", f"/api/tasks/{branch_a['id']}/comments", {"body": "noted"}, url=app.urls[1])
        # then the first server's sockets hear of both, once: the bell, and the comment on her task
        inbox_frames: list[dict] = []
        bell = receive_until(inbox, lambda f: f.get("type") == "notification.created", 20, inbox_frames)
        discussion_frames: list[dict] = []
        comment = receive_until(discussion, lambda f: f.get("type") == "comment.added", 20, discussion_frames)
        # and a comment through the first server itself reaches it once too (sent at its
        # commit; the tail reads it as well)
        app.api("clara", "POST", f"/api/tasks/{branch_a['id']}/comments", {"body": "and here"})
        receive_until(discussion, lambda f: f.get("type") == "comment.added" and f["id"] != comment["id"], 20,
                      discussion_frames)
        inbox_frames += received(inbox, 1.5)
        discussion_frames += received(discussion, 0.5)
    assert bell["notifications"][0]["kind"] == "mentioned" and bell["notifications"][0]["process_id"] == process["id"]
    assert comment["task_id"] == branch_a["id"] and comment["user_id"] == "clara"
    once_each(inbox_frames)
    once_each(discussion_frames)
