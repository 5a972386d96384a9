"""Bad input gets a clear 4xx with the contract's error body, never a 500, and changes nothing.

JSON nested 2,000 deep, bodies of 3 MB and 20 MB, on every JSON entry point: the REST API
(start, bulk start, complete, simulation, journey import), the pages that take JSON text
(start, simulate), the management commands' JSON options and files, journey files (JSON and
YAML, aliases included), the graph store's JSON properties and WebSocket frames. And strings
past GNDP_MAX_STRING_LENGTH in task results and start contexts, on the API and the pages.
"""

from __future__ import annotations

import json

import pytest
import yaml
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from gndp.asgi import application
from processes.graph.mapping import Node, Rel, from_graph
from processes.models import ProcessEvent, ProcessInstance, WorkflowVersion
from processes.services import start_process
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOTES_JOURNEY = """
format: gndp-journey/1
journey: {id: journey-notes, name: Notes}
roles: [{id: role-clerk, name: Clerk}]
atoms:
  - id: atom-note
    name: Take a note
    performed_by: role-clerk
    form:
      - {name: note, type: string}
      - {name: approved, type: boolean}
  - {id: atom-free, name: Free-form step, performed_by: role-clerk}
edges:
  - {type: ENABLES, from: atom-note, to: atom-free}
"""
DEEP = 2000
MB = 1024 * 1024


def nested(depth: int) -> dict:
    """{"a": {"a": ... {} ...}} with `depth` objects: built without recursion."""
    root: dict = {}
    node = root
    for _ in range(depth - 1):
        node["a"] = {}
        node = node["a"]
    return root


def deep_text(depth: int = DEEP) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def body_of(size: int) -> bytes:
    """A JSON object of about `size` bytes: one long string."""
    return json.dumps({"journey_id": "journey-notes", "context": {"pad": "x" * size}}).encode()


@pytest.fixture
def notes(db):
    return publish_journey(yaml.safe_load(NOTES_JOURNEY)).version


@pytest.fixture
def clerk(db):
    return UserFactory(username="clara", roles=["role-clerk"])


@pytest.fixture
def api(clerk):
    client = APIClient()
    client.force_authenticate(clerk)
    return client


@pytest.fixture
def admin_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def open_task(process, atom_id: str) -> TaskInstance:
    return TaskInstance.objects.get(process=process, atom_id=atom_id, status__in=["pending", "in_progress"])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


# --- JSON depth and size on the API ---------------------------------------------------------------

def test_deep_json_is_a_400_on_every_api_entry_point_and_changes_nothing(notes, clerk, api, admin_api):
    process = start_process(workflow_id="journey-notes", user=clerk)
    task = open_task(process, "atom-note")
    deep = deep_text()
    calls = [
        (api, "/api/processes/start", '{"journey_id": "journey-notes", "context": ' + deep + "}", "context"),
        (api, "/api/processes/start-bulk", '{"journey_id": "journey-notes", "contexts": [' + deep + "]}", "contexts"),
        (api, f"/api/tasks/{task.pk}/complete", '{"result": ' + deep + "}", "result"),
        (api, "/api/simulation/test-journey", '{"journey_id": "journey-notes", "results": ' + deep + "}", "results"),
        (api, "/api/simulation/coverage", '{"journey_id": "journey-notes", "cases": [{"context": ' + deep + "}]}",
         "cases"),
        (admin_api, "/api/journeys/import", '{"format": "gndp-journey/1", "journey": ' + deep + "}", "journey"),
        (api, f"/api/tasks/{task.pk}/comments", '{"body": ' + deep + "}", "body"),
    ]
    events = ProcessEvent.objects.count()
    for client, path, body, field in calls:
        error = assert_error(client.post(path, body, content_type="application/json"), 400, "too_deep")
        assert field in error["details"], (path, error)  # the field is named
    task.refresh_from_db()
    assert task.status == "pending" and ProcessInstance.objects.count() == 1
    assert ProcessEvent.objects.count() == events and WorkflowVersion.objects.count() == 1


@pytest.mark.parametrize("size", [3 * MB, 20 * MB], ids=["3MB", "20MB"])
def test_large_bodies_are_a_413_on_every_api_entry_point_and_change_nothing(notes, clerk, api, admin_api, size):
    process = start_process(workflow_id="journey-notes", user=clerk)
    task = open_task(process, "atom-note")
    body = body_of(size)
    calls = [(api, "/api/processes/start"), (api, f"/api/tasks/{task.pk}/complete"),
             (api, "/api/simulation/test-journey"), (admin_api, "/api/journeys/import"),
             (api, f"/api/tasks/{task.pk}/comments")]
    if size > 8 * MB:
        calls.append((api, "/api/processes/start-bulk"))  # 8 MiB: a thousand contexts
    for client, path in calls:
        error = assert_error(client.post(path, body, content_type="application/json"), 413, "too_large")
        assert "body" in error["details"], path
    task.refresh_from_db()
    assert task.status == "pending" and ProcessInstance.objects.count() == 1


