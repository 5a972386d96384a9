"""S9: fields a journey marks sensitive are ciphertext at rest (process context, task results,
stored idempotent responses, a dump of the whole database), absent from the events and the
Celery messages, plaintext for the engine, the handlers and the users who may see the
process; the key rotation re-encrypts everything and is idempotent."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gndp.celery import app as celery_app
from processes import handlers, sensitive
from processes.models import IdempotencyRecord, ProcessInstance
from processes.versions import publish_journey
from tasks.models import TaskInstance
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SSN = "078-05-1120"
TAX_ID = "999-88-7777"
NAME = "Ann Example"

PII_JOURNEY = """
format: gndp-journey/1
journey: {id: journey-pii, name: PII, sensitive: [borrower.ssn]}
roles:
  - {id: role-clerk, name: Clerk}
atoms:
  - id: atom-intake
    name: Intake
    performed_by: role-clerk
    form:
      - {name: tax_id, type: string, required: true, sensitive: true}
      - {name: amount, type: number, required: true}
  - {id: atom-check, name: Check, kind: system, handler: pii_check}
  - {id: atom-fast, name: Fast lane, performed_by: role-clerk}
  - {id: atom-review, name: Review, performed_by: role-clerk}
edges:
  - {type: ENABLES, from: atom-intake, to: atom-check}
  - type: ENABLES
    from: atom-check
    to: atom-fast
    condition: {all: [{field: tax_id, operator: startswith, value: "999"},
                      {field: borrower.ssn, operator: startswith, value: "078"}]}
  - {type: ENABLES, from: atom-check, to: atom-review, default: true}
