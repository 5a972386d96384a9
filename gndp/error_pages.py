"""What a refused or failed request gets when no view answered it: the contract's JSON error
body under /api/, the error page elsewhere. Never a traceback or a setting: DEBUG is off
unless asked for (`make dev`), and these replace Django's plain defaults (urls.py's
handler400/403/404/500, CSRF_FAILURE_VIEW).

A 500 page is rendered without the request, so without anything that reads the database
(the user, the notification count): whatever broke the request may have been the database.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

TITLES = {400: "Bad request", 403: "Refused", 404: "Not found", 413: "Too large", 500: "Something went wrong"}
MESSAGES = {
    400: ("invalid", "the request could not be read"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "not found"),
    413: ("too_large", "the request body is too large"),
    500: ("server_error", "internal error"),
}


def is_api(path: str) -> bool:
    return path.startswith("/api/")


def error_response(path: str, status: int, message: str | None = None, *, request=None,
                   details: dict | None = None) -> HttpResponse:
    """The contract's body for /api/ paths, the error page for the others."""
    code, default = MESSAGES[status]
    message = message or default
    if is_api(path):
        return JsonResponse({"error": {"code": code, "message": message, "details": details or {}}}, status=status)
    context = {"error": {"status": status, "title": TITLES[status], "message": message}}
    try:
        html = render_to_string("error.html", context, request=request)
    except Exception:  # noqa: BLE001 - the error page must not fail in turn (a database down, say)
        log.exception("the error page could not be rendered")
        html = f"<!doctype html><title>{TITLES[status]}</title><h1>{TITLES[status]}</h1><p>{message}</p>"
    return HttpResponse(html, status=status)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return error_response(request.path, 413, request=_safe(request))
    return error_response(request.path, 400, request=_safe(request))


def permission_denied(request, exception=None):
    return error_response(request.path, 403, request=_safe(request))


def page_not_found(request, exception=None):
    return error_response(request.path, 404, request=_safe(request))


def server_error(request):
    return error_response(request.path, 500)


def csrf_failure(request, reason=""):
    return error_response(request.path, 403, "the form was out of date or sent from elsewhere: reload the page and "
                                             "try again", request=_safe(request))


def _safe(request):
    """The request, for the page's header and navigation, when its host is one we serve;
    otherwise none (a disallowed Host header raises again on every use)."""
    try:
        request.get_host()
    except Exception:  # noqa: BLE001 - DisallowedHost: the request itself was the problem
        return None
    return request
