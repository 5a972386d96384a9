"""The app under uvicorn for a test, on the test database: started, waited for, and stopped
whatever happens, since a server left behind holds the test database open and every later
test that recreates it fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from django.db import connection

from tests.conftest import ROOT, _database_url

# A loaded 2-core machine starts the app in 5 to 30 s.
START_SECONDS = 60


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_env(base: dict[str, str] | None = None, **settings: str) -> dict[str, str]:
    """The environment of a server on the test database, with these settings."""
    env = dict(os.environ if base is None else base, DATABASE_URL=_database_url(), PYTHONPATH=str(ROOT), **settings)
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = connection.settings_dict["NAME"]
    return env


def start(env: dict[str, str], log_path: Path, *, host: str = "127.0.0.1", port: int | None = None,
          args: tuple[str, ...] = ()) -> subprocess.Popen:
    """A uvicorn server of the app, ready (its sign-in page answers 200); `proc.url` is where."""
    port = port or free_port(host)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--host", host,
                                 "--port", str(port), *args], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    proc.url, proc.port = f"http://{host}:{port}", port
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                urllib.request.urlopen(proc.url + "/accounts/login/", timeout=1)
                return proc
            except urllib.error.HTTPError as exc:
                pytest.fail(f"the sign-in page answered {exc.code}:\n{exc.read()[:2000]!r}")
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen) -> None:
    """The server and anything it started, gone: asked first, then killed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running(env: dict[str, str], log_path: Path, **options) -> Iterator[subprocess.Popen]:
    proc = start(env, log_path, **options)
    try:
        yield proc
    finally:
        stop(proc)
