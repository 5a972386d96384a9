"""The Redis channel layer tells which groups have listeners, as `group_send` would find them,
and the publisher makes and sends messages for those groups only."""

from __future__ import annotations

import os
import time

import pytest
from asgiref.sync import async_to_sync

from gndp.channel_layer import BatchingRedisChannelLayer
from processes import live
from processes.models import ProcessEvent
from steps.rows import maker

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL")


@pytest.fixture
def layer():
    layer = BatchingRedisChannelLayer(hosts=[os.environ.get("REDIS_URL", "")], prefix=f"test-{time.time_ns()}")
    yield layer
    # On this thread's own loop, where the publisher reached Redis: channels-redis keeps its
    # connections per loop, and closes them on the loop they were made on.
    live.thread_loop().run_until_complete(layer.flush())


def test_only_groups_with_members_that_have_not_expired_are_listened_to(layer):
    async def scenario():
        heard_channel = await layer.new_channel()
        await layer.group_add("process.1", heard_channel)
        await layer.group_add("monitoring", heard_channel)
        # A member older than the group expiry: `group_send` would drop it before sending.
        gone_channel = await layer.new_channel()
        await layer.group_add("process.2", gone_channel)
        await layer.connection(layer.consistent_hash("process.2")).zadd(
            layer._group_key("process.2"), {gone_channel: time.time() - layer.group_expiry - 5})
        return await layer.listened(["process.1", "process.2", "process.3", "monitoring"])

    assert async_to_sync(scenario)() == {"process.1", "monitoring"}


def test_the_publisher_sends_each_listened_group_its_events_and_makes_no_message_for_the_others(layer):
    events = [maker(ProcessEvent).new(pk=10 + i, process_id=process_id, type="task.completed", payload={})
              for i, process_id in enumerate((1, 2, 1))]

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add("process.1", channel)
        return channel

    channel = async_to_sync(listen)()
    live._publish(layer, events)  # as the publishing thread does
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "event.batch" and [event["id"] for event in message["events"]] == [10, 12]
    assert live.messages_for(events, {"process.1"}) == [
        ("process.1", {"type": "event.message", "event": events[0].as_message()}),
        ("process.1", {"type": "event.message", "event": events[2].as_message()}),
    ]


def test_a_consumer_waiting_longer_than_redis_py_s_read_timeout_keeps_waiting(layer):
    """Given the layer's pools, whose reads time out as redis-py's do,
    when a consumer waits 8 s on an empty channel,
    then each blocking pop ends on the server well before a read times out, the consumer is
    still waiting (no `TimeoutError` closed it), and a message sent then arrives."""
    import asyncio

    read_timeout = layer.create_pool(0).connection_kwargs.get("socket_timeout")
    assert read_timeout is None or layer.brpop_timeout <= read_timeout - 2, (layer.brpop_timeout, read_timeout)

    async def scenario():
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(8)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        await layer.send(channel, {"type": "hello"})
        return await asyncio.wait_for(waiting, 10)

    assert live.thread_loop().run_until_complete(scenario()) == {"type": "hello"}


# --- the relay: what a killed publisher never sent ------------------------------------------------

def test_publishers_note_what_they_sent(layer):
    run = live.thread_loop().run_until_complete

    run(layer.mark_sent([101, 102]))

    assert run(layer.unsent([100, 101, 102, 103])) == [100, 103]


@pytest.mark.django_db
def test_the_relay_sends_the_committed_events_no_publisher_sent_and_only_those(layer, small_version, clerk):
    from processes import live_relay
    from processes.services import start_process

    relay = live_relay.Relay()
    relay.round(0.0)  # begins where the event log ends
    # Committed, never published: a test transaction never commits, so nothing was sent.
    process = start_process(workflow_id="journey-small", user=clerk)
    ids = list(ProcessEvent.objects.filter(process=process).order_by("pk").values_list("pk", flat=True))
    channel = async_to_sync(_listener)(layer, live.process_group(process.pk))
    live.thread_loop().run_until_complete(layer.mark_sent(ids[:1]))  # its publisher sent the first

    assert relay.round(1.0) == []  # read, and given SETTLE seconds to be sent
    due = relay.round(1.0 + live_relay.SETTLE)
    lost = live_relay.send_unsent(layer, due)

    assert [event.pk for event in due] == ids and [event.pk for event in lost] == ids[1:]
    message = async_to_sync(layer.receive)(channel)
    sent = [event["id"] for event in message["events"]] if message["type"] == "event.batch" else [message["event"]["id"]]
    assert sent == ids[1:]
    assert live_relay.send_unsent(layer, due) == []  # noted as sent now
    assert relay.round(10.0) == []


async def _listener(layer, group):
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


def test_a_socket_sends_each_event_once():
    from collections import OrderedDict

    from processes.consumers import InboxConsumer

    consumer = InboxConsumer()
    consumer.sent_ids = OrderedDict()
    sent = []

    async def send_json(event):
        sent.append(event["id"])

    consumer.send_json = send_json
    async_to_sync(consumer._send_new)([{"id": 1}, {"id": 2}, {"id": 1}])
    async_to_sync(consumer._send_new)([{"id": 2}, {"id": 3}])

    assert sent == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_the_relay_runs_while_sockets_are_open_and_stops_after_the_last(layer, settings, monkeypatch):
    from processes import live_relay, tail

    settings.GNDP_LIVE_RELAY_SECONDS = 0.05
    monkeypatch.setattr(tail, "QUIET", 0.2)
    monkeypatch.setattr(live_relay, "_sockets", 0)  # sockets of earlier tests that never closed

    assert live_relay.listen(layer) and live_relay.listen(layer)
    thread = live_relay._thread
    live_relay.leave()
    time.sleep(0.5)
    assert thread.is_alive()  # one socket is still open
    live_relay.leave()
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert live_relay.listen(object()) is False  # the in-memory layer needs no relay
