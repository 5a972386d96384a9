"""One error body for every refusal: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from gndp import body_limits, db_faults
from processes.errors import ServiceError

log = logging.getLogger(__name__)


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def handle(exc, context) -> Response:
    if isinstance(exc, ServiceError):
        return Response(exc.as_body(), status=exc.status)
    if db_faults.is_transient(exc):
        # The database went away, or aborted the transaction after its retries (a deadlock):
        # nothing about the request was wrong, and sent again later it may well succeed.
        log.warning("database unavailable in %s: %s", context.get("view"), exc)
        code = db_faults.error_code(exc)
        response = Response(error_body(code, db_faults.error_message(code)), status=503)
        response["Retry-After"] = str(db_faults.RETRY_AFTER)
        return response
    if isinstance(exc, DataError):
        # The database refused a value (a NUL byte, a number out of range): bad input, and
        # the service's transaction has already rolled back.
        return Response(error_body("invalid", "a value could not be stored", {"detail": "invalid value"}), status=400)
    if isinstance(exc, RequestDataTooBig):
        # Django's own bound on a body it reads for a view (DATA_UPLOAD_MAX_MEMORY_SIZE): met
        # only where gndp.http did not refuse the body first (an in-process client).
        request = context.get("request")
        limit = body_limits.limit_for(request.path) if request is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(error_body("too_large", body_limits.too_large_message(limit),
                                   {"body": f"at most {limit} bytes"}), status=413)
    if isinstance(exc, SuspiciousOperation):
        # Too many fields or files, a malformed multipart body: bad input, never a 500.
        return Response(error_body("invalid", "the request could not be read"), status=400)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "not found"), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("forbidden", "not allowed"), status=403)
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(error_body("invalid", "invalid input", details), status=400)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response = Response(error_body("not_authenticated", str(exc.detail)), status=401)
        response["WWW-Authenticate"] = 'Token realm="api"'
        return response
    if isinstance(exc, exceptions.Throttled):
        response = Response(error_body("throttled", str(exc.detail), {"wait": exc.wait}), status=429)
        if exc.wait is not None:
            response["Retry-After"] = str(int(exc.wait) + 1)
        return response
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        return Response(error_body(code, str(exc.detail)), status=exc.status_code)
    # Anything else is a bug: a generic body, never a traceback or SQL.
    log.exception("unhandled error in %s", context.get("view"))
    return Response(error_body("server_error", "internal error"), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
