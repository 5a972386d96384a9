"""The embedded setting's deliveries (the in-memory channel layer, no worker): this process
delivers its commits' notifications itself, on a background thread, and its own sockets'
bells still hear of them."""

from __future__ import annotations

import threading

import pytest

from notifications import live as notifications_live
from notifications import relay
from notifications.models import DeliveredEvent, Notification
from processes.models import ProcessEvent
from processes.services import start_process

from .conftest import inbox_socket_hears

# On PostgreSQL: SQLite delivers inline (notifications.relay).
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_background(settings, monkeypatch):
    """The in-memory layer, deliveries off the committing thread; records the threads that
    delivered and the batches they were given."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.GNDP_NOTIFICATIONS_INLINE = False
    calls: list[tuple[str, int]] = []
    original = relay.deliver_committed

    def recording(events):
        calls.append((threading.current_thread().name, len(events)))
        return original(events)

    monkeypatch.setattr(relay, "deliver_committed", recording)
    yield calls
    assert relay.flush(timeout=10)


def test_a_commits_notifications_are_delivered_off_its_thread_in_batches(people, in_background):
    processes = [start_process(workflow_id="journey-small", user=people.sam) for _ in range(3)]

    assert relay.flush(timeout=10)
    notifying = ProcessEvent.objects.filter(process__in=processes, type="task.assigned")
    assert notifying.count() == 3
    assert DeliveredEvent.objects.filter(event_id__in=notifying.values("pk")).count() == 3
    made = Notification.objects.filter(process__in=processes, kind="task_assigned")
    assert made.count() == 3
    assert set(made.values_list("recipient__username", flat=True)) == {"clara", "clive"}  # least busy, in turn
    assert {name for name, _ in in_background} == {"gndp-notification-delivery"}
    assert sum(size for _, size in in_background) >= 3


def test_the_bell_hears_a_notification_delivered_in_the_background(people, in_background, monkeypatch):
    # The in-memory layer's queues belong to the loop its consumers wait on: the delivery
    # thread hands its push to that loop rather than running it on one of its own.
    pushed_on: list[threading.Thread] = []
    original = notifications_live._send_all

    async def recording(layer, pairs):
        pushed_on.append(threading.current_thread())
        await original(layer, pairs)

    monkeypatch.setattr(notifications_live, "_send_all", recording)

    messages, listening = inbox_socket_hears(
        people.clara, lambda: start_process(workflow_id="journey-small", user=people.sam))

    bells = [m for m in messages if m["type"] == "notification.created"]
    assert len(bells) == 1, messages
    assert bells[0]["unread_count"] == 1
    assert [n["title"] for n in bells[0]["notifications"]] == ["“Apply” was assigned to you"]
    assert {name for name, _ in in_background} == {"gndp-notification-delivery"}
    assert pushed_on == [listening]
