from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ..errors import ServiceError


# Here, not beside the Neo4j store that raises it: callers catch it without loading the driver.
class GraphStoreUnavailable(ServiceError):
    """Neo4j cannot be reached or refused us: a clear one-line reason, never a traceback."""

    status = 503
    code = "graph_store_unavailable"


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
