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

`GNDP_HTTP_THREADS` (default 2, at most the database pool's size) is how many requests a
process works on at once, each holding at most one pooled connection. More threads overlap
more database waits but take turns at the one interpreter lock: on the API benchmark (two
processes on two cores) two threads gave the same throughput as eight and a third of the
tail latency. Run more processes (uvicorn --workers) for more cores.
"""

from __future__ import annotations

import os
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


def thread_count() -> int:
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    connections = pool.get("max_size", 4) if isinstance(pool, dict) else None
    wanted = max(1, int(os.environ.get("GNDP_HTTP_THREADS", "2")))
    return min(wanted, connections) if connections else wanted


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
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await self._respond_in_thread(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await self._in_thread(response.close)()
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks on its own
        if response.streaming:
            db.close_old_connections()
        else:
            response.close()
        return response
