"""Celery work of the notifications. Every job is safe to run twice (at-least-once
delivery): notifications are made once per event, emails are sent from locked rows."""

from __future__ import annotations

from celery import shared_task

from . import delivery, emails, relay


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_events(event_ids: list[int]) -> int:
    return len(delivery.deliver(event_ids))


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def relay_events() -> int:
    return relay.relay()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_notification_emails(user_id: int) -> int:
    return emails.send_pending(user_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def flush_pending_emails() -> int:
    return emails.flush()
