"""Publishing committed events: to live clients (`processes.live`) and to the apps that act on
them (notifications). Events are written by `steps.events.EventLog`, inside a step."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from .live import broadcast
from .models import ProcessEvent

log = logging.getLogger(__name__)


# What else acts on committed events (notifications): apps register a callable from their
# AppConfig.ready. Each gets every committed batch after the live broadcast and must be
# idempotent by event id, since a relay may hand it the same event again.
_subscribers: list[Callable[[list[ProcessEvent]], None]] = []


def subscribe(callback: Callable[[list[ProcessEvent]], None]) -> None:
    if callback not in _subscribers:
        _subscribers.append(callback)


def publish(events: Iterable[ProcessEvent]) -> None:
    """Fan events out to live clients and the subscribers. Never raises: a broker outage
    degrades live updates only, and clients resynchronise over REST."""
    events = list(events)
    try:
        broadcast(events)
    except Exception:  # noqa: BLE001 - notification is best effort by design
        log.warning("could not publish %d events", len(events), exc_info=True)
    for subscriber in _subscribers:
        try:
            subscriber(events)
        except Exception:  # noqa: BLE001 - a subscriber's relay catches up with what it missed
            log.warning("event subscriber %r failed on %d events", subscriber, len(events), exc_info=True)
