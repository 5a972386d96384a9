"""The default graph store: the property graph in two tables of the project's database."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..models import GraphNode, GraphRelationship
from .base import GraphStore, JourneySummary
from .mapping import Node, Rel, from_graph, to_graph

CONTAINER_LABELS = ("Journey", "Phase", "Module")


class EmbeddedGraphStore(GraphStore):
    def save_journey(self, definition: dict[str, Any]) -> None:
        journey_id = definition["journey"]["id"]
        nodes, rels = to_graph(definition)
        with transaction.atomic():
            self._delete(journey_id)
            rows = GraphNode.objects.bulk_create(
                GraphNode(journey_id=journey_id, label=n.label, key=n.key, position=n.position, props=n.props)
                for n in nodes
            )
            pk = {row.key: row.pk for row in rows}
            GraphRelationship.objects.bulk_create(
                GraphRelationship(
                    journey_id=journey_id,
                    type=r.type,
                    source_id=pk[r.source],
                    target_id=pk[r.target],
                    position=r.position,
                    props=r.props,
                )
                for r in rels
            )

    def get_journey(self, journey_id: str) -> dict[str, Any] | None:
        rows = list(GraphNode.objects.filter(journey_id=journey_id))
        if not any(row.label == "Journey" for row in rows):
            return None
        keys = {row.pk: row.key for row in rows}
        nodes = [Node(row.label, row.key, row.position, row.props) for row in rows]
        rels = [
            Rel(rel.type, keys[rel.source_id], keys[rel.target_id], rel.position, rel.props)
            for rel in GraphRelationship.objects.filter(journey_id=journey_id)
        ]
        return from_graph(nodes, rels)

    def list_journeys(self) -> list[JourneySummary]:
        rows = GraphNode.objects.filter(label="Journey").order_by("key")
        return [JourneySummary(id=row.key, name=row.props.get("name", row.key)) for row in rows]

    def find_container(self, container_id: str) -> str | None:
        row = (
            GraphNode.objects.filter(key=container_id, label__in=CONTAINER_LABELS)
            .values_list("journey_id", flat=True)
            .order_by("journey_id")
            .first()
        )
        return row

    def delete_journey(self, journey_id: str) -> None:
        with transaction.atomic():
            self._delete(journey_id)

    @staticmethod
    def _delete(journey_id: str) -> None:
        GraphRelationship.objects.filter(journey_id=journey_id).delete()
        GraphNode.objects.filter(journey_id=journey_id).delete()
