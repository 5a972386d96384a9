"""Django's PostgreSQL backend, with a savepoint's release sent later, with other work, and
a count of what each connection wrote and lost (`gndp.db_faults`).

Every nested atomic block ends with `RELEASE SAVEPOINT`, a round trip of its own: an API
write carrying an Idempotency-Key (its service's transaction inside the key's) paid one
with each request. Releasing a savepoint only folds it into the one around it, so the
release can wait: it is sent with the next SAVEPOINT (which must come after it, or the
release would take the new savepoint with it), and dropped where the transaction's end or
a rollback to an earlier savepoint makes it moot. Until then statements run inside the
savepoint instead of around it, which changes nothing that they do.

The counts tell work that met a dropped connection whether it may run again: it may if it
wrote nothing (`Counts.writes`: a commit of a transaction that wrote, a write outside a
transaction, or a commit whose answer was lost with the connection: it may have happened).
A statement counts as a write unless it starts with SELECT (or is transaction control),
which a pattern tells from its first word without copying it.
"""

from __future__ import annotations

import re

from django.db.backends.postgresql import base
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property
from psycopg_pool import ConnectionPool

from gndp.db_faults import Counts, is_unavailable

_READS = re.compile(r"\s*(?:SELECT|SAVEPOINT|RELEASE|ROLLBACK|SET|SHOW|BEGIN)\b", re.IGNORECASE)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._releases: list[str] = []  # savepoints released but not yet told to the server
        self.fault_counts = Counts()
        self._transaction_wrote = False  # the open transaction has sent a write
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

    # --- savepoints ------------------------------------------------------------------------

    def _savepoint(self, sid: str) -> None:
        releases, self._releases = self._releases, []
        with self.cursor() as cursor:
            if not releases:
                cursor.execute(self.ops.savepoint_create_sql(sid))
                return
            with self.wrap_database_errors, self.connection.pipeline():
                for released in releases:
                    cursor.execute(self.ops.savepoint_commit_sql(released))
                cursor.execute(self.ops.savepoint_create_sql(sid))

    def _savepoint_commit(self, sid: str) -> None:
        self._releases.append(sid)

    def _savepoint_rollback(self, sid: str) -> None:
        # A release waiting here is of a savepoint made after `sid` (it would have been sent
        # before any later one), which rolling back to `sid` undoes anyway.
        self._releases = []
        super()._savepoint_rollback(sid)

    # --- transactions, and what they wrote --------------------------------------------------

    def _commit(self) -> None:
        self._releases = []
        wrote, self._transaction_wrote = self._transaction_wrote, False
        self._committing = wrote
        try:
            result = super()._commit()
        finally:
            self._committing = False
        if wrote:
            self.fault_counts.writes += 1
        return result

    def _rollback(self) -> None:
        self._releases = []
        self._transaction_wrote = False
        return super()._rollback()

    def _set_autocommit(self, autocommit: bool) -> None:
        # A transaction's edge (a new connection's too: `connect` sets autocommit): what it
        # left waiting must not reach the next one.
        self._releases = []
        if not autocommit:
            self._transaction_wrote = False
        super()._set_autocommit(autocommit)

    def note_statement(self, sql: str) -> None:
        if _READS.match(sql):
            return
        if self.in_atomic_block:
            self._transaction_wrote = True
        else:
            self.fault_counts.writes += 1  # autocommit: committed as it ran

    def committing(self) -> "_Committing":
        """Around a COMMIT sent by other means than `commit()` (`processes.writes`)."""
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
        return _Cursor(cursor, self)

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
    def __init__(self, db: DatabaseWrapper) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db._committing = self.db._transaction_wrote

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.db._committing = False


class _CountingErrorWrapper(DatabaseErrorWrapper):
    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is not None:
            self.wrapper.note_error(exc_value)
        return super().__exit__(exc_type, exc_value, traceback)


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
