"""WebSocket helpers for the access tests: sockets opened with a real session cookie against
the ASGI application (and the configured channel layer: Redis when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import json

from channels.testing import WebsocketCommunicator
from django.test import Client

from gndp.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def browser_of(user) -> Client:
    """A signed-in browser: its own session."""
    client = Client()
    client.force_login(user)
    return client


def cookie(client: Client) -> tuple[bytes, bytes]:
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


async def opened(path: str, client: Client) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=[ORIGIN, cookie(client)])
    connected, _ = await socket.connect(timeout=5)
    assert connected, f"{path} refused"
    return socket


async def refusal(path: str, client: Client) -> int | None:
    """The close code of a refused handshake; None when it was accepted."""
    socket = WebsocketCommunicator(application, path, headers=[ORIGIN, cookie(client)])
    connected, code = await socket.connect(timeout=5)
    await socket.disconnect()
    return None if connected else code


async def until_closed(socket: WebsocketCommunicator, timeout: float = 5.0) -> tuple[list[dict], int | None]:
    """The events a socket delivers until the server closes it, and the close code; None
    when it was still open after `timeout` seconds (then it is disconnected)."""
    events = []
    deadline = asyncio.get_running_loop().time() + timeout
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        # receive_nothing waits without cancelling the application, where a timed-out
        # receive_output would
        if await socket.receive_nothing(timeout=min(left, 0.1)):
            continue
        output = await socket.receive_output()
        if output["type"] == "websocket.close":
            return events, output.get("code")
        events.append(json.loads(output["text"]))
    await socket.disconnect()  # still open: the test fails on the code, not on a dangling socket
    return events, None


async def drain(socket: WebsocketCommunicator, settle: float = 1.0, first: float | None = None) -> list[dict]:
    """Every event a socket delivers until it has been quiet for `settle` seconds; with
    `first`, the first may take that long (a busy machine's publisher is late)."""
    events = []
    if first is not None and not await socket.receive_nothing(timeout=first):
        events.append(await socket.receive_json_from())
    while not await socket.receive_nothing(timeout=settle):
        events.append(await socket.receive_json_from())
    return events
