"""Each kind of notification reaches the right people, once, and never anyone who cannot
see the process. Real services, eager workers, real commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from collaboration.services import comment_add
from monitoring import sla
from notifications import delivery, relay
from notifications.models import DeliveredEvent, Notification
from processes.models import ProcessEvent
from processes.services import start_process
from processes.versions import publish_journey
from tasks import services as task_services
from tasks.access import visible_processes
from steps.changes import change_tasks
from tasks.models import TaskInstance
from tests.factories import UserFactory

from .conftest import open_task, run_to_end

pytestmark = pytest.mark.django_db(transaction=True)


def told(**filters) -> list[tuple[str, str]]:
    """(recipient, kind) of every notification, in order."""
    return list(Notification.objects.filter(**filters).order_by("id").values_list("recipient__username", "kind"))


def test_a_routed_task_is_told_to_its_assignee_only(people):
    process = start_process(workflow_id="journey-small", user=people.sam)

    task = open_task(process, "atom-apply")
    assert task.assigned_to == people.clara
    assert told() == [("clara", "task_assigned")]
    note = Notification.objects.get()
    assert note.title == "“Apply” was assigned to you"
    assert note.url == f"/tasks/{task.pk}/"
    assert note.process_id == process.pk and note.task_id == task.pk and note.actor == "sam"


def test_nobody_is_told_of_their_own_claim_or_own_start(people):
    # clara starts it herself: the task routed to her is her own doing
    process = start_process(workflow_id="journey-small", user=people.clara)
    task_services.complete_task(open_task(process, "atom-apply").pk, user=people.clara,
                                result={"amount": 1000, "score": 700})
    queued = open_task(process, "atom-b")
    assert queued.assigned_to is None

    task_services.start_task(queued.pk, user=people.chet)  # chet claims from the checker queue

    # chet's own claim tells nobody; clara's own start routed atom-apply to herself: not told
    # either; atom-a, routed by the engine's system step to the least busy clerk, is told
    assert open_task(process, "atom-a").assigned_to == people.clive
    assert told() == [("clive", "task_assigned")]


def test_a_reassignment_tells_the_new_assignee_and_the_one_it_was_taken_from(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    task = open_task(process, "atom-apply")
    Notification.objects.all().delete()

    task_services.reassign_task(task.pk, user=people.mona, new_assignee="clive")

    assert told() == [("clive", "task_assigned"), ("clara", "task_reassigned_away")]
    to_clive, to_clara = Notification.objects.order_by("id")
    assert to_clive.title == "mona reassigned “Apply” to you"
    assert to_clara.title == "“Apply” was reassigned to clive by mona"
    # clara no longer sees the process; she is told which task left her inbox, and no more
    assert not visible_processes(people.clara).filter(pk=process.pk).exists()
    assert to_clara.url == "/inbox/"


def test_an_escalation_tells_the_manager_and_not_the_one_who_escalated(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    task = open_task(process, "atom-apply")
    Notification.objects.all().delete()

    task_services.escalate_task(task.pk, user=people.clara)

    assert told() == [("mona", "task_escalated")]
    assert Notification.objects.get().title == "“Apply” was escalated to you"


def test_sla_timers_warn_the_assignee_and_escalate_to_the_manager_once(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    task = open_task(process, "atom-apply")
    Notification.objects.all().delete()
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk=task.pk), due_date=now - timedelta(hours=2), escalate_at=now - timedelta(hours=1))

    sla.sweep(now)
    sla.sweep(now + timedelta(seconds=5))  # a second sweep fires nothing again

    assert sorted(told()) == [("clara", "sla_warning"), ("clara", "task_reassigned_away"), ("mona", "task_escalated")]
    escalated = Notification.objects.get(kind="task_escalated")
    assert escalated.body.startswith("Its escalation time passed")


def test_the_initiator_hears_that_the_process_completed(people):
    process = start_process(workflow_id="journey-small", user=people.sam)

    assert run_to_end(process, people).status == "completed"

    assert told(kind="process_completed") == [("sam", "process_completed")]
    assert Notification.objects.get(kind="process_completed").url == f"/processes/{process.pk}/"


def test_the_initiator_hears_that_the_process_failed(people):
    publish_journey({
        "format": "gndp-journey/1", "journey": {"id": "journey-fail", "name": "Fails"},
        "roles": [{"id": "role-clerk", "name": "Clerk"}],
        "atoms": [{"id": "atom-boom", "name": "Boom", "kind": "system", "handler": "fail", "retries": 0,
                   "params": {"message": "bank is down"}}],
        "edges": [],
    })

    process = start_process(workflow_id="journey-fail", user=people.sam)

    process.refresh_from_db()
    assert process.status == "failed"
    assert told() == [("sam", "process_failed")]
    assert "bank is down" in Notification.objects.get().body


def test_a_mention_reaches_only_people_who_can_see_the_process(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    Notification.objects.all().delete()

    comment = comment_add(user=people.sam, process_id=process.pk,
                          body="@clara please check, and @stranger @nobody @sam too")

    assert [u.username for u in comment.mentions.order_by("username")] == ["clara", "sam"]
    assert told() == [("clara", "mentioned")]  # sam mentioned himself: not told
    note = Notification.objects.get()
    assert note.title == f"sam mentioned you on process #{process.pk}"
    assert note.body == "@clara please check, and @stranger @nobody @sam too"
    assert note.url == f"/processes/{process.pk}/#comment-{comment.pk}"


def test_a_mention_on_a_task_reaches_a_colleague_who_sees_only_the_task(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    task_services.complete_task(open_task(process, "atom-apply").pk, user=people.clara,
                                result={"amount": 1000, "score": 700})
    queued = open_task(process, "atom-b")  # in the checker queue: chet sees the task, not the process
    assert not visible_processes(people.chet).filter(pk=process.pk).exists()
    Notification.objects.all().delete()

    cheryl = UserFactory(username="cheryl", roles=["role-checker"])

    comment_add(user=people.chet, task_id=queued.pk, body="@cheryl can you take this one? @mona fyi, not @stranger")

    # cheryl sees the queued task (not the process); mona manages clara, who worked on the
    # process, so she sees the process; the stranger sees neither
    assert sorted(told()) == [("cheryl", "mentioned"), ("mona", "mentioned")]
    # each is sent where they can read it: cheryl to the task, mona to the process page
    urls = dict(Notification.objects.values_list("recipient__username", "url"))
    assert urls["cheryl"].startswith(f"/tasks/{queued.pk}/#comment-")
    assert urls["mona"].startswith(f"/processes/{process.pk}/#comment-")


def test_delivering_an_event_again_notifies_nobody_twice(people):
    start_process(workflow_id="journey-small", user=people.sam)
    event_ids = list(ProcessEvent.objects.values_list("pk", flat=True))
    assert told() == [("clara", "task_assigned")]

    again = delivery.deliver(event_ids)  # the relay hands the same events over again
    relay.relay()
    relay.relay()

    assert again == []
    assert told() == [("clara", "task_assigned")]
    assert DeliveredEvent.objects.filter(event_id__in=event_ids).count() == \
        ProcessEvent.objects.filter(type="task.assigned").count()
