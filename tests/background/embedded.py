"""An app as `make run` starts it, with no Redis (the in-memory channel layer and the folder
queue), on a fresh SQLite file or on the test's PostgreSQL database, set up through the
management commands: servers, a worker (supervised, when asked), real sign-ins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests
from websockets.sync.client import connect

from tests.background.conftest import Child, app_env, wait_until, worker_argv
from tests.conftest import ROOT
from tests.fixtures import SMALL_JOURNEY
from tests.reliability.conftest import free_port

PASSWORD = "tail-test-1234"


class EmbeddedApp:
    """A server and a worker as `make run` starts them without Redis, on `database`."""

    def __init__(self, tmp_path, database: str):
        self.tmp_path = tmp_path
        var = tmp_path / "var"
        if database == "sqlite":
            self.env = app_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'app.sqlite3'}", SQLITE_PATH=None)
        else:
            self.env = app_env(tmp_path)
        # No Redis: the in-memory channel layer and the folder queue, in a folder of its own.
        self.env.update(GNDP_VAR_DIR=str(var), LOG_LEVEL="WARNING")
        self.env.pop("REDIS_URL", None)
        self.database = database
        self.children: list[Child] = []
        self.tokens: dict[str, str] = {}

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def prepare(self, *, demo: bool = False) -> None:
        if self.database == "sqlite":
            self.manage("migrate", "--noinput")
        if demo:
            self.manage("seed_demo")
        journey = self.tmp_path / "small.yaml"
        journey.write_text(SMALL_JOURNEY)
        self.manage("load_journey", str(journey))
        for name, role in (("clara", "role-clerk"), ("chet", "role-checker")):
            self.tokens[name] = self.manage("create_workflow_user", name, "--roles", role, "--password",
                                            PASSWORD).strip().splitlines()[-1]

    def start(self, servers: int = 1, *, worker: list[str] | None = None, worker_log: Path | None = None) -> None:
        """`servers` server processes (as `uvicorn --workers N` runs them) and one worker
        (`worker`: its command line instead of a plain solo worker's, writing to `worker_log`
        when that is not its output, as under the supervisor)."""
        self.urls = []
        for number in range(servers):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = Child(f"server-{number}", [sys.executable, "-m", "uvicorn", "gndp.asgi:application", "--host",
                                                "127.0.0.1", "--port", str(port), "--lifespan", "off",
                                                "--no-access-log"], self.env, self.tmp_path)
            self.children.append(server)
            self.urls.append(url)
        self.url = self.urls[0]
        worker = Child("worker", worker or worker_argv("tail"), self.env, self.tmp_path)
        self.children.append(worker)
        if worker_log is None:
            worker.wait_for_log("ready.")
        else:
            wait_until(lambda: worker_log.exists() and "ready." in worker_log.read_text(), 60, "the worker")
        for url, server in zip(self.urls, self.children):
            def up() -> bool:
                if server.proc.poll() is not None:
                    raise AssertionError(f"{server.name} exited:\n{server.log()[-3000:]}")
                try:
                    return requests.get(url + "/accounts/login/", timeout=1, proxies={"http": None}).ok
                except requests.RequestException:
                    return False

            wait_until(up, 40, f"{server.name} to answer")

    def stop(self) -> None:
        for child in self.children:
            child.stop()

    def api(self, user: str, method: str, path: str, body=None, *, url: str | None = None):
        response = requests.request(method, (url or self.url) + path, json=body, timeout=30, proxies={"http": None},
                                    headers={"Authorization": f"Token {self.tokens[user]}"})
        assert response.status_code < 300, (response.status_code, response.text[:500])
        return response.json()

    def inbox_socket(self, user: str, path: str = "/ws/inbox/"):
        """A socket (/ws/inbox/ unless told) with the session of a real sign-in."""
        session = requests.Session()
        session.trust_env = False
        session.get(self.url + "/accounts/login/", timeout=10)
        signed_in = session.post(self.url + "/accounts/login/", timeout=10, allow_redirects=False, data={
            "username": user, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": self.url + "/accounts/login/"})
        assert signed_in.status_code == 302, signed_in.text[:500]
        return connect(self.url.replace("http://", "ws://") + path, origin=self.url, proxy=None, open_timeout=5,
                       additional_headers={"Cookie": f"sessionid={session.cookies['sessionid']}"})
