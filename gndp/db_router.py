"""Read replicas: monitoring and reporting reads go to `DATABASE_REPLICA_URL` when it is set.

A replica lags its primary, so it may only answer reads whose staleness harms nobody and
that no write of the same unit of work depends on:

- Only reporting reads go there: safe requests (GET, HEAD, OPTIONS) to the reporting paths
  (`GNDP_REPLICA_PATHS`: the monitoring API, the dashboard, the Prometheus exposition), and
  code that asks for it (`with replica_reads():`, e.g. a report in a job).
- Never inside a transaction: a transaction reads what it is about to write (and its row
  locks only exist on the primary).
- Never after a write of the same request or block: once anything was written, every
  later read of that request goes to the primary (read-your-writes).

A safe request should not write at all; if one does (a session touched, a cache row), it is
pinned to the primary from then on. Everything else (the engine, services, the inbox,
writes) always uses the primary. Without a replica configured, every read is the primary's.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Unit:
    """One request or `replica_reads` block: may it use the replica, and has it written."""

    __slots__ = ("reporting", "wrote")

    def __init__(self, reporting: bool) -> None:
        self.reporting = reporting
        self.wrote = False


_unit: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar("gndp_db_unit", default=None)


def replica_configured() -> bool:
    return REPLICA in connections.settings


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block may go to the replica, until the block writes."""
    token = _unit.set(_Unit(reporting=True))
    try:
        yield
    finally:
        _unit.reset(token)


def reporting_alias() -> str:
    """Where a read-only report transaction opened now should run."""
    unit = _unit.get()
    if (unit is not None and unit.reporting and not unit.wrote and replica_configured()
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block):
        return REPLICA
    return DEFAULT_DB_ALIAS


def is_reporting_request(request) -> bool:
    return request.method in SAFE_METHODS and any(
        request.path == prefix.rstrip("/") or request.path.startswith(prefix) for prefix in settings.GNDP_REPLICA_PATHS
    )


class ReplicaRoutingMiddleware:
    """Makes each request one unit: reporting if it is a safe request to a reporting path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _unit.set(_Unit(reporting=is_reporting_request(request)))
        try:
            return self.get_response(request)
        finally:
            _unit.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if not replica_configured():
            return None
        unit = _unit.get()
        if unit is None or not unit.reporting or unit.wrote or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return _off_replica(hints)
        return REPLICA

    def db_for_write(self, model, **hints):
        unit = _unit.get()
        if unit is not None:
            unit.wrote = True  # read-your-writes: the rest of this unit reads the primary
        return _off_replica(hints)

    def allow_relation(self, obj1, obj2, **hints):
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA, None}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # A replica is fed by replication from its primary, never migrated itself.
        return False if db == REPLICA else None


def _off_replica(hints) -> str | None:
    """An object read from the replica is written to, and its relations read from, the
    primary (Django would otherwise follow the instance to the database it came from)."""
    instance = hints.get("instance")
    if instance is not None and instance._state.db == REPLICA:
        return DEFAULT_DB_ALIAS
    return None
