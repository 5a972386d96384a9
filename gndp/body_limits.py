"""How much body a request may carry, decided from its path and headers before any is read.

Django's ASGI handler reads the whole body into a temporary file before any middleware or
view runs, so a view's own size check (or DATA_UPLOAD_MAX_MEMORY_SIZE) came after the
server had taken in every byte: 256 MiB from anyone, signed in or not. `gndp.http` asks
here first:

- Each path has a limit: an attachment upload its file limit plus the multipart framing,
  a journey import and a bulk start theirs, the rest of the API the JSON limit, and pages
  (forms) Django's DATA_UPLOAD_MAX_MEMORY_SIZE. A declared `Content-Length` over it is
  refused at once; a chunked body is read until it passes it, then refused.
- A request without credentials (no session cookie of a signed-in session, no valid
  `Authorization: Token`) may carry only GNDP_ANONYMOUS_BODY_MAX_BYTES (the sign-in form).
  The credentials are looked up only for a body larger than that, so the usual request
  (a completion, a comment) costs no extra query.

Refusals are 413 with the contract's error body under /api/ and the error page elsewhere,
and close the connection: the unread rest of the body is never read.
"""

from __future__ import annotations

import re

from django import db
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse
from django.http.cookie import parse_cookie
from django.template.defaultfilters import filesizeformat
from django.utils.module_loading import import_string

from collaboration.uploads import MULTIPART_OVERHEAD
from gndp.api.authentication import user_for_token
from gndp.error_pages import error_response

_ATTACHMENTS = re.compile(r"/(?:api/)?(?:tasks|processes)/[^/]+/attachments/?")
_JOURNEY_IMPORT = "/api/journeys/import"
_BULK_START = "/api/processes/start-bulk"
# What an error page may load: its stylesheet.
_ERROR_PAGE_POLICY = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"


def limit_for(path: str) -> int:
    """The largest body a signed-in caller may send to `path`."""
    if _ATTACHMENTS.fullmatch(path):
        return settings.GNDP_ATTACHMENT_MAX_BYTES + MULTIPART_OVERHEAD
    if path == _JOURNEY_IMPORT:
        return settings.GNDP_JOURNEY_MAX_BYTES
    if path == _BULK_START:
        return settings.GNDP_BULK_START_MAX_BYTES
    if path.startswith("/api/"):
        return settings.GNDP_JSON_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or settings.GNDP_JSON_MAX_BYTES


def anonymous_limit() -> int:
    return settings.GNDP_ANONYMOUS_BODY_MAX_BYTES


def declared_length(scope) -> int | None:
    """The request's `Content-Length`, or None when it sent none (a chunked body)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


def has_credentials(scope) -> bool:
    """Whether the request carries a valid API token or the cookie of a signed-in session.

    Runs on a request thread (it reads the database) and gives its connection back."""
    authorization, cookies = "", []
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"cookie":
            cookies.append(value.decode("latin-1"))
    try:
        kind, _, key = authorization.partition(" ")
        if kind.lower() == "token" and key.strip():
            user = user_for_token(key.strip())
            if user is not None and user.is_active:
                return True
        session_key = parse_cookie("; ".join(cookies)).get(settings.SESSION_COOKIE_NAME) if cookies else None
        if session_key:
            store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=session_key)
            return store.get(SESSION_KEY) is not None  # an expired or unknown key loads empty
        return False
    finally:
        db.close_old_connections()


def refusal(path: str, message: str, max_bytes: int) -> HttpResponse:
    """The 413 for a body refused before it was read. Built outside the middleware, so the
    headers they would add are set here; the connection is closed after it."""
    response = error_response(path, 413, message, details={"body": f"at most {max_bytes} bytes"})
    response["Content-Length"] = str(len(response.content))
    response["Connection"] = "close"
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Frame-Options"] = "DENY"
    response["Content-Security-Policy"] = _ERROR_PAGE_POLICY
    return response


def size(max_bytes: int) -> str:
    return filesizeformat(max_bytes).replace("\xa0", " ")


def too_large_message(max_bytes: int) -> str:
    return f"the request body is larger than {size(max_bytes)}"


def anonymous_message(max_bytes: int) -> str:
    return f"sign in first: a request without credentials may carry at most {size(max_bytes)}"
