"""A transaction's last writes carry its COMMIT (`Writes.execute(commit=True)`), and a
refused guard among them commits nothing."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from notifications.models import DeliveredEvent
from processes.errors import Conflict
from steps.writes import Writes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def seen_elsewhere(*event_ids: int) -> set[int]:
    """What another connection sees committed: the rows of these ids."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                         password=settings["PASSWORD"], dbname=settings["NAME"], autocommit=True) as other:
        rows = other.execute(f"SELECT event_id FROM {DeliveredEvent._meta.db_table} WHERE event_id = ANY(%s)",
                             [list(event_ids)]).fetchall()
    return {row[0] for row in rows}


def test_the_last_writes_commit_with_them_and_the_hooks_run_after_the_block():
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("hook"))
        writes = Writes()
        writes.insert([DeliveredEvent(event_id=1), DeliveredEvent(event_id=2)])
        writes.execute(commit=True)
        assert seen_elsewhere(1, 2) == {1, 2}  # committed before the block ends
        assert ran == []  # the block's hooks run when it ends, as ever
    assert ran == ["hook"]
    assert set(DeliveredEvent.objects.values_list("event_id", flat=True)) == {1, 2}


def test_a_refused_guard_commits_none_of_the_writes_beside_it():
    row = DeliveredEvent.objects.create(event_id=10)
    read_at = row.delivered_at
    DeliveredEvent.objects.filter(pk=10).update(delivered_at=read_at.replace(year=2000))  # changed meanwhile

    with pytest.raises(Conflict, match="changed"), transaction.atomic():
        assert DeliveredEvent.objects.filter(pk=10).exists()  # a read first, as the services lock first
        writes = Writes()
        writes.insert([DeliveredEvent(event_id=11)])
        writes.update(row, ["delivered_at"], where={"delivered_at": read_at},
                      stale=Conflict("row 10 changed", code="stale"))
        writes.execute(commit=True)

    assert seen_elsewhere(10, 11) == {10}
    assert not DeliveredEvent.objects.filter(pk=11).exists()  # and the connection works on
    assert DeliveredEvent.objects.get(pk=10).delivered_at.year == 2000


def test_a_guard_that_holds_commits_the_update():
    row = DeliveredEvent.objects.create(event_id=20)
    with transaction.atomic():
        writes = Writes()
        read_at, row.delivered_at = row.delivered_at, row.delivered_at.replace(year=2001)
        writes.update(row, ["delivered_at"], where={"delivered_at": read_at}, stale=Conflict("changed"))
        writes.execute(commit=True)
    assert DeliveredEvent.objects.get(pk=20).delivered_at.year == 2001


def test_inside_an_outer_transaction_the_flag_commits_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic():
            writes = Writes()
            writes.insert([DeliveredEvent(event_id=30)])
            writes.execute(commit=True)
        assert seen_elsewhere(30) == set()  # the outer block still holds it
        raise RuntimeError("the outer block rolls back")
    assert not DeliveredEvent.objects.filter(pk=30).exists()

