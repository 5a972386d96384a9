"""The mirror's cursor over holes in the event ids: an id taken by a transaction that has not
committed yet must not be passed, one that rolled back must not hold the cursor forever."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from processes.graph import mirror

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
GRACE = timedelta(seconds=10)


def test_the_cursor_moves_over_contiguous_events():
    assert mirror.settled_cursor(4, [(5, NOW), (6, NOW), (7, NOW)], NOW, GRACE) == 7


def test_the_cursor_waits_below_a_fresh_hole():
    events = [(5, NOW), (7, NOW - timedelta(seconds=3)), (8, NOW)]

    assert mirror.settled_cursor(4, events, NOW, GRACE) == 5


def test_the_cursor_passes_a_hole_older_than_the_grace():
    events = [(5, NOW - timedelta(minutes=2)), (9, NOW - timedelta(minutes=1)), (10, NOW)]

    assert mirror.settled_cursor(4, events, NOW, GRACE) == 10
