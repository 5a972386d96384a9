"""Keep one child process running: `make run`'s Celery worker.

    python -m gndp.supervisor --log var/worker.log -- celery -A gndp worker ...

The child runs in a session of its own with its output appended to the log. When it dies
(a crash, an OOM kill, kill -9), the supervisor says so on its own standard error (the
console of `make run`) and in the log, and starts it again after a backoff that doubles
with each quick death (from `--min-backoff` to `--max-backoff` seconds) and starts over
once a child has stayed up for `--stable` seconds: a worker that cannot start does not spin.

Each line the supervisor writes starts with `PREFIX`; `bench/soak.py` reads them back:

    gndp-supervisor: worker started (pid 4242)
    gndp-supervisor: worker (pid 4242) died: killed by SIGKILL after 73.2 s; restart 1 in 1 s

SIGTERM or SIGINT stop the child (SIGTERM, then SIGKILL after `--grace` seconds) and the
supervisor. So does the end of the process that started it: a supervisor whose parent went
away (`make run` killed with kill -9) stops its child instead of running on unseen.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

PREFIX = "gndp-supervisor:"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    def __init__(self, argv: list[str], *, log_path: Path, name: str = "worker", min_backoff: float = 1.0,
                 max_backoff: float = 60.0, stable: float = 60.0, grace: float = 20.0) -> None:
        self.argv, self.log_path, self.name = argv, log_path, name
        self.min_backoff, self.max_backoff, self.stable, self.grace = min_backoff, max_backoff, stable, grace
        self.child: subprocess.Popen | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._parent = os.getppid()

    # --- what it says ------------------------------------------------------------------------
    def say(self, text: str) -> None:
        line = f"{PREFIX} {text}"
        print(line, file=sys.stderr, flush=True)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(self.log_path, "a") as log:
            log.write(f"[{stamp}] {line}\n")

    # --- the child -----------------------------------------------------------------------------
    def start_child(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.child = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        self.say(f"{self.name} started (pid {self.child.pid})")
        return self.child

    def stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        _signal_group(child, signal.SIGTERM)
        try:
            child.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        backoff = self.min_backoff
        while not self._stop.is_set():
            started = time.monotonic()
            child = self.start_child()
            while child.poll() is None and not self._stop.is_set():
                self._stop.wait(0.2)
                if os.getppid() != self._parent:
                    self.say(f"the process that started me is gone: stopping the {self.name}")
                    self._stop.set()
            if self._stop.is_set():
                break
            # What the child left behind in its session (a prefork worker's pool processes)
            # goes with it: orphans would hold messages and connections the new one needs.
            _signal_group(child, signal.SIGKILL)
            lived = time.monotonic() - started
            backoff = self.min_backoff if lived >= self.stable else backoff
            self.restarts += 1
            self.say(f"{self.name} (pid {child.pid}) died: {describe_exit(child.returncode)} after {lived:.1f} s; "
                     f"restart {self.restarts} in {backoff:g} s")
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.max_backoff)
        self.stop_child()
        return 0

    def stop(self, *_args) -> None:
        self._stop.set()


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gndp.supervisor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, type=Path, help="where the child's output and these lines go")
    parser.add_argument("--name", default="worker")
    parser.add_argument("--min-backoff", type=float, default=1.0)
    parser.add_argument("--max-backoff", type=float, default=60.0)
    parser.add_argument("--stable", type=float, default=60.0, help="seconds up after which the backoff starts over")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds a stopping child gets before SIGKILL")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to keep running")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is needed after --")
    supervisor = Supervisor(command, log_path=args.log, name=args.name, min_backoff=args.min_backoff,
                            max_backoff=args.max_backoff, stable=args.stable, grace=args.grace)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
