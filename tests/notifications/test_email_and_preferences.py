"""Email goes out after the commit only, through Django's email framework, as a digest
when many arrive at once; preferences (kinds, channels, quiet hours) are honoured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from monitoring import sla
from notifications import emails, relay
from notifications.models import EmailStatus, Notification
from notifications.selectors import unread_count
from notifications.services import preferences_update
from processes.services import start_process
from tasks import services as task_services
from steps.changes import change_tasks
from tasks.models import TaskInstance

from .conftest import open_task

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def test_the_email_goes_out_after_the_commit_and_never_for_a_rollback(people):
    process = start_process(workflow_id="journey-small", user=people.sam)
    task = open_task(process, "atom-apply")
    mail.outbox.clear()

    with pytest.raises(Boom):
        with transaction.atomic():
            task_services.escalate_task(task.pk, user=people.clara)
            raise Boom  # the escalation rolls back: nobody is told anything
    assert mail.outbox == [] and not Notification.objects.filter(kind="task_escalated").exists()

    with transaction.atomic():
        task_services.escalate_task(task.pk, user=people.clara)
        # inside the transaction: nothing made, nothing sent
        assert mail.outbox == []
        assert not Notification.objects.filter(kind="task_escalated").exists()

    assert [m.to for m in mail.outbox] == [["mona@example.com"]]
    assert mail.outbox[0].subject == "[GNDP Flow] “Apply” was escalated to you"
    assert f"/tasks/{task.pk}/" in mail.outbox[0].body
    note = Notification.objects.get(kind="task_escalated")
    assert note.email_status == EmailStatus.SENT and note.emailed_at is not None


def test_by_default_an_assignment_is_told_in_the_app_only(people):
    start_process(workflow_id="journey-small", user=people.sam)

    note = Notification.objects.get(recipient=people.clara)
    assert note.in_app and note.email_status == EmailStatus.NONE
    assert mail.outbox == []
    assert unread_count(people.clara) == 1


def test_many_at_once_arrive_as_one_digest(people):
    processes = [start_process(workflow_id="journey-small", user=people.sam) for _ in range(3)]
    tasks = [open_task(p, "atom-apply") for p in processes]
    assert {t.assigned_to for t in tasks} == {people.clara, people.clive}
    change_tasks(TaskInstance.objects.filter(pk__in=[t.pk for t in tasks]), assigned_to=people.clara)
    now = timezone.now()
    change_tasks(TaskInstance.objects.filter(pk__in=[t.pk for t in tasks]), due_date=now - timedelta(minutes=5))
    mail.outbox.clear()

    sla.sweep(now)  # three warnings to clara in one transaction

    assert Notification.objects.filter(recipient=people.clara, kind="sla_warning").count() == 3
    assert len(mail.outbox) == 1
    digest = mail.outbox[0]
    assert digest.to == ["clara@example.com"]
    assert digest.subject == "[GNDP Flow] 3 new notifications"
    assert digest.body.count("is past its due time") == 3


def test_a_kind_with_no_channel_is_not_notified_at_all(people):
    preferences_update(user=people.clara, channels={"task_assigned": []})

    start_process(workflow_id="journey-small", user=people.sam)

    assert not Notification.objects.filter(recipient=people.clara).exists()


def test_email_only_is_mailed_but_kept_out_of_the_bell(people):
    preferences_update(user=people.clara, channels={"task_assigned": ["email"]})

    start_process(workflow_id="journey-small", user=people.sam)

    note = Notification.objects.get(recipient=people.clara)
    assert not note.in_app and note.email_status == EmailStatus.SENT
    assert unread_count(people.clara) == 0
    assert [m.to for m in mail.outbox] == [["clara@example.com"]]


def test_no_email_when_the_email_channel_is_off_or_there_is_no_address(people):
    preferences_update(user=people.mona, channels={"task_escalated": ["in_app"]})
    process = start_process(workflow_id="journey-small", user=people.sam)
    task_services.escalate_task(open_task(process, "atom-apply").pk, user=people.clara)
    assert Notification.objects.filter(recipient=people.mona, kind="task_escalated").exists()
    assert mail.outbox == []

    people.clive.email = ""
    people.clive.save()
    preferences_update(user=people.clive, channels={"task_assigned": ["in_app", "email"]})
    other = start_process(workflow_id="journey-small", user=people.sam)  # clara is busier: clive gets it
    assert open_task(other, "atom-apply").assigned_to == people.clive
    assert Notification.objects.get(recipient=people.clive).email_status == EmailStatus.NONE
    assert mail.outbox == []


def test_quiet_hours_hold_emails_until_they_are_over(people):
    now = timezone.now()
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()
    preferences_update(user=people.mona, quiet_start=start, quiet_end=end, timezone_name="UTC")
    process = start_process(workflow_id="journey-small", user=people.sam)

    task_services.escalate_task(open_task(process, "atom-apply").pk, user=people.clara)

    note = Notification.objects.get(recipient=people.mona)
    assert note.email_status == EmailStatus.PENDING and mail.outbox == []
    assert emails.flush(now=now + timedelta(minutes=30)) == 0  # still quiet
    assert emails.flush(now=now + timedelta(hours=2)) == 1  # over: sent
    assert [m.to for m in mail.outbox] == [["mona@example.com"]]
    assert emails.flush(now=now + timedelta(hours=3)) == 0  # and only once


def test_quiet_hours_spanning_midnight_in_the_persons_time_zone(people):
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    preference = preferences_update(user=people.mona, quiet_start=time(22), quiet_end=time(7),
                                    timezone_name="Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    assert preference.is_quiet(datetime(2026, 1, 10, 23, 30, tzinfo=berlin))
    assert preference.is_quiet(datetime(2026, 1, 10, 6, 59, tzinfo=berlin))
    assert not preference.is_quiet(datetime(2026, 1, 10, 7, 0, tzinfo=berlin))
    assert not preference.is_quiet(datetime(2026, 1, 10, 21, 0, tzinfo=berlin))
    assert preference.is_quiet(datetime(2026, 1, 10, 21, 30, tzinfo=ZoneInfo("UTC")))  # 22:30 in Berlin


@pytest.mark.django_db(transaction=False)
def test_the_relay_delivers_what_the_after_commit_hand_off_never_got(people, django_capture_on_commit_callbacks):
    relay.relay()  # the cursor starts at the end of the log
    # Inside the test's transaction no commit happens: the hand-off never runs, as after a crash.
    start_process(workflow_id="journey-small", user=people.sam)
    assert not Notification.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        made = relay.relay(now=timezone.now())

    assert made == 1
    assert list(Notification.objects.values_list("recipient__username", "kind")) == [("clara", "task_assigned")]
    assert relay.relay() == 0  # and never twice
