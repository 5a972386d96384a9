"""Django's PostgreSQL backend, with a savepoint's release sent later, with other work.

Every nested atomic block ends with `RELEASE SAVEPOINT`, a round trip of its own: an API
write carrying an Idempotency-Key (its service's transaction inside the key's) paid one
with each request. Releasing a savepoint only folds it into the one around it, so the
release can wait: it is sent with the next SAVEPOINT (which must come after it, or the
release would take the new savepoint with it), and dropped where the transaction's end or
a rollback to an earlier savepoint makes it moot. Until then statements run inside the
savepoint instead of around it, which changes nothing that they do.
"""

from __future__ import annotations

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._releases: list[str] = []  # savepoints released but not yet told to the server

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

    def _commit(self) -> None:
        self._releases = []
        return super()._commit()

    def _rollback(self) -> None:
        self._releases = []
        return super()._rollback()

    def _set_autocommit(self, autocommit: bool) -> None:
        # A transaction's edge (a new connection's too: `connect` sets autocommit): what it
        # left waiting must not reach the next one.
        self._releases = []
        super()._set_autocommit(autocommit)
