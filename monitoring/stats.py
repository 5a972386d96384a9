"""SQL building blocks for the monitoring reads: durations in seconds and percentiles.

PostgreSQL computes percentiles in the database (`percentile_cont ... WITHIN GROUP`), so a
report over a million tasks returns a handful of rows. SQLite has no such aggregate; there
the values are fetched and the percentiles computed here, which is fine at the size a
laptop runs.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterable, Sequence

from django.db import connection, connections, transaction
from django.db.models import Aggregate, Expression, FloatField, Func, QuerySet

from gndp import db_router, rls


class Seconds(Func):
    """`end - start` in seconds, as a float (both timestamps)."""

    output_field = FloatField()

    def __init__(self, end, start, **extra):
        super().__init__(end, start, **extra)

    def as_postgresql(self, compiler, conn, **extra):
        # date_part gives a float directly; EXTRACT gives numeric (slow) since PostgreSQL 14.
        return self.as_sql(compiler, conn, template="date_part('epoch', %(expressions)s)", arg_joiner=" - ", **extra)

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)


class DurationSeconds(Func):
    """A duration column in seconds (PostgreSQL: interval; SQLite: microseconds)."""

    output_field = FloatField()

    def as_postgresql(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, template="date_part('epoch', %(expressions)s)", **extra)

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, template="(%(expressions)s / 1000000.0)", **extra)


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile (interpolated), e.g. the median at 0.5."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


# Percentiles sort each group's rows; the default 4 MB spills a month of completions to disk.
REPORT_WORK_MEM = "32MB"


@contextmanager
def report_transaction():
    """One read transaction for a report, with sort memory to match, on PostgreSQL. Not
    on SQLite, where a transaction (IMMEDIATE) would take the write lock for a read."""
    if connection.vendor != "postgresql":
        yield
        return
    # On the read replica when one serves this request (gndp.db_router), and in the caller's
    # row-level security scope, not the engine's (gndp.rls): a report only reads.
    alias = db_router.reporting_alias()
    with rls.read_transaction(), transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        yield


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The same interpolation as percentile_cont, for SQLite."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def grouped_stats(
    queryset: QuerySet,
    group_by: Iterable[str],
    aggregates: dict[str, Aggregate],
    percentiles: dict[str, tuple[Expression, float]] | None = None,
) -> dict[tuple, dict[str, Any]]:
    """group key (tuple of the group_by values) -> {name: value} for each aggregate and each
    percentile (`name: (expression, fraction)`), in one query on PostgreSQL."""
    group_by = list(group_by)
    percentiles = percentiles or {}
    queryset = queryset.order_by()
    if connection.vendor == "postgresql":
        annotations = {**aggregates, **{name: PercentileCont(expression, fraction)
                                        for name, (expression, fraction) in percentiles.items()}}
        return _aggregate(queryset, group_by, annotations)
    stats = _aggregate(queryset, group_by, aggregates)
    for name, (expression, fraction) in percentiles.items():
        samples = _samples(queryset, group_by, expression)
        for key, values in stats.items():
            values[name] = percentile(samples.get(key, []), fraction)
    return stats


def _aggregate(queryset: QuerySet, group_by: list[str], annotations: dict) -> dict[tuple, dict[str, Any]]:
    if not group_by:
        return {(): queryset.aggregate(**annotations)}
    rows = queryset.values(*group_by).annotate(**annotations)
    return {tuple(row[g] for g in group_by): {name: row[name] for name in annotations} for row in rows}


def _samples(queryset: QuerySet, group_by: list[str], expression: Expression) -> dict[tuple, list[float]]:
    samples: dict[tuple, list[float]] = defaultdict(list)
    for row in queryset.annotate(_value=expression).values_list(*group_by, "_value"):
        if row[-1] is not None:
            samples[tuple(row[:-1])].append(row[-1])
    return samples


def rounded(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)
