"""What a task completion costs the completing thread, in instructions counted by callgrind:
the one figure of `make bench` that the machine's speed does not move.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gndp_bench .venv/bin/python bench/instructions.py [--api]
    GNDP_PLAIN=writes ... bench/instructions.py      # with a trick set aside (steps.tricks): its gain

The machines here change speed by the minute, by half or more, so a change that saves 5% of
a completion is lost in the noise of any timed run; an instruction count repeats within half
a percent. The engine benchmark's loop (a chain of human steps, each routed least-busy, one
person) runs twice under valgrind's callgrind, on fresh copies of one seeded database,
completing 2 and then 7 steps of 40 processes; the difference between the two counts of the
completing thread, over the 200 completions only the second run made, is what one completion
costs: the services, the engine, Django, psycopg, everything but the database server and the
background threads. The two runs go at once (one core each); valgrind slows them some fifty
times. Prints one JSON line (`completion_instructions`); without valgrind it says so on
stderr and prints nothing, so that `bench/check.py` reports it as not run.

`--api` counts a client's round instead (`api_round_instructions`): the inbox read and the
completion of its first task through Django's request handling and DRF, with a token and an
Idempotency-Key, on the counted thread (the ASGI server's own hand-off to a thread is not).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("DEBUG", "0")

PROCESSES = 40
FEW, MORE = 2, 7  # steps completed per process by the two runs
DATABASE = "gndp_bench_instructions"


def database_url(name: str) -> str:
    url = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
    return urlunsplit(url._replace(path=f"/{name}"))


def admin(*statements: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def seed() -> None:
    """The template both runs copy (in a process of its own, whose connections end with it):
    migrated, the journey published, its one person made."""
    import django

    django.setup()
    from django.core.management import call_command

    from bench.engine import chain_journey
    from processes.versions import publish_journey
    from tasks.people import save_workflow_user

    call_command("migrate", verbosity=0)
    publish_journey(chain_journey(10))
    save_workflow_user("bench-user", roles=["role-bench"])


def complete(steps: int) -> None:
    """The counted run (under valgrind): start the processes, complete `steps` of each."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from notifications import relay
    from processes.services import start_processes
    from tasks.models import TaskInstance
    from tasks.services import complete_task

    user = get_user_model().objects.get(username="bench-user")
    processes = start_processes(workflow_id="journey-bench", contexts=[{}] * PROCESSES, user=user)
    for step in range(steps):
        pending = TaskInstance.objects.filter(status="pending", process__in=processes).values_list("pk", flat=True)
        for task_id in list(pending):
            complete_task(task_id, user=user, result={f"v{step}": step})
    relay.flush(timeout=60)


def api_rounds(steps: int) -> None:
    """The API's counted run: `steps` rounds of every process, each the inbox read and the
    completion of its first task, as a client does them (token, Idempotency-Key), through
    Django's request handling, DRF and the services on this thread."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from notifications import relay
    from processes.services import start_processes

    user = get_user_model().objects.get(username="bench-user")
    token = Token.objects.get_or_create(user=user)[0].key
    start_processes(workflow_id="journey-bench", contexts=[{}] * PROCESSES, user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for step in range(steps):
        for _ in range(PROCESSES):
            task = client.get("/api/tasks/inbox?limit=1").json()[0]
            answer = client.post(f"/api/tasks/{task['id']}/complete", {"result": {f"v{step}": step}},
                                 content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"{task['id']}-{step}")
            assert answer.status_code == 200, answer.content
    relay.flush(timeout=60)


def counted(steps: int, workdir: Path) -> subprocess.Popen:
    name = f"{DATABASE}_{steps}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name} TEMPLATE {DATABASE}")
    env = dict(os.environ, DATABASE_URL=database_url(name))
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes",
         f"--callgrind-out-file={workdir / f'{steps}.out'}", sys.executable, __file__, "--complete", str(steps)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def main_thread_instructions(workdir: Path, steps: int) -> int:
    # --separate-threads: one file a thread, the first the main thread's.
    for line in (workdir / f"{steps}.out-01").read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"instructions: no summary in the callgrind output of the run of {steps} steps")


def main() -> None:
    if sys.argv[1:2] == ["--seed"]:
        seed()
        return
    if sys.argv[1:2] == ["--complete"]:
        (api_rounds if os.environ.get("BENCH_API") == "1" else complete)(int(sys.argv[2]))
        return
    api = "--api" in sys.argv[1:]
    if api:
        os.environ["BENCH_API"] = "1"
    if not shutil.which("valgrind"):
        print("instructions: valgrind is not installed (apt-get install valgrind); not run", file=sys.stderr)
        return
    admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}")
    subprocess.run([sys.executable, __file__, "--seed"], env=dict(os.environ, DATABASE_URL=database_url(DATABASE)),
                   cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            runs = {steps: counted(steps, workdir) for steps in (FEW, MORE)}
            for steps, run in runs.items():
                _, errors = run.communicate()
                if run.returncode != 0:
                    raise SystemExit(f"instructions: the run of {steps} steps failed: {errors.strip()[-2000:]}")
            few, more = (main_thread_instructions(workdir, steps) for steps in (FEW, MORE))
        finally:
            admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    for name in (f"{DATABASE}_{FEW}", f"{DATABASE}_{MORE}", DATABASE)))
    completions = PROCESSES * (MORE - FEW)
    figure = "api_round_instructions" if api else "completion_instructions"
    print(json.dumps({
        "benchmark": "instructions-api" if api else "instructions",
        figure: round((more - few) / completions),
        "completions_counted": completions,
        "plain": os.environ.get("GNDP_PLAIN", ""),
        "python": sys.version.split()[0],
        "tool": "valgrind --tool=callgrind, the completing thread",
    }))


if __name__ == "__main__":
    main()
