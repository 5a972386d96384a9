"""What the app does when the database drops a connection, cannot be reached, or aborts a
transaction to break a deadlock: the one seam for it, used by the HTTP handler, the Celery
jobs, the background threads, the WebSocket consumers and the services.

Two kinds of failure, two answers:

- **The database is gone** (`is_unavailable`): a connection the server dropped
  (`pg_terminate_backend`, a restart, a network cut) or none to be had (refused, the pool's
  wait ran out). Work that met a dropped connection *before it had written anything* runs
  once more on a new connection (`once_more_if_lost`, and the HTTP handler); anything else
  answers 503 with `Retry-After` (`unavailable_response`), and a job is retried later. A
  500 is never the answer: nothing about the request was wrong.
- **PostgreSQL aborted the transaction** to break a deadlock (40P01) or a serialization
  conflict (40001) (`is_conflict`): the whole transaction runs again (`retry_transaction`),
  a bounded number of times with a short jittered backoff, only while nothing outside the
  database has happened: the failed attempt committed nothing, its after-commit hooks were
  dropped with its rollback, and no code noted an outside effect (`note_outside_effect`).

"Written" is counted by the PostgreSQL backend (`steps.postgresql`): a committed
transaction (whatever it did), a write outside a transaction, and a commit whose answer was
lost with the connection (it may have happened). SQLite keeps no count: its connection is a file
that is never dropped, and it never deadlocks (one writer at a time).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs of a transaction PostgreSQL aborted so that another could go on: running it
# again is expected to succeed.
DEADLOCK = "40P01"
SERIALIZATION_FAILURE = "40001"
CONFLICTS = frozenset({DEADLOCK, SERIALIZATION_FAILURE})
# The server ended or refused the session: admin_shutdown (pg_terminate_backend),
# crash_shutdown, cannot_connect_now (starting up or shutting down), too_many_connections;
# and every connection_exception (class 08).
GONE = frozenset({"57P01", "57P02", "57P03", "53300"})

# Seconds a client is told to wait (Retry-After) before sending again.
RETRY_AFTER = 1


# --- telling the errors apart --------------------------------------------------------------------

def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception behind `exc` (Django wraps it as `__cause__`)."""
    if isinstance(exc, psycopg.Error):
        return exc
    cause = exc.__cause__
    return cause if isinstance(cause, psycopg.Error) else None


def sqlstate(exc: BaseException) -> str | None:
    driver = _driver_error(exc)
    return getattr(driver, "sqlstate", None) if driver is not None else None


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction was rolled back, run it again."""
    return sqlstate(exc) in CONFLICTS


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached, or dropped the connection: nothing the request did
    caused it. A server-side refusal of a statement (a constraint, bad SQL, a conflict)
    carries a SQLSTATE of its own and is not this."""
    if not isinstance(exc, (DatabaseError, psycopg.Error)):
        return False
    driver = _driver_error(exc)
    if isinstance(driver, PoolTimeout):
        return True
    state = getattr(driver, "sqlstate", None)
    if state:
        return state in GONE or state.startswith("08")
    if driver is not None:
        # The client's own report: the connection failed, was closed or broke under it.
        return isinstance(driver, (psycopg.OperationalError, psycopg.InterfaceError))
    # Django's own: "connection already closed" after a failure inside a transaction.
    return isinstance(exc, (InterfaceError, OperationalError)) and "closed" in str(exc)


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": a writer waited its whole timeout for another."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def is_transient(exc: BaseException) -> bool:
    """Worth a 503 and a retry later, never a 500."""
    return is_unavailable(exc) or is_conflict(exc) or is_busy(exc)


# --- what happened on this thread's connections --------------------------------------------------

@dataclass
class Counts:
    """Kept on each connection of the PostgreSQL backend; only ever goes up."""

    writes: int = 0  # commits (and commits that may have happened), writes outside a transaction
    losses: int = 0  # errors on a connection the server dropped
    unreachable: int = 0  # errors getting a connection at all


@dataclass(frozen=True)
class Mark:
    writes: int
    losses: int
    unreachable: int


def _counts() -> list[Counts]:
    return [counts for conn in connections.all(initialized_only=True)
            if (counts := getattr(conn, "fault_counts", None)) is not None]


