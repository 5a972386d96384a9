"""Comments on a task and on a process: the API, access, the history, and the pages."""

from __future__ import annotations

import pytest
from django.test import Client

from collaboration.models import Comment
from processes.models import ProcessEvent

from .conftest import api, queued_checker_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_process_comment_is_stored_rendered_and_in_the_history(world):
    response = api(world.sam).post(f"/api/processes/{world.process.pk}/comments",
                                   {"body": "Please **hurry**, @clara. <script>x()</script> @stranger"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["author"] == "sam" and body["task_id"] is None and body["process_id"] == world.process.pk
    assert body["mentions"] == ["clara"]  # the stranger cannot see the process: plain text
    assert "<strong>hurry</strong>" in body["body_html"] and "<script" not in body["body_html"]
    assert '<span class="mention">@clara</span>' in body["body_html"]
    history = api(world.sam).get(f"/api/processes/{world.process.pk}/history").json()
    assert history[-1]["type"] == "comment.added"
    assert history[-1]["payload"] == {"comment_id": body["id"], "mentions": ["clara"],
                                      "mentioned_ids": [world.clara.pk]}
    assert history[-1]["user_id"] == "sam"


def test_task_comments_are_listed_on_the_task_and_in_the_process_discussion(world):
    made = api(world.clara).post(f"/api/tasks/{world.task.pk}/comments", {"body": "on it"}, format="json")
    api(world.sam).post(f"/api/processes/{world.process.pk}/comments", {"body": "thanks"}, format="json")

    on_task = api(world.clara).get(f"/api/tasks/{world.task.pk}/comments").json()
    on_process = api(world.sam).get(f"/api/processes/{world.process.pk}/comments").json()

    assert made.status_code == 201 and made.json()["task_id"] == world.task.pk
    assert [c["body"] for c in on_task] == ["on it"]
    assert [(c["body"], c["task_id"]) for c in on_process] == [("on it", world.task.pk), ("thanks", None)]
    event = ProcessEvent.objects.filter(type="comment.added").first()
    assert event.task_id == world.task.pk and event.atom_id == "atom-apply"


def test_who_cannot_see_it_gets_404_and_nothing_is_written(world):
    before = (Comment.objects.count(), ProcessEvent.objects.count())

    refused = [
        api(world.stranger).post(f"/api/processes/{world.process.pk}/comments", {"body": "hi"}, format="json"),
        api(world.stranger).post(f"/api/tasks/{world.task.pk}/comments", {"body": "hi"}, format="json"),
        api(world.stranger).get(f"/api/processes/{world.process.pk}/comments"),
        api(world.stranger).get(f"/api/tasks/{world.task.pk}/comments"),
        api(world.chet).get(f"/api/tasks/{world.task.pk}/comments"),  # not the checker's task
        api(world.stranger).post("/api/processes/999999/comments", {"body": "hi"}, format="json"),
        api(world.stranger).get("/api/tasks/not-a-number/comments"),
    ]

    assert [r.status_code for r in refused] == [404] * 7
    assert refused[0].json()["error"]["code"] == "not_found"
    assert api(None).get(f"/api/tasks/{world.task.pk}/comments").status_code == 401
    assert (Comment.objects.count(), ProcessEvent.objects.count()) == before


def test_an_empty_or_missing_body_is_a_400(world):
    responses = [api(world.sam).post(f"/api/processes/{world.process.pk}/comments", body, format="json")
                 for body in ({"body": "   "}, {}, {"body": "x" * 10_001})]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert "body" in responses[1].json()["error"]["details"]
    assert not Comment.objects.exists()


def test_the_same_idempotency_key_posts_once(world):
    client = api(world.sam)
    url = f"/api/processes/{world.process.pk}/comments"

    first = client.post(url, {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    again = client.post(url, {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    other = client.post(url, {"body": "twice?"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")

    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert other.status_code == 422
    assert Comment.objects.count() == 1


def test_a_colleague_who_sees_only_the_queued_task_can_talk_about_it(world):
    queued = queued_checker_task(world)

    response = api(world.chet).post(f"/api/tasks/{queued.pk}/comments", {"body": "@cheryl yours?"}, format="json")

    assert response.status_code == 201 and response.json()["mentions"] == ["cheryl"]
    assert api(world.chet).get(f"/api/processes/{world.process.pk}/comments").status_code == 404


def test_the_pages_show_and_post_the_discussion(world):
    client = Client()
    client.force_login(world.clara)

    posted = client.post(f"/tasks/{world.task.pk}/comments/", {"body": "Checked the *income*."}, HTTP_HX_REQUEST="true")
    empty = client.post(f"/tasks/{world.task.pk}/comments/", {"body": ""}, HTTP_HX_REQUEST="true")
    task_page = client.get(f"/tasks/{world.task.pk}/").content.decode()
    client.force_login(world.sam)
    process_page = client.get(f"/processes/{world.process.pk}/").content.decode()
    fragment = client.get(f"/processes/{world.process.pk}/discussion/").content.decode()
    client.force_login(world.stranger)
    foreign = client.get(f"/processes/{world.process.pk}/discussion/")

    assert posted.status_code == 200 and "<em>income</em>" in posted.content.decode()
    assert "data-discussion-error" in empty.content.decode()
    assert "Checked the <em>income</em>." in task_page and 'data-socket="/ws/tasks/' in task_page
    assert "Checked the <em>income</em>." in process_page and "on <a href=" in process_page
    assert fragment.startswith('<div id="discussion-live"')
    assert foreign.status_code == 404


def test_characters_that_cannot_be_stored_are_a_400_on_the_page_too(world):
    client = Client()
    client.force_login(world.sam)

    page = client.post(f"/processes/{world.process.pk}/comments/", {"body": "a\x00b"}, HTTP_HX_REQUEST="true")
    api_call = api(world.sam).post(f"/api/processes/{world.process.pk}/comments", {"body": "a\x00b"}, format="json")

    assert page.status_code == 200 and "data-discussion-error" in page.content.decode()
    assert api_call.status_code == 400
    assert not Comment.objects.exists()
