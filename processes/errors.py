"""Errors the services raise. Each carries the HTTP status and code of the API contract,
so the API, the pages and the commands report a refusal the same way."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code

    def as_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(ServiceError):
    status = 400
    code = "invalid"


class NotFound(ServiceError):
    """Unknown, or not visible to the caller: the two are never told apart."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The object's state forbids the action."""

    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    """A body, a file or a value over its size limit: refused before it is parsed."""

    status = 413
    code = "too_large"
