"""The dashboard's reads: the timeline, queues, workload and the whole page in one call."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitoring import selectors
from processes.errors import Forbidden, NotFound
from tasks import services as task_services
from steps.changes import change_tasks
from tasks.models import Profile, TaskInstance
from tests.factories import UserFactory

from .conftest import HOUR, start_small

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    user = UserFactory(username="root")
    user.is_superuser = user.is_staff = True
    user.save()
    return user


def test_the_timeline_sets_each_step_against_its_target(small_version, managed_clerk, manager):
    process, task = start_small(managed_clerk)
    task_services.complete_task(task.pk, user=managed_clerk, result={"amount": 1, "score": 700})
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk=task.pk), created_at=now - 5 * HOUR, due_date=now - HOUR, completed_at=now)

    timeline = selectors.process_timeline(selectors.scope_for(manager), process.pk, now=now)

    apply = timeline["steps"][0]
    assert apply["atom_id"] == "atom-apply" and apply["status"] == "completed"
    assert apply["actual_seconds"] == pytest.approx(5 * 3600) and apply["expected_seconds"] == pytest.approx(4 * 3600)
    assert apply["late"] is True and apply["assigned_to"] == "clara"
    assert {step["atom_id"] for step in timeline["not_run"]} >= {"atom-join", "atom-done"}
    assert timeline["process"]["id"] == process.pk and timeline["process"]["status"] in selectors.HEALTH_STATES


def test_the_timeline_of_a_process_outside_the_team_is_not_found(small_version, managed_clerk, manager):
    other = UserFactory(username="olga", roles=["role-clerk"])
    Profile.objects.filter(user=managed_clerk).update(available=False)  # route olga's step to olga
    process, task = start_small(other)

    assert task.assigned_to == other
    with pytest.raises(NotFound):
        selectors.process_timeline(selectors.scope_for(manager), process.pk)


def test_queue_and_workload_count_the_team(small_version, managed_clerk, manager):
    other = UserFactory(username="olga", roles=["role-clerk"])
    start_small(managed_clerk)
    start_small(managed_clerk)
    start_small(other)
    change_tasks(TaskInstance.objects.filter(assigned_to=managed_clerk), due_date=timezone.now() - HOUR)
    scope = selectors.scope_for(manager)
    filters = selectors.Filters()

    queue = selectors.queue_by_role(scope, filters)
    workload = selectors.workload_by_user(scope, filters)

    assert queue == [{"role": "role-clerk", "open": 2, "unassigned": 0, "in_progress": 0, "overdue": 2,
                      "oldest_wait_seconds": queue[0]["oldest_wait_seconds"]}]
    assert [(row["username"], row["open"], row["overdue"]) for row in workload] == [("clara", 2, 2), ("mona", 0, 0)]
    assert workload[0]["capacity"] == 20 and workload[0]["utilisation"] == 0.1


def test_the_dashboard_has_every_panel(small_version, managed_clerk, admin):
    start_small(managed_clerk)

    page = selectors.dashboard(selectors.scope_for(admin), selectors.Filters(journey_id="journey-small"))

    assert page["scope"] == "all" and page["active_total"] == 1
    assert page["cards"]["active"] == 1 and page["cards"]["on_track"] == 1 and page["cards"]["overdue_tasks"] == 0
    for panel in ("active_processes", "queue_by_role", "workload", "sla_compliance", "sla_series", "throughput",
                  "bottlenecks"):
        assert isinstance(page[panel], list), panel
    assert len(page["sla_series"]) == 8  # seven days back, today included


def test_a_plain_user_has_no_scope(small_version, clerk):
    with pytest.raises(Forbidden):
        selectors.scope_for(clerk)


def test_an_administrator_with_the_view_all_permission_sees_everything(db):
    from django.contrib.auth.models import Permission

    staff = UserFactory(username="stan")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_all_processes"))

    assert selectors.scope_for(type(staff).objects.get(pk=staff.pk)).everything


def test_team_processes_are_exactly_what_the_api_lets_the_manager_see(small_version, managed_clerk, manager):
    from guardian.shortcuts import assign_perm

    from tasks.access import visible_processes

    other = UserFactory(username="olga", roles=["role-clerk"])
    former = UserFactory(username="fred", roles=["role-clerk"])
    Profile.objects.filter(user=former).update(manager=manager)
    former.is_active = False
    former.save()
    start_small(managed_clerk)                             # started by a report, assigned to her
    Profile.objects.filter(user=managed_clerk).update(available=False)
    by_other, _ = start_small(other)                       # nothing to do with the team
    granted, _ = start_small(other)
    assign_perm("processes.view_processinstance", manager, granted)
    worked, worked_task = start_small(other)               # completed by the manager himself
    change_tasks(TaskInstance.objects.filter(pk=worked_task.pk), completed_by=manager)
    held, held_task = start_small(other)                   # now held by a (deactivated) report
    change_tasks(TaskInstance.objects.filter(pk=held_task.pk), assigned_to=former)

    scope = selectors.scope_for(manager)

    expected = set(visible_processes(manager).values_list("pk", flat=True))
    assert set(scope.processes().values_list("pk", flat=True)) == expected
    assert by_other.pk not in expected and {granted.pk, worked.pk, held.pk} <= expected
