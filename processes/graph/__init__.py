"""The graph store in use: Neo4j when NEO4J_URI is set, the embedded tables otherwise."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from .base import GraphStore, JourneySummary


@lru_cache(maxsize=1)
def get_store() -> GraphStore:
    if settings.NEO4J_URI:
        from .neo4j_store import Neo4jGraphStore

        return Neo4jGraphStore.from_settings()
    from .embedded import EmbeddedGraphStore

    return EmbeddedGraphStore()


__all__ = ["GraphStore", "JourneySummary", "get_store"]
