"""Getting committed events to the delivery, at least once.

The fast path: `processes.events.publish` calls `on_committed` after each commit, which
hands the ids of the events that can notify anyone to a worker, from a background thread
that batches them (`retry=False`: with the broker down nothing waits; the relay catches up). With the in-memory channel
layer (one process, the embedded default) this process delivers them itself, so that the
live bell of its own clients hears of it: on PostgreSQL from a background thread that
batches them, on SQLite right after the commit.

The relay: a periodic job reads the event log past its cursor and delivers what has not
been delivered. Event ids are taken at INSERT and become visible at COMMIT, so a hole in
the ids may be a transaction still running: the cursor stops at a hole until it is older
than `GRACE` (then it was a rollback). Delivery is once per event whoever comes first
(`DeliveredEvent`), so the two paths overlapping changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections
from django.db.models import Max
from django.utils import timezone

from gndp import db_faults
from gndp.celery import app as celery_app
from gndp.enqueue import job
from processes.background import Drain
from processes.models import ProcessEvent

from .delivery import deliver, deliver_committed
from .kinds import NOTIFYING_EVENTS
from .models import DeliveredEvent, RelayCursor

log = logging.getLogger(__name__)

CURSOR = "notifications"
GRACE = timedelta(seconds=60)
BATCH = 5000
KEEP_MARKERS = timedelta(days=1)
DELIVER_EVENTS = "notifications.tasks.deliver_events"  # the job (notifications.jobs)


def on_committed(events: list[ProcessEvent]) -> None:
    ids = [event.pk for event in events if event.type in NOTIFYING_EVENTS and event.pk is not None]
    if not ids:
        return
    if _in_memory_layer():
        # The in-memory channel layer (the embedded default) reaches this process's sockets
        # only: delivered by a worker, the bells would never hear of it. So this process
        # delivers, off the committing thread and many commits a batch (one transaction a
        # batch, not one a commit), unless told to do it inline. On SQLite always inline:
        # its writers take turns at one file anyway, and a writing thread beside the
        # requests' made their transactions fail with "database is locked".
        if settings.GNDP_NOTIFICATIONS_INLINE or connection.vendor == "sqlite":
            _deliver_here(events)
        else:
            _deliveries.put(events)
        return
    if celery_app.conf.task_always_eager:
        _hand_off(ids)  # "run it here", as the setting says (tests)
    else:
        _handoffs.put(ids)


def _hand_off(ids: list[int]) -> None:
    try:
        job(DELIVER_EVENTS).apply_async((ids,), retry=False)
    except Exception:  # noqa: BLE001 - the relay delivers what the hand-off lost
        log.warning("could not hand %d events to the notification worker", len(ids), exc_info=True)


# Off the request's thread (processes.background): one message per batch of commits.
_handoffs = Drain("notification-handoff", _hand_off, linger=0.05)


def _deliver_here(events: list[ProcessEvent]) -> None:
    try:
        db_faults.once_more_if_lost(deliver_committed, events)
    except Exception:  # noqa: BLE001 - the relay delivers what failed here
        log.warning("could not deliver notifications for %d events", len(events), exc_info=True)


def _deliver_in_background(events: list[ProcessEvent]) -> None:
    # Errors reach the drain, which runs a batch that met a dropped database connection once
    # more (`processes.background`) and logs what still fails: the relay delivers it later.
    try:
        deliver_committed(events)
    finally:
        # The thread's own connection, closed between batches: a daemon thread that held
        # one would keep a session open (and a test database from being dropped) for ever.
        connections.close_all()


# The embedded setting's deliveries (above), the commits of 50 ms a batch.
_deliveries = Drain("notification-delivery", _deliver_in_background, linger=0.05)


def flush(timeout: float = 5.0) -> bool:
    """Wait until this process's background deliveries are done (tests, benchmarks)."""
    return _deliveries.wait(timeout)


def _in_memory_layer() -> bool:
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def settled(cursor: int, rows: list[tuple[int, datetime]], now: datetime, grace: timedelta = GRACE) -> int:
    """The new cursor: past every id that follows without a hole, or after a hole that has
    stayed open longer than `grace`."""
    for event_id, at in rows:
        if event_id != cursor + 1 and now - at < grace:
            break
        cursor = event_id
    return cursor


def relay(*, now: datetime | None = None, grace: timedelta = GRACE, batch: int = BATCH) -> int:
    """Deliver the undelivered events past the cursor, move the cursor; returns how many
    notifications were made. The first run starts at the end of the log."""
    now = now or timezone.now()
    cursor, _ = RelayCursor.objects.get_or_create(
        name=CURSOR, defaults={"last_event_id": ProcessEvent.objects.aggregate(last=Max("pk"))["last"] or 0})
    made = 0
    start = cursor.last_event_id
    while True:
        rows = list(ProcessEvent.objects.filter(pk__gt=start).order_by("pk").values_list("pk", "type", "timestamp")[:batch])
        wanted = [pk for pk, kind, _ in rows if kind in NOTIFYING_EVENTS]
        done = set(DeliveredEvent.objects.filter(event_id__in=wanted).values_list("event_id", flat=True))
        made += len(deliver([pk for pk in wanted if pk not in done]))
        moved = settled(start, [(pk, at) for pk, _, at in rows], now, grace)
        if moved > start:
            RelayCursor.objects.filter(name=CURSOR, last_event_id__lt=moved).update(last_event_id=moved)
        done_all = len(rows) < batch or moved == start
        start = moved
        if done_all:
            break
    # Below the cursor the relay never looks again: old markers there have done their job.
    DeliveredEvent.objects.filter(event_id__lte=start, delivered_at__lt=now - KEEP_MARKERS).delete()
    return made
