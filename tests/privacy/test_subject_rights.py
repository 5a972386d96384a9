"""GDPR / CCPA: a borrower's data exported as one bundle, then erased: afterwards neither a
dump of the database nor the storage holds any of their personal values, the audit hash
chain still verifies, and the log records the erasure without personal data. Finished
processes past their retention lose their data to the periodic purge."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from collaboration import services as collaboration
from collaboration.models import Attachment, Comment
from notifications.models import Notification
from privacy import services as privacy
from privacy.models import Erasure, RetentionPolicy
from processes.journey import JourneyError, normalize
from processes.models import ProcessEvent, ProcessInstance
from processes.services import start_process
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import TaskInstance
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BORROWER_JOURNEY = """
format: gndp-journey/1
journey:
  id: journey-borrower
  name: Mortgage
  sensitive: [borrower.ssn]
  privacy: {subject_key: borrower.email, personal: [borrower.name, borrower.phone, employer], retention: P30D}
roles:
  - {id: role-clerk, name: Clerk}
atoms:
  - id: atom-intake
    name: Intake
    performed_by: role-clerk
    form:
      - {name: amount, type: number, required: true}
      - {name: employer, type: string}
  - {id: atom-review, name: Review, performed_by: role-clerk}
edges:
  - {type: ENABLES, from: atom-intake, to: atom-review}
