"""Which of the dashboard's events a `/ws/monitoring/` listener hears: exactly its dashboard's
scope (`selectors.scope_for`).

An administrator who sees everything hears every event. A manager hears the events of its
team's processes (`Scope.processes`), and those of the tasks its dashboard counts beyond
them (put into or taken out of a team role's queue). Deciding costs a set lookup per event:
the team's open processes are read when the socket checks its access, and a process joins
the scope, as far as the events show, when it is started by someone of the team or a task of
it is given to someone of the team. Only a process the listener has not heard of before (one
it never saw start) is looked up once in the database, and one whose task moved away from the
team is looked up again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from processes.models import EventType

from .selectors import ACTIVE_STATUSES, Scope

_JOINS_QUEUE = {EventType.TASK_CREATED: "queued", EventType.TASK_ASSIGNED: "claimed"}


class ScopeFilter:
    KNOWN_LIMIT = 20_000  # processes remembered, in or out; a few megabytes

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        if scope.everything:
            return
        User = get_user_model()
        self.team = scope.team_ids
        self.team_names = frozenset(User.objects.filter(pk__in=self.team)
                                    .values_list(User.USERNAME_FIELD, flat=True))
        self.manager_name = scope.user.get_username()
        self.roles = frozenset(scope.team_roles)
        self.known: dict[int, bool] = dict.fromkeys(
            scope.processes().filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True), True)

    def admit(self, events: list[dict]) -> list[bool | None]:
        """Whether the listener hears each of `events` (Events of one message, in order);
        None where only the database can tell (`settle`). A process that joins the scope by
        one of them is heard in all of them: its start comes before its first task."""
        if self.scope.everything:
            return [True] * len(events)
        joined = {event["process_id"] for event in events if self._joins(event)}
        for process_id in joined:
            self._remember(process_id, True)
        return [self._verdict(event, joined) for event in events]

    def _joins(self, event: dict) -> bool:
        """Whether the process is the team's by this event: a task given to someone of the
        team, started by someone of the team, or a step completed by the manager."""
        payload, kind = event.get("payload") or {}, event["type"]
        return (payload.get("assigned_to_id") in self.team
                or (kind == EventType.PROCESS_STARTED and event.get("user_id") in self.team_names)
                or (kind == EventType.TASK_COMPLETED and event.get("user_id") == self.manager_name))

    def _verdict(self, event: dict, joined: set[int]) -> bool | None:
        process_id, kind = event["process_id"], event["type"]
        payload = event.get("payload") or {}
        if process_id in joined:
            return True
        if payload.get("previous_assignee_id") in self.team:
            self.known.pop(process_id, None)  # it may have left the team's processes: ask next time
            return True
        if kind == EventType.PROCESS_STARTED:
            self._remember(process_id, False)  # started outside the team: nobody of it is in it yet
            return False
        if self.known.get(process_id):
            return True
        if payload.get("role") in self.roles and (
                kind == EventType.TASK_UNROUTABLE or payload.get(_JOINS_QUEUE.get(kind, ""))):
            return True  # a team role's queue: the dashboard counts it
        return self.known.get(process_id)

    def settle(self, process_id: int) -> bool:
        """The database's answer for a process not heard of before (runs in a thread)."""
        inside = self.scope.processes().filter(pk=process_id).exists()
        self._remember(process_id, inside)
        return inside

    def _remember(self, process_id: int, inside: bool) -> None:
        if process_id not in self.known and len(self.known) >= self.KNOWN_LIMIT:
            self.known.pop(next(iter(self.known)))
        self.known[process_id] = inside
