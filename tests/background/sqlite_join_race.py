"""Two completions racing on an AND-join, on whatever database the environment names; run
by `test_sqlite_url.py` as a process of its own with `DATABASE_URL=sqlite:///<file>`, since
the settings read the URL once, at startup.

    python -m tests.background.sqlite_join_race ROUNDS

Migrates the (fresh) database, publishes the small journey, and for each round starts a
process, brings it to its two parallel branches and completes both at once from two
threads (each with its own connection), released by a barrier. Prints one JSON line: the
database's settings and, per round, what each completion raised and how many join tasks
were made.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gndp.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from processes.services import start_process  # noqa: E402
from processes.versions import publish_journey  # noqa: E402
from tasks import services as task_services  # noqa: E402
from tasks.models import TaskInstance  # noqa: E402
from tests.factories import UserFactory  # noqa: E402
from tests.fixtures import SMALL_JOURNEY  # noqa: E402
from tests.races import race  # noqa: E402


def main(rounds: int) -> dict:
    call_command("migrate", verbosity=0)
    publish_journey(yaml.safe_load(SMALL_JOURNEY))
    clerk = UserFactory(username="clara", roles=["role-clerk"])
    checker = UserFactory(username="chet", roles=["role-checker"])
    results = []
    for _ in range(rounds):
        process = start_process(workflow_id="journey-small", user=clerk)
        task_services.complete_task(TaskInstance.objects.get(process=process, atom_id="atom-apply").pk, user=clerk,
                                    result={"amount": 1, "score": 700})
        branches = (TaskInstance.objects.get(process=process, atom_id="atom-a"),
                    TaskInstance.objects.get(process=process, atom_id="atom-b"))
        task_services.start_task(branches[1].pk, user=checker)
        outcomes = race(2, lambda i: task_services.complete_task(branches[i].pk, user=(clerk, checker)[i], result={}))
        results.append({
            "errors": [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, Exception)],
            "joins": TaskInstance.objects.filter(process=process, atom_id="atom-join").count(),
        })
    settings_dict = connection.settings_dict
    return {"vendor": connection.vendor, "name": str(settings_dict["NAME"]), "options": settings_dict["OPTIONS"],
            "journal_mode": connection.cursor().execute("PRAGMA journal_mode").fetchone()[0],
            "rounds": results}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
