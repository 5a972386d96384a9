"""Nested atomic blocks keep their meaning when their savepoints' releases wait
(steps/postgresql): whatever tree of blocks commits and rolls back, the rows left
are those that stock savepoints leave, and nothing a block released reaches the next
transaction."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections, transaction
from hypothesis import HealthCheck, given, settings, strategies as st

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Refused(Exception):
    pass


# A block: the rows it writes and the blocks nested in it, in order, and whether it ends
# by raising (then it and all it holds are undone).
blocks = st.recursive(
    st.tuples(st.lists(st.just("row"), max_size=2), st.just(()), st.booleans()),
    lambda inner: st.tuples(st.lists(st.just("row"), max_size=2), st.lists(inner, max_size=3), st.booleans()),
    max_leaves=12,
)


def run(block, names: iter) -> list[str]:
    """Run `block` as nested atomic blocks; return the names it keeps."""
    rows, children, refuses = block
    kept = []
    try:
        with transaction.atomic():
            for _ in rows:
                name = next(names)
                Group.objects.create(name=name)
                kept.append(name)
            for child in children:
                kept += run(child, names)
            if refuses:
                raise Refused
    except Refused:
        return []
    return kept


def test_the_backend_is_the_project_s():
    assert type(connections["default"]).__module__ == "steps.postgresql.base"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.lists(blocks, min_size=1, max_size=3))
def test_nested_blocks_leave_the_rows_of_stock_savepoints(tree, db):
    Group.objects.all().delete()
    names = (f"g{i}" for i in range(10_000))
    expected = []
    for block in tree:  # each top-level block is a transaction of its own
        expected += run(block, names)

    assert sorted(Group.objects.values_list("name", flat=True)) == sorted(expected)
    assert connection._releases == []
