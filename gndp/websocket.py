"""WebSockets when the database is gone: their database calls run once more on a new
connection when the first met one the server had dropped, and a socket whose handshake
still cannot reach the database is accepted and closed at once with 1013 (Try Again
Later), never refused with a 500 (`gndp.db_faults`)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from channels.auth import AuthMiddleware, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware

from gndp import db_faults

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013  # RFC 6455: the server is overloaded or its backend unavailable


def database_call(func: Callable[..., Any]):
    """`database_sync_to_async(func)`, run once more on a new connection when the first met
    one the server had dropped before it wrote anything."""
    return database_sync_to_async(functools.partial(db_faults.once_more_if_lost, func))


class _RetryingAuthMiddleware(AuthMiddleware):
    """Channels' session authentication, with the session's user read by `database_call`."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await database_call(get_user.func)(scope)


def AuthMiddlewareStack(inner):
    return CookieMiddleware(SessionMiddleware(_RetryingAuthMiddleware(inner)))


class DatabaseGuard:
    """Outermost on the WebSocket stack: a handshake (or a consumer) that fails because the
    database is gone or busy ends with close code 1013, so that clients reconnect later;
    accepted first where it was not yet, since a refused handshake reads as HTTP 403/500."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        state = {"accepted": False, "closed": False}

        async def sending(message: dict) -> None:
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] in ("websocket.close", "websocket.http.response.start"):
                state["closed"] = True
            await send(message)

        try:
            return await self.inner(scope, receive, sending)
        except Exception as exc:
            if scope.get("type") != "websocket" or not db_faults.is_transient(exc) or state["closed"]:
                raise
            log.warning("websocket %s: database unavailable, closing with %d: %s", scope.get("path"),
                        TRY_AGAIN_LATER, exc)
            if not state["accepted"]:
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
