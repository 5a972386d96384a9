"""With seeded history: a process held back past its step's learned limit is flagged
stuck, a process taking a rare path is flagged unusual, a step far outside its atom's
distribution is flagged, and ordinary ones are not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.detection import detect, learn_step_stats
from anomalies.models import Anomaly
from anomalies.jobs import detect_anomalies
from processes.services import start_process
from tasks.models import TaskInstance

from .conftest import HOUR, MINUTE, retime, seed_history, work

pytestmark = pytest.mark.django_db(transaction=True)


def flagged(kind: str) -> dict[int, Anomaly]:
    return {a.process_id: a for a in Anomaly.objects.filter(kind=kind, resolved_at__isnull=True)}


def test_the_limit_is_learned_per_step_from_its_history(team):
    seed_history(team, good=12)

    stats = learn_step_stats(timezone.now())

    apply, join = stats[("journey-small", "atom-apply")], stats[("journey-small", "atom-join")]
    assert apply.samples == join.samples == 12
    assert 50 * 60 <= apply.p50 <= 74 * 60 and 480 * 60 <= join.p50 <= 720 * 60
    assert apply.stuck_after == pytest.approx(1.5 * apply.p95)
    assert join.stuck_after > 5 * apply.stuck_after


def test_a_process_held_back_past_its_steps_learned_limit_is_stuck_and_ordinary_ones_are_not(team):
    seed_history(team, good=12)
    held = start_process(workflow_id="journey-small", user=team.sam)  # waits at atom-apply (limit < 2 h)
    at_join = work(start_process(workflow_id="journey-small", user=team.sam), team, until="atom-join")
    now = timezone.now()

    detect(now=now + HOUR)  # an hour without progress: usual for both steps
    assert flagged("stuck") == {}

    detect(now=now + 3 * HOUR)  # three hours: past apply's limit, well within join's (about 18 h)
    stuck = flagged("stuck")
    assert set(stuck) == {held.pk}
    anomaly = stuck[held.pk]
    apply_task = TaskInstance.objects.get(process=held, atom_id="atom-apply")
    assert anomaly.task_id == apply_task.pk and anomaly.atom_id == "atom-apply"
    assert anomaly.reason.startswith("No progress for 3h 0m while at “Apply”: that step usually finishes within")
    assert "(95th percentile of 13 completions)" in anomaly.reason  # the history and at_join's
    assert anomaly.details["idle_seconds"] > anomaly.details["limit_seconds"]
    assert at_join.pk not in stuck

    detect(now=now + 3 * HOUR)  # again: the same anomaly, not a second one
    assert Anomaly.objects.filter(kind="stuck", process=held).count() == 1

    # it moves on: the next run resolves it
    work(held, team, until="atom-join")
    detect(now=timezone.now() + 30 * MINUTE)
    anomaly.refresh_from_db()
    assert anomaly.resolved_at is not None


def test_a_process_taking_a_rare_path_is_unusual_and_ordinary_ones_are_not(team):
    history = seed_history(team, good=24, bad=1)
    rare = work(start_process(workflow_id="journey-small", user=team.sam), team, until="atom-manual", score=500)
    ordinary = work(start_process(workflow_id="journey-small", user=team.sam), team, until="atom-join")

    detect()

    unusual = flagged("unusual_path")
    assert rare.pk in unusual
    assert unusual[rare.pk].reason == ("Rare path: it went through “Manual review”, which 1 of the last 25 completed "
                                       "processes of this journey version did (4.0%).")
    assert unusual[rare.pk].atom_id == "atom-manual"
    assert history[-1].pk in unusual  # the one earlier process that took it: 0 of the 24 others did
    assert ordinary.pk not in unusual
    assert not set(unusual) & {p.pk for p in history[:-1]}


def test_a_step_far_outside_its_atoms_durations_is_unusual_and_ordinary_ones_are_not(team):
    history = seed_history(team, good=15)
    slow = TaskInstance.objects.get(process=history[0], atom_id="atom-apply")
    fast = TaskInstance.objects.get(process=history[1], atom_id="atom-apply")
    retime(slow, 20 * HOUR)
    retime(fast, timedelta(seconds=5))

    detect()

    unusual = {a.task_id: a for a in Anomaly.objects.filter(kind="unusual_duration")}
    assert set(unusual) == {slow.pk, fast.pk}
    assert unusual[slow.pk].reason.startswith("“Apply” took 20h 0m; it usually takes")
    assert unusual[slow.pk].details["direction"] == "longer"
    assert unusual[fast.pk].reason.startswith("“Apply” took only 5s; it usually takes")


def test_without_enough_history_nothing_is_judged(team):
    seed_history(team, good=3)
    start_process(workflow_id="journey-small", user=team.sam)

    result = detect(now=timezone.now() + 48 * HOUR)

    assert result.found == {} and not Anomaly.objects.exists()


def test_the_periodic_job_runs_the_detection(team):
    seed_history(team, good=12)
    start_process(workflow_id="journey-small", user=team.sam)

    assert detect_anomalies.delay().get() == {"found": {}, "opened": 0, "resolved": 0}