def mark() -> Mark:
    """Where this thread's connections stand now; compare with `wrote_since` and `lost_since`."""
    all_counts = _counts()
    return Mark(sum(c.writes for c in all_counts), sum(c.losses for c in all_counts),
                sum(c.unreachable for c in all_counts))


def wrote_since(start: Mark) -> bool:
    return mark().writes > start.writes


def lost_since(start: Mark) -> bool:
    """A connection in use was dropped since `start` (not: none could be had)."""
    return mark().losses > start.losses


def failed_since(start: Mark) -> bool:
    now = mark()
    return now.losses > start.losses or now.unreachable > start.unreachable


def discard_connections() -> None:
    """Close this thread's connections that are not inside a transaction: a dropped one goes
    back to the pool, which throws it away, and the next statement gets a checked one."""
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - it is broken; the pool discards it either way
            conn.connection = None


def _in_transaction() -> bool:
    return any(conn.in_atomic_block for conn in connections.all(initialized_only=True))


def once_more_if_lost(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `func`; if it met a connection the server had dropped and had written nothing
    yet, call it once more, on a new connection. Not inside a transaction (the caller's is
    gone with the connection: the caller decides)."""
    start = mark()
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        if not (is_unavailable(exc) and lost_since(start)) or wrote_since(start) or _in_transaction():
            raise
        log.warning("database connection lost before anything was written; trying once more: %s", exc)
    discard_connections()
    return func(*args, **kwargs)


# --- service transactions: run again after a deadlock or a serialization failure ----------------------

_effects = threading.local()


def note_outside_effect() -> None:
    """Something left the database inside the transaction (a file written or deleted): it
    would happen again if the transaction ran again, so it will not."""
    _effects.count = getattr(_effects, "count", 0) + 1


def _effect_count() -> int:
    return getattr(_effects, "count", 0)


def backoff(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: full jitter under a doubling cap."""
    cap = settings.GNDP_TRANSACTION_RETRY_BACKOFF * 2 ** (attempt - 1)
    return random.uniform(cap / 2, cap)


def retry_transaction(func: Callable[..., T]) -> Callable[..., T]:
    """Run a service (which owns its transaction) again when PostgreSQL aborts its transaction
    with a deadlock or a serialization failure, up to `GNDP_TRANSACTION_RETRIES` more times.

    Only the outermost transaction can be run again: called inside another atomic block (an
    `Idempotency-Key`'s record, which shares the write's transaction, or a service calling
    a service), the call does nothing of its own and the error reaches the outermost
    retrier, which runs the whole transaction again. Never after anything left the database:
    a commit, an after-commit hook (Django drops those of a rolled-back transaction), or a
    noted outside effect.
    """

    @wraps(func)
    def retrying(*args: Any, **kwargs: Any) -> T:
        db = connections[DEFAULT_DB_ALIAS]
        counts = getattr(db, "fault_counts", None)  # PostgreSQL's backend only
        if counts is None or db.in_atomic_block:
            return func(*args, **kwargs)
        attempt = 0
        while True:
            writes, effects = counts.writes, getattr(_effects, "count", 0)
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                attempt += 1
                if (not is_conflict(exc) or attempt > settings.GNDP_TRANSACTION_RETRIES
                        or counts.writes != writes or _effect_count() != effects):
                    raise
                log.info("%s: transaction aborted (%s), attempt %d of %d", func.__qualname__, sqlstate(exc),
                         attempt + 1, settings.GNDP_TRANSACTION_RETRIES + 1)
            time.sleep(backoff(attempt))

    return retrying


# --- the answer to a client -------------------------------------------------------------------------

def error_code(exc: BaseException) -> str:
    return "contention" if is_conflict(exc) or is_busy(exc) else "database_unavailable"


def error_message(code: str) -> str:
    if code == "contention":
        return "the database is busy with conflicting work; try again shortly"
    return "the database is unavailable; try again shortly"


def unavailable_response(path: str, code: str = "database_unavailable"):
    """503 with `Retry-After`: the contract's error body under /api/, a short page elsewhere."""
    from django.http import HttpResponse, JsonResponse

    message = error_message(code)
    if path.startswith("/api/"):
        response = JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=503)
    else:
        response = HttpResponse(f"<!doctype html><title>Unavailable</title><h1>Try again shortly</h1><p>{message}.</p>",
                                status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER)
    return response
