"""Seeded history for the detector: processes of the small journey run through the real
services, then their steps re-timed (the step records, never the append-only event log)
as if they had been worked over the past days."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from processes.models import ProcessInstance
from processes.services import start_process
from tasks import services as task_services
from steps.changes import change_tasks
from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# How long each human step of the small journey usually takes, in minutes (low, high).
USUAL_MINUTES = {"atom-apply": (50, 74), "atom-a": (20, 44), "atom-b": (30, 54), "atom-join": (480, 720),
                 "atom-manual": (60, 120)}


@dataclass
class Team:
    sam: object
    clara: object
    chet: object
    mona: object
    admin: object
    stranger: object


@pytest.fixture
def team(small_version) -> Team:
    sam = UserFactory(username="sam", permissions=[START_ANY_JOURNEY])  # starts processes; in no role
    mona = UserFactory(username="mona")
    clara = UserFactory(username="clara", roles=["role-clerk"])
    chet = UserFactory(username="chet", roles=["role-checker"])
    admin = UserFactory(username="watcher")
    admin.is_staff = True
    admin.save()
    admin.user_permissions.set(Permission.objects.filter(codename__in=["view_all_processes", "view_all_tasks"]))
    Profile.objects.filter(user=clara).update(manager=mona)
    return Team(sam, clara, chet, mona, admin, UserFactory(username="stranger"))


def work(process, team: Team, *, until: str | None = None, score: int = 700) -> ProcessInstance:
    """Work the process's human steps as its people would; stop when `until` is open."""
    for _ in range(20):
        process.refresh_from_db()
        if process.status != "running":
            return process
        tasks = list(TaskInstance.objects.filter(process=process, kind="human", status__in=["pending", "in_progress"])
                     .order_by("pk"))
        if until and any(t.atom_id == until for t in tasks):
            return process
        for task in tasks:
            if task.assigned_to is None:
                task_services.start_task(task.pk, user=team.chet)
                task.refresh_from_db()
            result = {"amount": 1000, "score": score} if task.atom_id == "atom-apply" else {}
            task_services.complete_task(task.pk, user=task.assigned_to, result=result)
    raise AssertionError(f"process {process.pk} did not get anywhere")


def seed_history(team: Team, *, good: int, bad: int = 0, seed: int = 7) -> list[ProcessInstance]:
    """`good` processes through the automatic branch and `bad` through manual review, all
    completed, their human steps re-timed with the usual durations over the past days."""
    rng = random.Random(seed)
    now = timezone.now()
    done = []
    for index, score in enumerate([700] * good + [500] * bad):
        process = work(start_process(workflow_id="journey-small", user=team.sam), team, score=score)
        assert process.status == "completed", process.status
        finished = now - (index + 1) * 3 * HOUR
        for task in TaskInstance.objects.filter(process=process, kind="human"):
            low, high = USUAL_MINUTES[task.atom_id]
            retime(task, rng.uniform(low, high) * MINUTE, finished=finished)
        done.append(process)
    return done


def retime(task: TaskInstance, took: timedelta, *, finished=None) -> None:
    finished = finished or task.completed_at
    change_tasks(TaskInstance.objects.filter(pk=task.pk), created_at=finished - took, started_at=finished - took,
                                                   completed_at=finished)
