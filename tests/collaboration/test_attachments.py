"""Attachments: stored through Django's storage API, served only to those who can see
the task (404 for anyone else), oversize and disallowed types refused with 400."""

from __future__ import annotations

import hashlib
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from collaboration.models import Attachment
from processes.models import ProcessEvent
from tasks.access import visible_processes, visible_tasks

from .conftest import api, queued_checker_task

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GNDP_ATTACHMENT_MAX_BYTES = 1024
    return settings.MEDIA_ROOT


def upload(client, url, name: str, content: bytes, content_type: str = "application/octet-stream", **headers):
    return client.post(url, {"file": SimpleUploadedFile(name, content, content_type=content_type)},
                       format="multipart", **headers)


def stored_files(media) -> list[str]:
    return [os.path.join(root, name) for root, _, names in os.walk(media) for name in names]


def test_a_file_on_a_task_is_stored_listed_served_and_in_the_history(world, media):
    response = upload(api(world.clara), f"/api/tasks/{world.task.pk}/attachments", "pay slip.pdf", PDF)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["filename"] == "pay_slip.pdf" and body["content_type"] == "application/pdf"
    assert body["size"] == len(PDF) and body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert body["task_id"] == world.task.pk and body["uploaded_by"] == "clara"
    assert body["url"] == f"/api/attachments/{body['id']}/content"
    attachment = Attachment.objects.get()
    assert attachment.file.name.startswith(f"attachments/{world.process.pk}/") and "pay" not in attachment.file.name
    assert stored_files(media) == [str(media / attachment.file.name)]

    download = api(world.clara).get(body["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert 'attachment; filename="pay_slip.pdf"' in download["Content-Disposition"]

    listed = api(world.clara).get(f"/api/tasks/{world.task.pk}/attachments").json()
    assert [a["id"] for a in listed] == [body["id"]]
    event = ProcessEvent.objects.filter(type="attachment.added").get()
    assert event.task_id == world.task.pk
    assert event.payload == {"attachment_id": body["id"], "content_type": "application/pdf", "size": len(PDF)}


def test_someone_who_cannot_see_the_task_gets_404_for_its_files(world):
    made = upload(api(world.clara), f"/api/tasks/{world.task.pk}/attachments", "slip.pdf", PDF).json()
    # sam started the process and sees it, but not clara's task
    assert visible_processes(world.sam).filter(pk=world.process.pk).exists()
    assert not visible_tasks(world.sam).filter(pk=world.task.pk).exists()

    for user in (world.sam, world.stranger, world.chet):
        assert api(user).get(made["url"]).status_code == 404
        assert api(user).get(f"/api/tasks/{world.task.pk}/attachments").status_code == 404
    assert api(world.sam).get(f"/api/processes/{world.process.pk}/attachments").json() == []
    unknown = api(world.stranger).get("/api/attachments/999999/content")
    foreign = api(world.stranger).get(made["url"])
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"] == "not_found"
    # the manager of the assignee sees the task, and so the file
    assert api(world.mona).get(made["url"]).status_code == 200
    assert api(None).get(made["url"]).status_code == 401


def test_oversize_and_disallowed_types_are_refused_with_400_and_nothing_is_kept(world, media):
    url = f"/api/tasks/{world.task.pk}/attachments"
    client = api(world.clara)
    events_before = ProcessEvent.objects.count()

    too_big = upload(client, url, "big.pdf", PDF + b"x" * 2000)
    exe = upload(client, url, "tool.exe", b"MZ\x90\x00" + b"\x00" * 20)
    renamed = upload(client, url, "invoice.pdf", b"MZ\x90\x00 not a pdf at all")
    binary_text = upload(client, url, "notes.txt", b"abc\x00def")
    no_name = upload(client, url, "noextension", b"hello")
    no_file = client.post(url, {}, format="multipart")
    huge_body = client.generic("POST", url, b"x", content_type="multipart/form-data; boundary=zz",
                               CONTENT_LENGTH=str(10 * 1024 * 1024))

    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "file_too_large"
    assert exe.status_code == 400 and exe.json()["error"]["code"] == "file_type_not_allowed"
    assert "pdf" in exe.json()["error"]["details"]["file"]
    assert renamed.status_code == 400 and renamed.json()["error"]["code"] == "file_type_mismatch"
    assert binary_text.status_code == 400 and no_name.status_code == 400 and no_file.status_code == 400
    assert huge_body.status_code == 400 and huge_body.json()["error"]["code"] == "file_too_large"
    assert not Attachment.objects.exists()
    assert stored_files(media) == []
    assert ProcessEvent.objects.count() == events_before


def test_text_and_images_within_the_limits_are_accepted(world):
    client = api(world.sam)
    url = f"/api/processes/{world.process.pk}/attachments"

    text = upload(client, url, "notes.csv", "name,amount\nélodie,12\n".encode())
    image = upload(client, url, "scan.PNG", PNG)

    assert text.status_code == 201 and text.json()["content_type"] == "text/csv"
    assert image.status_code == 201 and image.json()["content_type"] == "image/png"
    assert image.json()["task_id"] is None
    # a process's own files: for everyone who sees the process
    assert api(world.clara).get(image.json()["url"]).status_code == 200
    assert api(world.stranger).get(image.json()["url"]).status_code == 404
    assert [a["filename"] for a in api(world.clara).get(url).json()] == ["notes.csv", "scan.PNG"]


def test_the_same_idempotency_key_uploads_once(world):
    url = f"/api/tasks/{world.task.pk}/attachments"
    client = api(world.clara)

    first = upload(client, url, "a.pdf", PDF, HTTP_IDEMPOTENCY_KEY="u-1")
    again = upload(client, url, "a.pdf", PDF, HTTP_IDEMPOTENCY_KEY="u-1")
    other = upload(client, url, "a.pdf", PDF + b"%", HTTP_IDEMPOTENCY_KEY="u-1")

    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert Attachment.objects.count() == 1


def test_a_queued_tasks_files_are_for_its_role_not_for_the_process_viewers(world):
    queued = queued_checker_task(world)

    made = upload(api(world.chet), f"/api/tasks/{queued.pk}/attachments", "check.pdf", PDF)

    assert made.status_code == 201
    assert api(world.cheryl).get(made.json()["url"]).status_code == 200  # same queue
    assert api(world.sam).get(made.json()["url"]).status_code == 404  # sees the process, not the task


def test_the_page_uploads_and_lists_files(world):
    client = Client()
    client.force_login(world.clara)

    posted = client.post(f"/tasks/{world.task.pk}/attachments/",
                         {"file": SimpleUploadedFile("slip.pdf", PDF)}, HTTP_HX_REQUEST="true")
    refused = client.post(f"/tasks/{world.task.pk}/attachments/",
                          {"file": SimpleUploadedFile("slip.exe", b"MZ")}, HTTP_HX_REQUEST="true")

    assert posted.status_code == 200 and "slip.pdf" in posted.content.decode()
    assert "not allowed" in refused.content.decode()
    assert Attachment.objects.count() == 1
