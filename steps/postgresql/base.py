"""Django's PostgreSQL backend, with a count of what each connection wrote and lost
(`gndp.db_faults`), and a pool check that sweeps the dead connections at once.

The counts tell work that met a dropped connection whether it may run again: it may if it
wrote nothing (`Counts.writes`: a commit of a transaction, a write outside a transaction,
or a commit whose answer was lost with the connection: it may have happened). A statement
outside a transaction counts as a write unless it starts with SELECT (or SET, SHOW...). The
hot path pays nearly nothing for this: statements inside a transaction are not looked at (a
transaction that commits counts as a write, whatever it did), and the error wrapper's
added work runs only when there is an error.
"""

from __future__ import annotations

import re

from django.db.backends.postgresql import base
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from gndp.db_faults import Counts, is_unavailable

IDLE = TransactionStatus.IDLE
_READS = re.compile(r"\s*(?:SELECT|SAVEPOINT|RELEASE|ROLLBACK|SET|SHOW|BEGIN)\b", re.IGNORECASE)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fault_counts = Counts()
        self._committing = False  # a COMMIT is on its way: lost now, it may have happened

    # --- the pool --------------------------------------------------------------------------

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and getattr(pool, "_check", None) is ConnectionPool.check_connection:
            # Django hands the pool psycopg's own check (CONN_HEALTH_CHECKS) and takes no
            # other: swapped here, before the pool opens.
            pool._check = check_and_sweep
        return pool

    # --- transactions, and what they wrote --------------------------------------------------

    def _commit(self) -> None:
        # Nothing open on the server: a transaction that sent nothing, or one whose COMMIT
        # travelled with its last writes (`committing`, which counted it).
        if self.connection is None or self.connection.info.transaction_status == IDLE:
            return super()._commit()
        with _Committing(self):
            return super()._commit()

    def note_statement(self, sql: str) -> None:
        """A statement run outside a transaction: committed as it ran, if it wrote."""
        if not self.in_atomic_block and not _READS.match(sql):
            self.fault_counts.writes += 1

    def committing(self) -> "_Committing":
        """Around a COMMIT sent by other means than `commit()` (`steps.writes`)."""
        return _Committing(self)

    # --- errors --------------------------------------------------------------------------------

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return _CountingErrorWrapper(self)

    def note_error(self, exc: BaseException) -> None:
        if not is_unavailable(exc):
            return
        if self.connection is None:  # none to be had: the server is down or full
            self.fault_counts.unreachable += 1
            return
        self.fault_counts.losses += 1
        if self._committing:
            self.fault_counts.writes += 1

    # --- cursors -------------------------------------------------------------------------------

    def make_cursor(self, cursor):
        # Inside a transaction Django's own wrapper: what such a cursor runs counts at COMMIT.
        return CursorWrapper(cursor, self) if self.in_atomic_block else _Cursor(cursor, self)

    def make_debug_cursor(self, cursor):
        return _DebugCursor(cursor, self)


def check_and_sweep(conn) -> None:
    """The pool's check of a connection it hands out. One the server dropped is seldom
    alone (a restart, `pg_terminate_backend` of the idle ones): the pool is swept of the
    others at once, so that the next checkout gets a live connection instead of trying the
    dead ones one by one, waiting 1, 2, 4... seconds between them (psycopg_pool's backoff
    after a failed check), which outlasts the pool's timeout with a handful of them."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if pool is not None:
            pool.check()  # psycopg's own check on each idle one: no recursion into this
        raise


class _Committing:
    """A COMMIT on its way: done, it counts as a write; lost with the connection, too (it
    may have happened: `note_error`); refused by the server, not."""

    def __init__(self, db: DatabaseWrapper) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db._committing = True

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.db._committing = False
        if exc_type is None:
            self.db.fault_counts.writes += 1


class _CountingErrorWrapper(DatabaseErrorWrapper):
    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:  # the hot path: as Django's own, one call
            return
        self.wrapper.note_error(exc_value)
        return DatabaseErrorWrapper.__exit__(self, exc_type, exc_value, traceback)


class _Counting:
    def execute(self, sql, params=None):
        self.db.note_statement(sql)
        return super().execute(sql, params)

    def executemany(self, sql, param_list):
        self.db.note_statement(sql)
        return super().executemany(sql, param_list)


class _Cursor(_Counting, CursorWrapper):
    pass


class _DebugCursor(_Counting, base.CursorDebugWrapper):
    pass
