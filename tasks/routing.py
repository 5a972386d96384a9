"""Choosing who gets a new task: the strategies of a role, over the role's available people.

`least_busy` picks the member with the fewest open tasks, ties to the one assigned longest
ago; `round_robin` picks the one assigned longest ago, which is a rotation; `queue` leaves
the task for any member to claim. Nobody available leaves it unassigned (`unroutable`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q

from .models import OPEN_TASK_STATUSES, Profile

LEAST_BUSY = "least_busy"
ROUND_ROBIN = "round_robin"
QUEUE = "queue"
STRATEGIES = (LEAST_BUSY, ROUND_ROBIN, QUEUE)


@dataclass(frozen=True)
class Route:
    assignee: object | None  # a user, or None for the role's queue
    unroutable: bool = False


def candidates(role: str):
    """Active, available members of the role (a user without a profile is available)."""
    User = get_user_model()
    return User.objects.filter(groups__name=role, is_active=True).exclude(workflow_profile__available=False)


def choose(role: str, strategy: str) -> Route:
    if not role:
        return Route(None, unroutable=True)
    if strategy == QUEUE:
        return Route(None, unroutable=not candidates(role).exists())
    people = candidates(role)
    if strategy == LEAST_BUSY:
        people = people.annotate(
            open_tasks=Count("tasks", filter=Q(tasks__status__in=OPEN_TASK_STATUSES))
        ).order_by("open_tasks", F("workflow_profile__last_assigned_at").asc(nulls_first=True), "pk")
    else:
        people = people.order_by(F("workflow_profile__last_assigned_at").asc(nulls_first=True), "pk")
    chosen = people.first()
    if chosen is None:
        return Route(None, unroutable=True)
    return Route(chosen)


def note_assignment(user, when) -> None:
    """Remember when a person last got a task: the tie-breaker and the rotation."""
    updated = Profile.objects.filter(user=user).update(last_assigned_at=when)
    if not updated:
        Profile.objects.get_or_create(user=user, defaults={"last_assigned_at": when})
