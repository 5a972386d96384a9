"""Every routing path takes people's profile rows in one global order (by user id), so two
steps routing parallel branches to the same people never deadlock (tasks.routing).

Three paths route to the same two people at once, released by a barrier, with the
transaction retries turned off (a retry would hide a deadlock instead of showing it):

- completing `ab-start` routes `ab-x` in its lock read's round trip (the lookahead: its
  atom is certain) and `ab-y` after the engine ran (a rule enables it): X's person first;
- completing `ba-start` routes `ba-y` in the lock read and `ba-x` after the engine: Y's
  person first;
- a bulk start of `lock-bulk` routes both start atoms of three processes in memory and
  stamps the people at the end of the batch, by user id.

X's person has the higher user id. When each path stamped its people's profiles as it
routed them, the first two took the rows in opposite orders, and a deadlock (40P01)
reached the caller in most rounds.
"""

from __future__ import annotations

import pytest
import yaml
from django.test import override_settings

from processes.models import ProcessEvent
from processes.services import start_process, start_processes
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.models import Profile, TaskInstance
from tests.factories import START_ANY_JOURNEY, UserFactory
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROUNDS = 30


def _fork(journey_id: str, prefix: str, certain: str, ruled: str, y_role: str = "role-lock-y") -> str:
    roles = "" if y_role == "role-lock-x" else "\n  - {id: role-lock-y, name: Y}"
    return f"""
format: gndp-journey/1
journey: {{id: {journey_id}, name: Fork {prefix}}}
roles:
  - {{id: role-lock-s, name: Starter}}
  - {{id: role-lock-x, name: X}}{roles}
phases:
  - id: phase-{journey_id}
    name: Fork
    modules:
      - {{id: module-{journey_id}, name: Fork, atoms: [{prefix}-start, {prefix}-x, {prefix}-y]}}
atoms:
  - id: {prefix}-start
    name: Start
    performed_by: role-lock-s
    form:
      - {{name: amount, type: number, required: true}}
  - {{id: {prefix}-x, name: X, performed_by: role-lock-x}}
  - {{id: {prefix}-y, name: Y, performed_by: {y_role}}}
edges:
  - {{type: ENABLES, from: {prefix}-start, to: {prefix}-{certain}}}
  - {{type: ENABLES, from: {prefix}-start, to: {prefix}-{ruled}, rule: rule-{journey_id}-go}}
rules:
  - rule_id: rule-{journey_id}-go
    conditions: [{{field: amount, operator: gte, value: 0}}]
"""


BULK = """
format: gndp-journey/1
journey: {id: lock-bulk, name: Two at once}
roles:
  - {id: role-lock-x, name: X}
  - {id: role-lock-y, name: Y}
phases:
  - id: phase-lock-bulk
    name: Two at once
    modules:
      - {id: module-lock-bulk, name: Two at once, atoms: [bulk-x, bulk-y, bulk-end]}
atoms:
  - {id: bulk-x, name: X, performed_by: role-lock-x}
  - {id: bulk-y, name: Y, performed_by: role-lock-y}
  - {id: bulk-end, name: End, kind: system, handler: noop}
edges:
  - {type: ENABLES, from: bulk-x, to: bulk-end}
  - {type: ENABLES, from: bulk-y, to: bulk-end}
"""


@pytest.fixture
def people(transactional_db):
    for text in (_fork("lock-ab", "ab", "x", "y"), _fork("lock-ba", "ba", "y", "x"), BULK):
        publish_journey(yaml.safe_load(text))
    starter = UserFactory(username="lock-starter", roles=["role-lock-s"], permissions=[START_ANY_JOURNEY])
    y_person = UserFactory(username="lock-y", roles=["role-lock-y"])  # the lower user id
    x_person = UserFactory(username="lock-x", roles=["role-lock-x"])
    assert y_person.pk < x_person.pk
    return starter, x_person, y_person


@override_settings(GNDP_TRANSACTION_RETRIES=0)
def test_routing_paths_take_profile_rows_in_one_order_and_never_deadlock(people):
    starter, x_person, y_person = people
    for round_ in range(ROUNDS):
        ab = start_process(workflow_id="lock-ab", user=starter)
        ba = start_process(workflow_id="lock-ba", user=starter)
        starts = [TaskInstance.objects.get(process=process, atom_id__endswith="-start").pk for process in (ab, ba)]

        def act(i: int):
            if i < 2:
                return task_services.complete_task(starts[i], user=starter, result={"amount": round_})
            return start_processes(workflow_id="lock-bulk", contexts=[{}, {}, {}], user=starter)

        outcomes = race(3, act)

        failures = [o for o in outcomes if isinstance(o, Exception)]
        assert not failures, (round_, failures)
        for process, prefix in ((ab, "ab"), (ba, "ba")):
            assert sorted(TaskInstance.objects.filter(process=process, status="pending")
                          .values_list("atom_id", "assigned_to_id")) == [
                (f"{prefix}-x", x_person.pk), (f"{prefix}-y", y_person.pk)]
        bulk = [p.pk for p in outcomes[2]]
        assert sorted(TaskInstance.objects.filter(process_id__in=bulk).values_list("assigned_to_id", flat=True)) == (
            [y_person.pk] * 3 + [x_person.pk] * 3)
    # Each person's profile carries the stamp of their newest task.
    for person in (x_person, y_person):
        newest = TaskInstance.objects.filter(assigned_to=person).order_by("-created_at").first()
        stamp = Profile.objects.get(user=person).last_assigned_at
        assert stamp is not None and abs((stamp - newest.created_at).total_seconds()) < 5
    # Per round: the two start steps, the two branches of each, three bulk processes' two.
    assert ProcessEvent.objects.filter(type="task.assigned").count() == ROUNDS * (2 + 2 * 2 + 3 * 2)


def test_parallel_branches_of_one_role_still_go_to_two_people(transactional_db):
    """The choices a transaction made count as stamps for its later routing statements
    (`gndp.route_stamps`), as the stamps themselves did when each routing wrote its own:
    two branches of one role, routed in one round trip, go to two people."""
    publish_journey(yaml.safe_load(_fork("lock-same", "same", "x", "y", y_role="role-lock-x")))
    starter = UserFactory(username="same-starter", roles=["role-lock-s"])
    first, second = (UserFactory(username=f"same-{n}", roles=["role-lock-x"]) for n in (1, 2))
    process = start_process(workflow_id="lock-same", user=starter)
    task_services.complete_task(TaskInstance.objects.get(process=process, atom_id="same-start").pk, user=starter,
                                result={"amount": 1})
    assignees = set(TaskInstance.objects.filter(process=process, status="pending")
                    .values_list("assigned_to_id", flat=True))
    assert assignees == {first.pk, second.pk}
