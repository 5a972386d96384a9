"""`Idempotency-Key` on writes: the same key and body get the first response again and
change nothing; the same key with another body gets 422. Keys are scoped to the caller.

The record is inserted in the same transaction as the write itself, so a crash after
commit leaves the record with the effect, and of two concurrent requests with one key the
second waits on the unique index, rolls back, and replays the first one's response. That
transaction is the outermost one, so it is the one that runs again when PostgreSQL aborts
it to break a deadlock (`gndp.db_faults.retry_transaction`), the service's inside it too.

A response that revealed sensitive fields (processes.sensitive) is stored encrypted whole,
so the table never holds their plaintext either.

Every write a client retries safely pays for this, so the record is read and written in
statements written once (`steps.rows`, `steps.writes`) rather than compiled by the
ORM each time, the read travels with the transaction's BEGIN, and the record's INSERT with
its COMMIT: the same transaction, four round trips fewer.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache, wraps

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from rest_framework.response import Response

from gndp import db_faults
from gndp.db_faults import retry_transaction
from processes import sensitive
from processes.models import IdempotencyRecord
from steps.rows import Columns
from steps.writes import Writes, pipelined

from .exceptions import error_body

HEADER = "Idempotency-Key"


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.body or b"")
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _columns() -> Columns:
    return Columns(IdempotencyRecord, "r")


@lru_cache(maxsize=None)
def _find_sql(vendor: str) -> str:
    quote, opts = connection.ops.quote_name, IdempotencyRecord._meta
    return (f"SELECT {_columns().sql(quote)} FROM {quote(opts.db_table)} r"
            f" WHERE r.{quote(opts.get_field('user').column)} = %s AND r.{quote(opts.get_field('key').column)} = %s")


def _find(user, key: str) -> IdempotencyRecord | None:
    """The caller's record of `key`. Inside the block's atomic, as its first statement, it
    opens the transaction with it (`pipelined`)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up again
    with db.cursor() as cursor:
        with pipelined(db):
            cursor.execute(_find_sql(db.vendor), [user.pk, key])
        row = cursor.fetchone()
    return None if row is None else _columns().read(row, db)


def _record(user, key: str, request_hash: str, response: Response, revealed: bool) -> None:
    """The record, as the transaction's last write: with its COMMIT where it is the outermost."""
    writes = Writes()
    writes.insert([IdempotencyRecord(
        user=user, key=key, request_hash=request_hash, status_code=response.status_code,
        response=sensitive.seal_body(response.data) if revealed else response.data,
    )])
    writes.execute(commit=True)


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        return Response(
            error_body("idempotency_key_reused", f"this {HEADER} was used with another request"), status=422
        )
    response = Response(sensitive.reveal_body(record.response), status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(action):
    """Decorate a DRF view method that performs a write."""

    @wraps(action)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if not key or not request.user.is_authenticated:
            return action(self, request, *args, **kwargs)
        key = key[:255]
        # A view may say what makes two requests the same (an upload: its file, not the
        # multipart body, whose boundary differs on every send).
        request_hash = self.idempotency_hash(request) if hasattr(self, "idempotency_hash") else _request_hash(request)
        try:
            return _once_recorded(self, request, key, request_hash, action, args, kwargs)
        except IntegrityError:
            winner = _find(request.user, key)
            if winner is None:
                raise
            return _replay(winner, request_hash)

    return wrapper


@retry_transaction
def _once_recorded(view, request, key, request_hash, action, args, kwargs):
    """The write and its record, in one transaction: the outermost one, so that this is where
    a transaction PostgreSQL aborted (a deadlock) runs again, the service's inside it too."""
    with transaction.atomic():
        existing = _find(request.user, key)
        if existing is not None:
            return _replay(existing, request_hash)
        watch = sensitive.watch_reveals()
        try:
            response = action(view, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the refusal is the response to remember
            if db_faults.is_transient(exc):
                raise  # not a refusal: the transaction is gone (run again, or 503)
            response = view.handle_exception(exc)
            if response.status_code >= 500:
                raise
        finally:
            revealed = sensitive.revealed_since(watch)
        _record(request.user, key, request_hash, response, revealed)
    return response
