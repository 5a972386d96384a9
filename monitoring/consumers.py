"""`/ws/monitoring/`: the dashboard's live events, for whoever may open the dashboard, scoped
as the dashboard is (`monitoring.live.ScopeFilter`)."""

from __future__ import annotations

from gndp.websocket import database_call
from processes.consumers import EventConsumer
from processes.errors import ServiceError
from processes.live import MONITORING_GROUP

from .live import ScopeFilter
from .selectors import scope_for


class MonitoringConsumer(EventConsumer):
    # A task moving away from the team is the filter's to follow (it asks the database
    # about that process next time); the listener's own access does not change by it.
    checks_moves = False

    def groups_for(self, user) -> list[str] | None:
        try:
            self.hears = ScopeFilter(scope_for(user))
        except ServiceError:  # neither a manager nor an administrator who sees everything
            return None
        return [MONITORING_GROUP]

    async def event_message(self, message) -> None:
        if self.clear(message) or await self.may_hear(message):
            await self._forward([message["event"]])

    async def event_batch(self, message) -> None:
        if self.clear(message) or await self.may_hear(message):
            await self._forward(message["events"])

    async def _forward(self, events: list[dict]) -> None:
        for event, heard in zip(events, self.hears.admit(events)):
            if heard is None:  # asked once per process, however many of its events came
                heard = self.hears.known.get(event["process_id"])
                if heard is None:
                    heard = await database_call(self.hears.settle)(event["process_id"])
            if heard:
                await self.send_json(event)
