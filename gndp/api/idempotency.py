"""`Idempotency-Key` on writes: the same key and body get the first response again and
change nothing; the same key with another body gets 422. Keys are scoped to the caller.

The record is inserted in the same transaction as the write itself, so a crash after
commit leaves the record with the effect, and of two concurrent requests with one key the
second waits on the unique index, rolls back, and replays the first one's response.

A response that revealed sensitive fields (processes.sensitive) is stored encrypted whole,
so the table never holds their plaintext either.
"""

from __future__ import annotations

import hashlib
from functools import wraps

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from processes import sensitive
from processes.models import IdempotencyRecord

from .exceptions import error_body

HEADER = "Idempotency-Key"


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.body or b"")
    return digest.hexdigest()


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
        existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if existing:
            return _replay(existing, request_hash)
        try:
            with transaction.atomic():
                watch = sensitive.watch_reveals()
                try:
                    response = action(self, request, *args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the refusal is the response to remember
                    response = self.handle_exception(exc)
                    if response.status_code >= 500:
                        raise
                finally:
                    revealed = sensitive.revealed_since(watch)
                IdempotencyRecord.objects.create(
                    user=request.user, key=key, request_hash=request_hash, status_code=response.status_code,
                    response=sensitive.seal_body(response.data) if revealed else response.data,
                )
        except IntegrityError:
            winner = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if winner is None:
                raise
            return _replay(winner, request_hash)
        return response

    return wrapper
