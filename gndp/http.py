"""The ASGI handler for HTTP: Django's synchronous request path, run as one call in a thread.

Every middleware and view here is synchronous. Django's own `ASGIHandler` builds an async
middleware chain around them anyway, so a request crosses between the event loop and a
thread four times (into the middleware, back out to resolve the URL, into the view, and in
again to close the response), and it starts a new thread for every request (each request
gets a fresh `ThreadSensitiveContext`, hence a fresh single-thread executor). On the API's
hot path those crossings cost more CPU than the engine's work for a completion.

Here the whole synchronous part runs as one call on a thread of a fixed pool: the request
signals, the middleware chain and the view (Django's `BaseHandler.get_response`, the path
WSGI servers use), and, for a response already rendered, its closing, so that the
`request_finished` handlers release the database connections of the thread that used them.
A streaming response (a file download) is closed after it was sent; the connections are
released before it is sent. The event loop only reads the body and sends the response.
It reads the body within the limit of the request's path, and a request without
credentials only a small one (gndp.body_limits): larger ones are answered 413 before the
body is read, where Django's handler would have spooled all of it first.

`GNDP_HTTP_THREADS` (default 2, at most the database pool's size) is how many requests a
process works on at once, each holding at most one pooled connection. More threads overlap
more database waits but take turns at the one interpreter lock: on the API benchmark (two
processes on two cores) two threads gave the same throughput as eight and a third of the
tail latency. Run more processes (uvicorn --workers) for more cores.

A request that meets a database connection the server dropped (`pg_terminate_backend`, a
restart) before it wrote anything runs once more, from the start, on a new connection; one
that meets it after writing, or finds no database at all, answers 503 with `Retry-After`
(`gndp.db_faults`), never 500.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from django import db
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix

from gndp import body_limits, db_faults

logger = logging.getLogger(__name__)


def thread_count() -> int:
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    connections = pool.get("max_size", 4) if isinstance(pool, dict) else None
    wanted = max(1, int(os.environ.get("GNDP_HTTP_THREADS", "2")))
    return min(wanted, connections) if connections else wanted


class BodyRefused(Exception):
    def __init__(self, message: str, max_bytes: int) -> None:
        super().__init__(message)
        self.message, self.max_bytes = message, max_bytes


class HTTPHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._executor = ThreadPoolExecutor(thread_count(), thread_name_prefix="gndp-http")
        self._respond_in_thread = self._in_thread(self._respond)

    def _in_thread(self, func):
        # asgiref's bridge rather than the loop's run_in_executor: code in the thread that
        # calls async_to_sync (the in-memory channel layer) is sent back to this loop.
        return SyncToAsync(func, thread_sensitive=False, executor=self._executor)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file, size = await self.read_limited_body(scope, receive)
        except RequestAborted:
            return
        except BodyRefused as refused:
            response = await self._in_thread(body_limits.refusal)(scope["path"], refused.message, refused.max_bytes)
            await self.send_response(response, send)
            return
        if body_limits.declared_length(scope) is None and size:
            # A chunked body, read whole now: Django parses forms and files only up to the
            # declared length, and would have found a chunked upload empty.
            scope = {**scope, "headers": [*scope["headers"], (b"content-length", str(size).encode())]}
        try:
            response = await self._respond_in_thread(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await self._in_thread(response.close)()
        finally:
            body_file.close()

    async def read_limited_body(self, scope, receive):
        """The body and its size, spooled as Django's `read_body` does, within the path's limit
        (gndp.body_limits): a declared length over it is refused before anything is read,
        a chunked body as soon as it passes it; without credentials, past the small
        anonymous limit. BodyRefused then; the rest of the body is never read."""
        path = scope["path"]
        limit = body_limits.limit_for(path)
        allowed = min(limit, body_limits.anonymous_limit())
        declared = body_limits.declared_length(scope)
        if declared is not None:
            if declared > limit:
                raise BodyRefused(body_limits.too_large_message(limit), limit)
            if declared > allowed:
                allowed = await self._allowance(scope, limit, allowed)
        body_file = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise RequestAborted()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > allowed:
                    if size > limit:
                        raise BodyRefused(body_limits.too_large_message(limit), limit)
                    allowed = await self._allowance(scope, limit, allowed)
                body_file.write(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:
            body_file.close()
            raise
        body_file.seek(0)
        return body_file, size

    async def _allowance(self, scope, limit: int, anonymous: int) -> int:
        """The path's limit for a caller with credentials; BodyRefused for one without."""
        if await self._in_thread(body_limits.has_credentials)(scope):
            return limit
        raise BodyRefused(body_limits.anonymous_message(anonymous), anonymous)

    def _respond(self, scope, body_file):
        set_script_prefix(get_script_prefix(scope))
        start = db_faults.mark()
        response = self._attempt(scope, body_file)
        if response.status_code >= 500 and db_faults.lost_since(start) and not db_faults.wrote_since(start):
            # A connection the server had dropped (pg_terminate_backend, a restart), met
            # before the request wrote anything: once more, from the start, on a new one.
            # The first answer is closed afterwards: closing it closes the request's body.
            logger.warning("%s %s met a dropped database connection before writing; trying once more",
                           scope.get("method"), scope.get("path"))
            first = response
            db_faults.discard_connections()
            body_file.seek(0)
            start = db_faults.mark()
            try:
                response = self._attempt(scope, body_file)
            finally:
                self._finish(first)
        if response.status_code >= 500 and not response.streaming and db_faults.failed_since(start):
            # The database is gone, or went while this request had written: 503 and
            # Retry-After, never a 500 (nothing about the request was wrong).
            self._finish(response)
            response = db_faults.unavailable_response(scope.get("path", ""))
            response._handler_class = self.__class__
            response._gndp_closed = True  # its request was finished with the one it replaces
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks on its own
        if response.streaming:
            db.close_old_connections()
        else:
            self._finish(response)
        return response

    def _attempt(self, scope, body_file):
        signals.request_started.send(sender=self.__class__, scope=scope)
        # Django closes a request's body once read; kept open (closed by `__call__`), it can
        # be read again by a second attempt.
        request, response = self.create_request(scope, _KeptOpen(body_file))
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        return response

    @staticmethod
    def _finish(response) -> None:
        """Close the response: its `request_finished` releases the database connections."""
        if not getattr(response, "_gndp_closed", False):
            response._gndp_closed = True
            response.close()


class _KeptOpen:
    """A request body whose `close` only rewinds it, for a request that may run twice."""

    def __init__(self, file) -> None:
        self._file = file

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __iter__(self):
        return iter(self._file)

    def close(self) -> None:
        self._file.seek(0)
