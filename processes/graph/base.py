from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JourneySummary:
    id: str
    name: str


class GraphStore(ABC):
    """Where journey definitions live. The embedded store and the Neo4j store both pass
    the same contract tests (tests/graph), so callers never know which one they have."""

    @abstractmethod
    def save_journey(self, definition: dict[str, Any]) -> None:
        """Store a normalized definition, replacing the journey's previous graph."""

    @abstractmethod
    def get_journey(self, journey_id: str) -> dict[str, Any] | None:
        """The stored definition (not yet normalized), or None."""

    @abstractmethod
    def list_journeys(self) -> list[JourneySummary]: ...

    @abstractmethod
    def find_container(self, container_id: str) -> str | None:
        """The id of the journey that holds this journey, phase or module id, or None."""

    @abstractmethod
    def delete_journey(self, journey_id: str) -> None: ...
