"""The notifications over REST, on the pages and live over the inbox WebSocket."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from notifications.models import Notification, NotificationPreference
from processes.services import start_process
from tasks import services as task_services

from .conftest import inbox_socket_hears, open_task

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def two_for_clara(people):
    """clara holds two assignment notifications; mona one escalation."""
    first = start_process(workflow_id="journey-small", user=people.sam)
    second = start_process(workflow_id="journey-small", user=people.sam)
    task = open_task(second, "atom-apply")
    if task.assigned_to != people.clara:
        task_services.reassign_task(task.pk, user=people.mona, new_assignee="clara")
    task_services.escalate_task(open_task(first, "atom-apply").pk, user=people.clara)
    return list(Notification.objects.filter(recipient=people.clara, kind="task_assigned").order_by("id"))


def test_the_list_and_the_count_are_the_callers_own(people, two_for_clara):
    as_clara = api(people.clara)

    listed = as_clara.get("/api/notifications")
    count = as_clara.get("/api/notifications/unread-count")

    assert listed.status_code == 200
    assert [n["id"] for n in listed.json()] == sorted((n.pk for n in two_for_clara), reverse=True)
    assert listed.json()[0]["kind"] == "task_assigned" and listed.json()[0]["read"] is False
    assert listed["X-Total-Count"] == "2"
    assert count.json() == {"unread": 2}
    assert api(people.stranger).get("/api/notifications").json() == []
    assert APIClient().get("/api/notifications").status_code == 401


def test_marking_read_one_and_all(people, two_for_clara):
    as_clara = api(people.clara)
    first, second = two_for_clara

    response = as_clara.post(f"/api/notifications/{first.pk}/read", HTTP_IDEMPOTENCY_KEY="k1")
    replay = as_clara.post(f"/api/notifications/{first.pk}/read", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 200 and response.json()["read"] is True
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == response.json()
    assert as_clara.get("/api/notifications", {"unread": "true"}).json()[0]["id"] == second.pk
    assert as_clara.post("/api/notifications/read-all").json() == {"marked": 1}
    assert as_clara.get("/api/notifications/unread-count").json() == {"unread": 0}


def test_someone_elses_notification_is_not_found_and_stays_unread(people, two_for_clara):
    mine = two_for_clara[0]

    response = api(people.mona).post(f"/api/notifications/{mine.pk}/read")
    unknown = api(people.mona).post("/api/notifications/999999/read")

    assert response.status_code == 404 and unknown.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": f"notification {mine.pk} not found",
                                         "details": {}}}
    mine.refresh_from_db()
    assert mine.read_at is None


def test_preferences_read_and_change(people):
    as_clara = api(people.clara)

    defaults = as_clara.get("/api/notifications/preferences").json()
    changed = as_clara.patch("/api/notifications/preferences", {
        "channels": {"task_assigned": ["email"], "mentioned": []},
        "quiet_start": "22:00", "quiet_end": "07:00", "timezone": "Europe/Paris"}, format="json")
    bad = as_clara.patch("/api/notifications/preferences", {"channels": {"nope": ["sms"]}, "timezone": "Mars/Base"},
                         format="json")
    half = as_clara.patch("/api/notifications/preferences", {"quiet_start": "22:00"}, format="json")
    offset = as_clara.patch("/api/notifications/preferences", {"quiet_start": "22:00Z", "quiet_end": "07:00"},
                            format="json")

    assert defaults["channels"]["task_assigned"] == ["in_app"]
    assert defaults["channels"]["task_escalated"] == ["in_app", "email"]
    assert defaults["quiet_start"] is None and defaults["timezone"] == "UTC"
    assert changed.status_code == 200
    assert changed.json()["channels"]["task_assigned"] == ["email"]
    assert changed.json()["channels"]["mentioned"] == []
    assert changed.json()["channels"]["sla_warning"] == ["in_app", "email"]  # untouched: the default
    assert changed.json()["quiet_start"] == "22:00" and changed.json()["timezone"] == "Europe/Paris"
    assert bad.status_code == half.status_code == offset.status_code == 400
    assert set(bad.json()["error"]["details"]) >= {"channels"}
    stored = NotificationPreference.objects.get(user=people.clara)
    assert stored.timezone == "Europe/Paris" and stored.channels["mentioned"] == []


def test_the_bell_hears_a_new_notification_over_the_inbox_socket(people):
    messages, _ = inbox_socket_hears(people.clara, lambda: start_process(workflow_id="journey-small", user=people.sam))

    bells = [m for m in messages if m["type"] == "notification.created"]
    assert len(bells) == 1
    assert bells[0]["unread_count"] == 1
    assert [n["title"] for n in bells[0]["notifications"]] == ["“Apply” was assigned to you"]
    assert {m["type"] for m in messages} >= {"task.created", "task.assigned", "notification.created"}


def test_the_pages_show_the_bell_the_list_and_save_preferences(people, two_for_clara):
    client = Client()
    client.force_login(people.clara)
    first = two_for_clara[0]

    inbox = client.get("/inbox/").content.decode()
    listing = client.get("/notifications/").content.decode()
    refused = client.get(f"/notifications/{first.pk}/open/")
    opened = client.post(f"/notifications/{first.pk}/open/")
    saved = client.post("/profile/", {"email": "clara@example.org", "task_assigned__in_app": "on",
                                      "mentioned__email": "on", "quiet_start": "21:00", "quiet_end": "06:30",
                                      "timezone": "Europe/Berlin"})
    half = client.post("/profile/", {"email": "", "quiet_start": "21:00", "timezone": "UTC"})

    assert 'data-bell-count >2</span>' in inbox
    assert "“Apply” was assigned to you" in listing
    assert refused.status_code == 405
    assert opened.status_code == 302 and opened["Location"] == first.url
    first.refresh_from_db()
    assert first.read_at is not None
    assert saved.status_code == 302
    preference = NotificationPreference.objects.get(user=people.clara)
    assert preference.channels_for("task_assigned") == ("in_app",)
    assert preference.channels_for("mentioned") == ("email",)
    assert preference.channels_for("sla_warning") == ()
    assert str(preference.quiet_start) == "21:00:00" and preference.timezone == "Europe/Berlin"
    people.clara.refresh_from_db()
    assert people.clara.email == "clara@example.org"
    assert half.status_code == 400 and "Give both ends" in half.content.decode()
    assert client.get("/profile/").status_code == 200