"""

EMAIL, NAME, PHONE, SSN, EMPLOYER = (
    "ann.borrower@example.org", "Annabel Borrowington", "+1-555-0142", "078-05-1120", "Zyxwv Plumbing Ltd")
PERSONAL = (EMAIL, NAME, PHONE, SSN, EMPLOYER)
OTHER_EMAIL, OTHER_NAME = "bob.other@example.org", "Robert Otherperson"


def _borrower(email: str, name: str) -> dict:
    return {"borrower": {"email": email, "name": name, "phone": PHONE if email == EMAIL else "", "ssn": SSN
                         if email == EMAIL else "000-00-0000"}, "loan_type": "fha"}


def _dump() -> str:
    settings = connection.settings_dict
    done = subprocess.run(
        ["pg_dump", "--data-only", "-h", settings.get("HOST") or "127.0.0.1", "-p", str(settings.get("PORT") or 5432),
         "-U", settings.get("USER") or "postgres", settings["NAME"]],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PGPASSWORD=settings.get("PASSWORD") or ""))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored_bytes(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in root.rglob("*") if path.is_file())


@pytest.fixture
def loan(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    publish_journey(yaml.safe_load(BORROWER_JOURNEY))
    clara = UserFactory(username="clara", roles=["role-clerk"])
    carl = UserFactory(username="carl", roles=["role-clerk"])
    process = start_process(workflow_id="journey-borrower", user=clara, business_key="LOAN-0001",
                            context=_borrower(EMAIL, NAME))
    intake = TaskInstance.objects.get(process=process, atom_id="atom-intake")
    task_services.complete_task(intake.pk, user=intake.assigned_to,
                                result={"amount": 250000, "employer": EMPLOYER})
    review = TaskInstance.objects.get(process=process, atom_id="atom-review")
    collaboration.comment_add(user=review.assigned_to, process_id=process.pk,
                              body=f"{NAME} called from {PHONE}, @{'carl' if review.assigned_to == clara else 'clara'}")
    collaboration.attachment_add(user=clara, process_id=process.pk, upload=SimpleUploadedFile(
        "payslip.txt", f"Payslip of {NAME}, {EMPLOYER}".encode(), content_type="text/plain"))
    other = start_process(workflow_id="journey-borrower", user=clara, business_key="LOAN-0002",
                          context=_borrower(OTHER_EMAIL, OTHER_NAME))
    return {"process": process, "other": other, "media": tmp_path / "media", "clara": clara, "carl": carl}


def test_export_then_erase_a_borrower_leaves_no_personal_value_and_a_valid_audit(loan, tmp_path):
    process = loan["process"]
    assert Notification.objects.filter(process=process, body__contains=NAME).exists()  # the mention told carl
    notified = Notification.objects.filter(process=process).count()

    # when: the borrower's data is exported
    out = tmp_path / "bundle.json"
    call_command("export_subject", field_value=EMAIL, output=str(out), stderr=io.StringIO())
    bundle = json.loads(out.read_text())
    # then: the bundle holds all of it, decrypted, and nothing of the other borrower
    assert [item["id"] for item in bundle["processes"]] == [process.pk]
    held = bundle["processes"][0]
    assert held["context"]["borrower"] == {"email": EMAIL, "name": NAME, "phone": PHONE, "ssn": SSN}
    assert held["context"]["employer"] == EMPLOYER
    assert {"amount": 250000, "employer": EMPLOYER} in [task["result"] for task in held["tasks"]]
    assert NAME in held["comments"][0]["body"]
    assert base64.b64decode(held["attachments"][0]["content_base64"]).decode() == f"Payslip of {NAME}, {EMPLOYER}"
    assert any(NAME in item["body"] for item in held["notifications"])
    assert [event["type"] for event in held["events"]][:2] == ["process.started", "task.created"]
    assert OTHER_EMAIL not in out.read_text()
    # and before the erasure, the scans do see the values (the checks below can find them)
    dump = _dump()
    assert NAME in dump and EMAIL in dump and EMPLOYER in dump
    assert NAME.encode() in _stored_bytes(loan["media"])

    # when: the borrower is erased
    summary = io.StringIO()
    call_command("erase_subject", field_value=EMAIL, stdout=summary)

    # then: no table, event, notification or file holds any of their personal values
    dump = _dump()
    for value in PERSONAL:
        assert value not in dump, value
        assert value.encode() not in _stored_bytes(loan["media"]), value
    assert EMAIL not in summary.getvalue()
    assert not Attachment.objects.filter(process=process).exists()
    assert not Notification.objects.filter(process=process).exists()
    assert Comment.objects.get(process=process).body == privacy.ERASED
    # the other borrower is untouched
    assert OTHER_EMAIL in dump and OTHER_NAME in dump
    # the process still runs, its non-personal data intact; the subject key is a pseudonym
    process.refresh_from_db()
    erasure = Erasure.objects.get()
    context = privacy._reveal(("borrower.ssn",), process.context)
    assert context["borrower"] == {"email": f"erased:{erasure.reference}", "name": privacy.ERASED,
                                   "phone": privacy.ERASED, "ssn": privacy.ERASED}
    assert context["amount"] == 250000 and context["loan_type"] == "fha"
    assert process.status == "running" and process.business_key == "LOAN-0001"
    # the log records the erasure with non-personal facts only, and its hash chain verifies
    erased = ProcessEvent.objects.get(process=process, type=privacy.ERASED_EVENT)
    assert erased.payload == {"erasure": str(erasure.reference), "fields": 5, "tasks": 1, "comments": 1,
                              "attachments": 1, "notifications": notified}
    verified = io.StringIO()
    call_command("verify_audit", stdout=verified)
    assert verified.getvalue().startswith("OK:")
    # and the subject is gone: a second export finds nothing
    assert privacy.export_subject(EMAIL)["processes"] == []
    review = TaskInstance.objects.get(process=process, atom_id="atom-review")
    task_services.complete_task(review.pk, user=review.assigned_to, result={})
    process.refresh_from_db()
    assert process.status == "completed"


def test_a_user_is_exported_and_pseudonymised(loan):
    clara = loan["clara"]
    bundle = privacy.export_user(clara)
    assert bundle["account"]["username"] == "clara"
    assert loan["process"].pk in bundle["processes_started"]
    assert bundle["attachments"][0]["filename"] == "payslip.txt"

    erasure = privacy.erase_user(user=clara)

    clara.refresh_from_db()
    assert (clara.username, clara.email, clara.is_active, clara.has_usable_password()) == (
        f"erased-user-{clara.pk}", "", False, False)
    assert Attachment.objects.get().uploaded_by_name == f"erased-user-{clara.pk}"
    assert erasure.counts["attachments"] == 1
    verified = io.StringIO()
    call_command("verify_audit", stdout=verified)
    assert verified.getvalue().startswith("OK:")


def test_finished_processes_past_retention_lose_their_data(loan):
    process = loan["process"]
    for task in TaskInstance.objects.filter(process=process, status__in=["pending", "in_progress"]):
        task_services.complete_task(task.pk, user=task.assigned_to, result={})
    process.refresh_from_db()
    assert process.status == "completed"

    # not yet past its 30 days: nothing to purge
    assert privacy.purge_expired() is None
    # past them
    ProcessInstance.objects.filter(pk=process.pk).update(completed_at=timezone.now() - timedelta(days=31))
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert out.getvalue().startswith("purge ") and " 1 processes " in out.getvalue()

    process.refresh_from_db()
    assert process.context == {} and process.business_key.startswith("erased-")
    assert all(task.result is None or task.result == {} for task in TaskInstance.objects.filter(process=process))
    assert not Attachment.objects.filter(process=process).exists()
    assert ProcessEvent.objects.filter(process=process, type=privacy.PURGED_EVENT).count() == 1
    # the open process of the other borrower is kept; a second run finds nothing
    assert privacy.purge_expired() is None
    loan["other"].refresh_from_db()
    assert loan["other"].context["borrower"]["name"] == OTHER_NAME
    # an administrator's policy overrides the journey's retention
    RetentionPolicy.objects.create(journey_id="journey-borrower", retention=timedelta(days=400))
    assert privacy.retention_by_version() == {loan["process"].version_id: timedelta(days=400)}
    verified = io.StringIO()
    call_command("verify_audit", stdout=verified)
    assert verified.getvalue().startswith("OK:")


@pytest.mark.parametrize("privacy_section, problem", [
    ({"subject_key": "Borrower Email"}, "journey.privacy.subject_key: invalid field path"),
    ({"personal": ["borrower.name", "borrower.name"]}, "journey.privacy.personal[1]: duplicate path"),
    ({"retention": "a year"}, "journey.privacy.retention:"),
    ({"subject": "borrower.email"}, "journey.privacy"),
], ids=["bad_path_case", "duplicate_case", "bad_duration_case", "unknown_key_case"])
def test_the_journeys_privacy_section_is_validated(privacy_section, problem):
    data = yaml.safe_load(BORROWER_JOURNEY)
    data["journey"]["privacy"] = privacy_section
    with pytest.raises(JourneyError) as caught:
        normalize(data)
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems


def test_the_privacy_section_is_canonical_and_survives_the_graph_store():
    definition = normalize(yaml.safe_load(BORROWER_JOURNEY))
    assert definition["journey"]["privacy"] == {
        "subject_key": "borrower.email", "personal": ["borrower.name", "borrower.phone", "employer"],
        "retention": "P30D"}
    version = publish_journey(yaml.safe_load(BORROWER_JOURNEY)).version
    assert version.definition["journey"]["privacy"] == definition["journey"]["privacy"]
