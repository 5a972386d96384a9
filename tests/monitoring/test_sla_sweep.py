"""The SLA sweep with a controllable clock: `sweep(now=...)` fires what is due at `now`."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from monitoring import sla
from monitoring.clocks import restart_clocks
from monitoring.models import AtomSLAOverride
from processes import services as process_services
from processes.models import ProcessEvent
from tasks import services as task_services
from steps.changes import change_tasks
from tasks.models import TaskInstance

from .conftest import HOUR, start_small

pytestmark = pytest.mark.django_db


def sla_events(process) -> Counter:
    return Counter(ProcessEvent.objects.filter(process=process, type__in=["sla.warning", "sla.breached",
                                                                        "task.escalated"])
                   .values_list("type", flat=True))


def test_a_task_passing_its_target_warns_once(small_version, managed_clerk):
    process, task = start_small(managed_clerk)
    created = task.created_at

    before = sla.sweep(now=created + 3 * HOUR)
    first = sla.sweep(now=created + 5 * HOUR)
    again = sla.sweep(now=created + 6 * HOUR)

    task.refresh_from_db()
    assert (before.warned, first.warned, again.warned) == (0, 1, 0)
    assert task.sla_warned_at == created + 5 * HOUR and task.sla_breached_at is None
    assert sla_events(process) == {"sla.warning": 1}
    warning = ProcessEvent.objects.get(process=process, type="sla.warning")
    assert warning.task_id == task.pk and warning.payload["assigned_to"] == "clara"
    assert warning.payload["late_by_seconds"] == pytest.approx(3600, abs=1)


def test_a_task_passing_its_threshold_escalates_once_to_the_manager(small_version, managed_clerk, manager):
    process, task = start_small(managed_clerk)
    created = task.created_at

    sla.sweep(now=created + 5 * HOUR)
    breach = sla.sweep(now=created + 9 * HOUR)
    again = sla.sweep(now=created + 10 * HOUR)

    task.refresh_from_db()
    assert (breach.breached, breach.escalated, again.breached, again.escalated) == (1, 1, 0, 0)
    assert task.assigned_to == manager and task.priority == "high" and task.escalated
    assert task.sla_breached_at == created + 9 * HOUR
    assert sla_events(process) == {"sla.warning": 1, "sla.breached": 1, "task.escalated": 1}
    types = list(ProcessEvent.objects.filter(process=process).order_by("id").values_list("type", flat=True))
    assert types[-2:] == ["sla.breached", "task.escalated"]


def test_after_an_hour_of_downtime_every_timer_still_fires_once(small_version, managed_clerk, manager):
    started = [start_small(managed_clerk) for _ in range(5)]
    latest = max(task.created_at for _, task in started)

    # Nothing swept for 9 hours: the first sweep catches up, in batches of two.
    caught_up = sla.sweep(now=latest + 9 * HOUR, batch_size=2)
    later = [sla.sweep(now=latest + 9 * HOUR + i * HOUR, batch_size=2) for i in range(1, 3)]

    assert (caught_up.warned, caught_up.breached, caught_up.escalated) == (5, 5, 5)
    assert all((r.warned, r.breached, r.escalated) == (0, 0, 0) for r in later)
    for process, _ in started:
        assert sla_events(process) == {"sla.warning": 1, "sla.breached": 1, "task.escalated": 1}
    assert TaskInstance.objects.filter(atom_id="atom-apply", assigned_to=manager).count() == 5


def test_a_suspended_process_does_not_breach_and_its_clock_resumes_with_it(small_version, managed_clerk):
    process, task = start_small(managed_clerk)
    process_services.suspend_process(process.pk, user=managed_clerk)
    task.refresh_from_db()
    paused_at = task.sla_paused_at

    while_suspended = sla.sweep(now=task.created_at + 20 * HOUR)

    assert paused_at is not None
    assert (while_suspended.warned, while_suspended.breached) == (0, 0)
    assert sla_events(process) == {}

    process_services.resume_process(process.pk, user=managed_clerk)
    resumed = TaskInstance.objects.get(pk=task.pk)
    pause = resumed.sla_paused_for
    assert resumed.sla_paused_at is None and pause > timedelta(0)
    assert resumed.due_date == task.due_date + pause and resumed.escalate_at == task.escalate_at + pause
    assert sla.sweep(now=resumed.escalate_at + HOUR).breached == 1


def test_the_clock_moves_forward_by_the_whole_pause(small_version, managed_clerk):
    process, task = start_small(managed_clerk)
    process_services.suspend_process(process.pk, user=managed_clerk)
    paused_at = TaskInstance.objects.get(pk=task.pk).sla_paused_at

    restart_clocks(process.pk, now=paused_at + 10 * HOUR)

    task_after = TaskInstance.objects.get(pk=task.pk)
    assert task_after.due_date == task.due_date + 10 * HOUR
    assert task_after.escalate_at == task.escalate_at + 10 * HOUR
    assert task_after.sla_paused_for == 10 * HOUR


def test_a_suspended_process_is_skipped_even_without_paused_clocks(small_version, managed_clerk):
    process, task = start_small(managed_clerk)
    process_services.suspend_process(process.pk, user=managed_clerk)
    change_tasks(TaskInstance.objects.filter(pk=task.pk), sla_paused_at=None)  # as if suspended before this feature

    result = sla.sweep(now=task.created_at + 20 * HOUR)

    assert (result.warned, result.breached) == (0, 0)


def test_a_completed_task_is_never_escalated(small_version, managed_clerk, manager):
    process, task = start_small(managed_clerk)
    task_services.complete_task(task.pk, user=managed_clerk, result={"amount": 1, "score": 700})

    result = sla.sweep(now=task.created_at + 20 * HOUR)

    task.refresh_from_db()
    assert task.status == "completed" and task.assigned_to == managed_clerk and not task.escalated
    assert (result.warned, result.breached, result.escalated) == (0, 0, 0)
    assert sla_events(process) == {}


def test_with_nobody_to_escalate_to_the_breach_is_still_recorded_once(small_version, clerk):
    process, task = start_small(clerk)  # clara has no manager

    first = sla.sweep(now=task.created_at + 9 * HOUR)
    again = sla.sweep(now=task.created_at + 10 * HOUR)

    task.refresh_from_db()
    assert (first.breached, first.escalated, again.breached) == (1, 0, 0)
    assert task.sla_breached_at is not None and task.assigned_to == clerk and not task.escalated
    assert sla_events(process) == {"sla.warning": 1, "sla.breached": 1}


def test_an_admin_override_retimes_open_tasks_before_the_sweep_fires(small_version, managed_clerk):
    process, task = start_small(managed_clerk)
    AtomSLAOverride.objects.create(journey_id="journey-small", atom_id="atom-apply", target=HOUR)

    result = sla.sweep(now=task.created_at + 2 * HOUR)

    retimed = TaskInstance.objects.get(pk=task.pk)
    assert result.retimed == 1 and result.warned == 1
    assert retimed.due_date == task.created_at + HOUR
    assert retimed.escalate_at == task.escalate_at  # not overridden: the journey's 8 h
    assert sla.sweep(now=task.created_at + 3 * HOUR).retimed == 0  # already in line

    AtomSLAOverride.objects.all().delete()
    assert sla.retime_atom("journey-small", "atom-apply") == 1
    back = TaskInstance.objects.get(pk=task.pk).due_date
    assert abs(back - task.due_date) < timedelta(seconds=1)  # the journey's 4 h again


def test_unassigned_queue_task_escalates_to_the_roles_escalation_manager(
        small_version, clerk, checker, manager, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    from tasks.models import RoleSettings

    RoleSettings.objects.create(group=Group.objects.get(name="role-checker"), escalation_manager=manager)
    process, task = start_small(clerk)
    with django_capture_on_commit_callbacks(execute=True):  # the system step runs after commit
        task_services.complete_task(task.pk, user=clerk, result={"amount": 1, "score": 500})  # -> atom-manual
    manual = TaskInstance.objects.get(process=process, atom_id="atom-manual")
    change_tasks(TaskInstance.objects.filter(pk=manual.pk), escalate_at=manual.created_at + HOUR)

    result = sla.sweep(now=manual.created_at + 2 * HOUR)

    manual.refresh_from_db()
    assert result.escalated == 1 and manual.assigned_to == manager



def test_the_beat_task_runs_the_sweep(small_version, managed_clerk):
    from monitoring.jobs import sweep_sla

    start_small(managed_clerk)

    result = sweep_sla.apply().get()

    assert result["warned"] == 0 and result["breached"] == 0 and "seconds" in result


def test_a_failed_process_is_left_for_its_incident_and_the_others_still_warn(small_version, managed_clerk):
    from processes.models import ProcessInstance

    started = [start_small(managed_clerk) for _ in range(3)]
    failed, failed_task = started[0]
    ProcessInstance.objects.filter(pk=failed.pk).update(status="failed")
    # The failed process's task is the most overdue: it must not hold up the others.
    change_tasks(TaskInstance.objects.filter(pk=failed_task.pk), due_date=failed_task.due_date - 10 * HOUR)

    result = sla.sweep(now=max(t.due_date for _, t in started) + HOUR, batch_size=1)

    assert result.warned == 2
    assert sla_events(failed) == {}
