"""Celery work of the notifications. Every job is safe to run twice (at-least-once
delivery): notifications are made once per event, emails are sent from locked rows.
The names are explicit: queued messages, the beat schedule and the services that enqueue
by name (`gndp.enqueue`) carry them."""

from __future__ import annotations

from celery import shared_task

from . import delivery, emails, relay


@shared_task(name="notifications.tasks.deliver_events", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def deliver_events(event_ids: list[int]) -> int:
    return len(delivery.deliver(event_ids))


@shared_task(name="notifications.tasks.relay_events", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def relay_events() -> int:
    return relay.relay()


@shared_task(name="notifications.tasks.send_notification_emails", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def send_notification_emails(user_id: int) -> int:
    return emails.send_pending(user_id)


@shared_task(name="notifications.tasks.flush_pending_emails", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def flush_pending_emails() -> int:
    return emails.flush()
