"""The graph store in use: Neo4j when NEO4J_URI is set, the embedded tables otherwise."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from .base import GraphStore, JourneySummary
from .embedded import EmbeddedGraphStore


@lru_cache(maxsize=1)
def get_store() -> GraphStore:
    if settings.NEO4J_URI:
        from .neo4j_store import Neo4jGraphStore  # the driver loads only where Neo4j is configured

        return Neo4jGraphStore.from_settings()
    return EmbeddedGraphStore()


__all__ = ["GraphStore", "JourneySummary", "get_store"]