def test_a_journey_may_nest_deeper_than_a_context_but_not_without_bound(admin_api, settings):
    """Journey import has its own limits: a condition 40 groups deep (80 levels of JSON) is
    read and refused by the rule validation naming the edge; past GNDP_JOURNEY_MAX_DEPTH,
    by the parser."""
    journey = yaml.safe_load(NOTES_JOURNEY)
    condition: dict = {"field": "approved", "operator": "eq", "value": True}
    for _ in range(40):
        condition = {"all": [condition]}
    journey["edges"][0]["condition"] = condition

    refused = admin_api.post("/api/journeys/import", journey, format="json")

    assert refused.status_code == 400
    assert any(problem.startswith("edges[0].condition") for problem in refused.json()["error"]["details"]["problems"])
    settings.GNDP_JOURNEY_MAX_DEPTH = 64
    assert_error(admin_api.post("/api/journeys/import", journey, format="json"), 400, "too_deep")
    assert not WorkflowVersion.objects.exists()


# --- the pages -----------------------------------------------------------------------------------

def test_the_start_and_simulate_pages_refuse_deep_and_large_json(notes, clerk):
    client = Client()
    client.force_login(clerk)

    deep = client.post("/processes/start/", {"workflow_id": "journey-notes", "context": deep_text()})
    large = client.post("/processes/start/", {"workflow_id": "journey-notes", "context": body_of(MB + 10).decode()})
    simulated = client.post("/simulate/", {"workflow_id": "journey-notes", "context": deep_text(),
                                           "results": body_of(MB + 10).decode()})

    assert deep.status_code == 400 and "nested deeper than 32 levels" in deep.content.decode()
    assert large.status_code == 413 and "larger than 1.0" in large.content.decode()
    assert len(large.content) < 100_000  # the refused text is not echoed back
    assert simulated.status_code == 413
    assert "nested deeper" in simulated.content.decode() and "larger than" in simulated.content.decode()
    assert not ProcessInstance.objects.exists()


# --- management commands, journey files, the graph store ----------------------------------------

def run_command(*args) -> tuple[int, str]:
    from io import StringIO

    err = StringIO()
    try:
        call_command(*args, stderr=err, stdout=StringIO())
    except SystemExit as exit:
        return exit.code, err.getvalue()
    return 0, err.getvalue()


def test_commands_refuse_deep_and_large_json_options_with_one_line(notes, tmp_path):
    big = tmp_path / "contexts.json"
    big.write_text("[" + ",".join(['{"pad": "' + "x" * 1000 + '"}'] * 9000) + "]")  # about 9 MB

    outcomes = [
        run_command("simulate", "journey-notes", "--context", deep_text()),
        run_command("simulate", "journey-notes", "--results", body_of(MB + 10).decode()),
        run_command("start_processes", "journey-notes", "--operator", "--count", "1", "--context", deep_text()),
        run_command("start_processes", "journey-notes", "--operator", "--contexts", str(big)),
    ]

    for code, err in outcomes:
        assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "nested deeper than 32 levels" in outcomes[0][1]
    assert "larger than" in outcomes[1][1] and "larger than" in outcomes[3][1]
    assert not ProcessInstance.objects.exists()


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


@pytest.mark.parametrize("text, name, problem", [
    ("format: gndp-journey/1\njourney: " + "[" * DEEP + "]" * DEEP, "deep.yaml", "nested deeper than 128 levels"),
    ('{"format": "gndp-journey/1", "journey": ' + deep_text() + "}", "deep.json", "nested deeper than 128 levels"),
    (BILLION_LAUGHS, "laughs.yaml", "values once its aliases are expanded"),
    ("journey:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 400)), "indented.yaml", "nested deeper"),
], ids=["yaml-flow", "json", "yaml-aliases", "yaml-indented"])
def test_load_journey_refuses_deep_and_exploding_files_with_one_line(tmp_path, text, name, problem):
    path = tmp_path / name
    path.write_text(text)

    code, err = run_command("load_journey", str(path))

    assert code == 1 and len(err.strip().splitlines()) == 1 and problem in err, err
    assert not WorkflowVersion.objects.exists()


def test_load_journey_refuses_a_file_over_the_size_limit_before_reading_it(tmp_path, settings):
    settings.GNDP_JOURNEY_MAX_BYTES = 1000
    path = tmp_path / "big.yaml"
    path.write_text(NOTES_JOURNEY + "#" * 2000 + "\n")

    code, err = run_command("load_journey", str(path))

    assert code == 1 and err.strip() == f"{path}: larger than 1000 bytes"


def test_a_stored_graph_with_deep_json_is_a_problem_of_that_journey_not_a_crash():
    nodes = [Node("Journey", "journey-x", 0, {"name": "X"}),
             Node("Atom", "atom-1", 1, {"name": "One", "form_json": deep_text()})]

    with pytest.raises(ValueError, match="form_json: nested deeper than 128 levels"):
        from_graph(nodes, [Rel("CONTAINS", "journey-x", "atom-1", 0)])


# --- WebSocket frames ----------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_websocket_frames_are_never_parsed_and_large_ones_close_the_socket():
    from asgiref.sync import async_to_sync

    user = UserFactory(username="wanda")
    browser = Client()
    browser.force_login(user)
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())]

    async def talk():
        socket = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        await socket.send_to(text_data="[" * DEEP + "]" * DEEP)  # 4,000 bytes, 2,000 deep
        await socket.send_to(text_data='{"type": "ping"}')
        still_open = await socket.receive_nothing(timeout=0.5)  # nothing sent back, nothing raised
        await socket.send_to(text_data="x" * 5000)
        closed = await socket.receive_output(timeout=5)
        await socket.wait()
        return still_open, closed

    still_open, closed = async_to_sync(talk)()

    assert still_open is True
    assert closed == {"type": "websocket.close", "code": 1009}