"""


@handlers.register("pii_check")
def pii_check(context, params):
    """A system step reads both sensitive values: it must get them in plaintext."""
    ssn, tax_id = context["borrower"]["ssn"], context["tax_id"]
    if not (isinstance(ssn, str) and isinstance(tax_id, str)):
        raise handlers.HandlerFailed("the handler got ciphertext")
    return {"checked": True, "ssn_digits": sum(c.isdigit() for c in ssn)}


OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def pii(settings):
    settings.GNDP_FIELD_KEYS = [OLD_KEY]
    publish_journey(yaml.safe_load(PII_JOURNEY))
    clerk = UserFactory(username="clara", roles=["role-clerk"])
    return clerk


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def start_and_intake(api, key: str) -> tuple[dict, dict]:
    started = api.post("/api/processes/start", {"journey_id": "journey-pii",
                                                "context": {"borrower": {"ssn": SSN, "name": NAME}}},
                       format="json", HTTP_IDEMPOTENCY_KEY=f"{key}-start")
    assert started.status_code == 201, started.content
    intake = TaskInstance.objects.get(process_id=started.json()["id"], atom_id="atom-intake")
    done = api.post(f"/api/tasks/{intake.pk}/complete", {"result": {"tax_id": TAX_ID, "amount": 5}},
                    format="json", HTTP_IDEMPOTENCY_KEY=f"{key}-complete")
    assert done.status_code == 200, done.content
    return started.json(), done.json()


def raw_rows(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def test_sensitive_values_are_ciphertext_at_rest_and_plaintext_for_those_who_may_see_them(pii):
    clerk = pii
    api = api_for(clerk)

    started, completed = start_and_intake(api, "one")

    # Whoever may see the process gets plaintext from the API, and so does a replay.
    assert started["context"] == {"borrower": {"ssn": SSN, "name": NAME}}
    assert completed["result"] == {"tax_id": TAX_ID, "amount": 5}
    process_id = started["id"]
    detail = api.get(f"/api/processes/{process_id}").json()
    # The engine and the handler worked on plaintext: the rule on both values took the fast lane.
    assert (detail["status"], detail["current_steps"]) == ("running", ["atom-fast"])
    assert detail["context"] == {"borrower": {"ssn": SSN, "name": NAME}, "tax_id": TAX_ID, "amount": 5,
                                 "checked": True, "ssn_digits": 9}
    replay = api.post("/api/processes/start", {"journey_id": "journey-pii",
                                               "context": {"borrower": {"ssn": SSN, "name": NAME}}},
                      format="json", HTTP_IDEMPOTENCY_KEY="one-start")
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == started

    # At rest: envelopes where the values were, other values as they were.
    stored = ProcessInstance.objects.get(pk=process_id).context
    assert sensitive.is_envelope(stored["borrower"]["ssn"]) and sensitive.is_envelope(stored["tax_id"])
    assert stored["borrower"]["name"] == NAME and stored["amount"] == 5
    assert stored["tax_id"]["kid"] == sensitive.kid_of(OLD_KEY)
    intake = TaskInstance.objects.get(process_id=process_id, atom_id="atom-intake")
    assert sensitive.is_envelope(intake.result["tax_id"]) and intake.result["amount"] == 5
    for table, column in [("processes_processinstance", "context"), ("tasks_taskinstance", "result"),
                          ("tasks_taskinstance", "data"), ("processes_processevent", "payload"),
                          ("processes_idempotencyrecord", "response")]:
        text = raw_rows(f"SELECT {column}::text FROM {table}")
        assert text, table
        assert SSN not in text and TAX_ID not in text, f"plaintext in {table}.{column}"
    assert NAME in raw_rows("SELECT context::text FROM processes_processinstance")  # the check can see text
    assert IdempotencyRecord.objects.filter(response__has_key=sensitive.SEALED_BODY).count() == 2

    # A dump of the whole database holds no plaintext either.
    settings_dict = connection.settings_dict
    dump = subprocess.run(
        ["pg_dump", "--data-only", "-h", settings_dict.get("HOST") or "127.0.0.1",
         "-p", str(settings_dict.get("PORT") or 5432), "-U", settings_dict.get("USER") or "postgres",
         settings_dict["NAME"]],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PGPASSWORD=settings_dict.get("PASSWORD") or ""),
    )
    assert dump.returncode == 0, dump.stderr
    assert NAME in dump.stdout and SSN not in dump.stdout and TAX_ID not in dump.stdout

    # The events name the keys, never the values.
    history = json.dumps(api.get(f"/api/processes/{process_id}/history").json())
    assert "tax_id" in history and SSN not in history and TAX_ID not in history

    # Someone who may not see the process learns nothing; the page masks the values.
    stranger = api_for(UserFactory(username="stranger"))
    assert stranger.get(f"/api/processes/{process_id}").status_code == 404
    assert stranger.get(f"/api/tasks/{intake.pk}").status_code == 404
    page = Client()
    page.force_login(clerk)
    html = page.get(f"/processes/{process_id}/").content.decode() + page.get(f"/tasks/{intake.pk}/").content.decode()
    assert SSN not in html and TAX_ID not in html and "••••••" in html


def test_the_celery_messages_carry_ids_only(pii):
    api = api_for(pii)
    celery_app.conf.task_always_eager = False  # the autouse fixture sets it back afterwards
    with celery_app.connection_for_write() as conn:
        queue = conn.SimpleQueue("celery")
        queue.clear()

        started, _ = start_and_intake(api, "broker")

        messages = []
        while True:  # every message the two requests sent, whatever job it is for
            try:
                message = queue.get(timeout=2)
            except queue.Empty:
                break
            body = message.body.decode() if isinstance(message.body, bytes) else message.body
            messages.append((message.headers["task"], json.loads(body)[0],
                             json.dumps({"headers": message.headers, "properties": message.properties}, default=str)
                             + body))
            message.ack()
        queue.close()
    check = TaskInstance.objects.get(process_id=started["id"], atom_id="atom-check")
    assert ("processes.tasks.run_system_task", [check.pk]) in [(task, args) for task, args, _ in messages]
    for task, _, raw in messages:
        assert SSN not in raw and TAX_ID not in raw and NAME not in raw, task


def test_a_forged_envelope_is_stored_as_data_never_decrypted_for_the_sender(pii):
    """A client that sends someone's ciphertext as its own sensitive value gets that
    ciphertext back, never the plaintext: input is always treated as plaintext."""
    api = api_for(pii)
    victim, _ = start_and_intake(api, "victim")
    stolen = ProcessInstance.objects.get(pk=victim["id"]).context["borrower"]["ssn"]

    forged = api.post("/api/processes/start", {"journey_id": "journey-pii", "context": {"borrower": {"ssn": stolen}}},
                      format="json")

    assert forged.status_code == 201
    assert forged.json()["context"]["borrower"]["ssn"] == stolen
    assert SSN not in forged.content.decode()


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_field_keys", stdout=out)
    return out.getvalue().strip()


def test_rotation_re_encrypts_everything_with_the_new_key_and_is_idempotent(pii, settings):
    api = api_for(pii)
    started, _ = start_and_intake(api, "rotate")
    process_id = started["id"]

    settings.GNDP_FIELD_KEYS = [NEW_KEY, OLD_KEY]
    first = rotate()
    second = rotate()

    # context: ssn and tax_id; the intake result: tax_id; the two stored responses
    new_kid = sensitive.kid_of(NEW_KEY)
    assert first == (f"rotated 5 values: 1 process contexts, 1 task results, 2 stored responses; "
                     f"every sensitive value is now under key {new_kid}")
    assert second == (f"rotated 0 values: 0 process contexts, 0 task results, 0 stored responses; "
                      f"every sensitive value is now under key {new_kid}")
    context = ProcessInstance.objects.get(pk=process_id).context
    assert {context["borrower"]["ssn"]["kid"], context["tax_id"]["kid"]} == {new_kid}
    # The old key can go: everything still reads, through the API and through a replay.
    settings.GNDP_FIELD_KEYS = [NEW_KEY]
    assert api.get(f"/api/processes/{process_id}").json()["context"]["borrower"]["ssn"] == SSN
    intake = TaskInstance.objects.get(process_id=process_id, atom_id="atom-intake")
    replay = api.post(f"/api/tasks/{intake.pk}/complete", {"result": {"tax_id": TAX_ID, "amount": 5}},
                      format="json", HTTP_IDEMPOTENCY_KEY="rotate-complete")
    assert replay.status_code == 200 and replay.json()["result"]["tax_id"] == TAX_ID
    # ... and the old key alone no longer reads anything: the values really moved.
    settings.GNDP_FIELD_KEYS = [OLD_KEY]
    assert sensitive.is_envelope(api.get(f"/api/processes/{process_id}").json()["context"]["borrower"]["ssn"])


def test_a_removed_key_makes_the_engine_fail_closed_and_the_command_say_so(pii, settings):
    api = api_for(pii)
    started, _ = start_and_intake(api, "lost")
    settings.GNDP_FIELD_KEYS = [NEW_KEY]  # OLD_KEY lost

    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("rotate_field_keys", stdout=io.StringIO(), stderr=err)

    assert exited.value.code == 1
    assert err.getvalue().strip() == (f"cannot rotate: no configured key decrypts a value of key "
                                      f"{sensitive.kid_of(OLD_KEY)}; put the key that wrote it back into GNDP_FIELD_KEYS")
    with pytest.raises(sensitive.UndecryptableField):
        sensitive.reveal(("borrower.ssn",), ProcessInstance.objects.get(pk=started["id"]).context)