# --- strings -------------------------------------------------------------------------------------

LONG = "x" * 2_000_000


def test_a_two_million_character_note_is_a_400_naming_the_field_and_changes_nothing(notes, clerk, api):
    process = start_process(workflow_id="journey-notes", user=clerk)
    task = open_task(process, "atom-note")

    error = assert_error(api.post(f"/api/tasks/{task.pk}/complete", {"result": {"note": LONG[:20_000]}},
                                  format="json"), 400, "invalid")

    assert error["details"] == {"note": "must be at most 10000 characters"}
    task.refresh_from_db()
    assert task.status == "pending" and task.result in ({}, None)
    # Exactly the limit is fine.
    done = api.post(f"/api/tasks/{task.pk}/complete", {"result": {"note": "y" * 10_000}}, format="json")
    assert done.status_code == 200


def test_the_task_page_refuses_a_long_note_on_the_field(notes, clerk):
    process = start_process(workflow_id="journey-notes", user=clerk)
    task = open_task(process, "atom-note")
    client = Client()
    client.force_login(clerk)

    response = client.post(f"/tasks/{task.pk}/", {"note": LONG, "approved": "true"})

    assert response.status_code == 400
    assert "at most 10000 characters" in response.content.decode()
    assert len(response.content) < 200_000  # the page does not carry the note back
    task.refresh_from_db()
    assert task.status == "pending"


def test_strings_nested_in_a_form_less_result_and_in_contexts_are_bounded(notes, clerk, api, settings):
    settings.GNDP_MAX_STRING_LENGTH = 100
    process = start_process(workflow_id="journey-notes", user=clerk)
    api.post(f"/api/tasks/{open_task(process, 'atom-note').pk}/complete", {"result": {}}, format="json")
    free = open_task(process, "atom-free")

    nested_result = api.post(f"/api/tasks/{free.pk}/complete",
                             {"result": {"items": [{"text": "ok"}, {"text": "z" * 101}]}}, format="json")
    long_key = api.post(f"/api/tasks/{free.pk}/complete", {"result": {"k" * 101: 1}}, format="json")
    started = api.post("/api/processes/start", {"journey_id": "journey-notes",
                                                "context": {"borrower": {"name": "n" * 101}}}, format="json")
    bulk = api.post("/api/processes/start-bulk", {"journey_id": "journey-notes",
                                                  "contexts": [{}, {"memo": "m" * 101}]}, format="json")
    simulated = api.post("/api/simulation/test-journey", {"journey_id": "journey-notes",
                                                          "context": {"memo": "m" * 101}}, format="json")

    assert assert_error(nested_result, 400, "invalid")["details"] == {"items[1].text": "must be at most 100 characters"}
    assert assert_error(long_key, 400, "invalid")["details"] == {"key": "has a key longer than 100 characters"}
    assert assert_error(started, 400, "invalid")["details"] == {
        "context": {"borrower.name": "must be at most 100 characters"}}
    assert assert_error(bulk, 400, "invalid")["details"] == {"contexts[1]": {"memo": "must be at most 100 characters"}}
    assert simulated.status_code == 200 and simulated.json()["success"] is False
    assert simulated.json()["errors"] == ["context.memo: must be at most 100 characters"]
    assert ProcessInstance.objects.count() == 1
    free.refresh_from_db()
    assert free.status == "pending"


def test_the_admins_json_field_refuses_deep_json_as_a_form_error(db):
    """The one JSON field an administrator edits by hand: a notification preference's channels."""
    from notifications.models import NotificationPreference

    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    preference = NotificationPreference.objects.create(user=admin)
    client = Client()
    client.force_login(admin)

    response = client.post(f"/admin/notifications/notificationpreference/{preference.pk}/change/",
                           {"user": admin.pk, "channels": deep_text(), "timezone": "UTC"})

    assert response.status_code == 200  # the form again, with the error on the field
    assert "nested deeper than 32 levels" in response.content.decode()
    preference.refresh_from_db()
    assert preference.channels == {}
