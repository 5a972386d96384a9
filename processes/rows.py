"""Model instances from hand-written SQL, for the one read on the engine's hot path.

Every task operation starts with the same read: the task, its process (locked) and its
assignee. Compiling that through the ORM costs more than running it, so the statement is
written once per model shape and its rows are turned into instances here, with the same
conversions the ORM applies (JSON, dates).
"""

from __future__ import annotations

from typing import Any, Sequence

from django.db import connections
from django.db.models import Model


class Columns:
    """The concrete columns of a model under a table alias, and how to read them back."""

    def __init__(self, model: type[Model], alias: str, only: Sequence[str] = ()) -> None:
        """`only`: these attribute names (and the primary key), the others deferred."""
        self.model = model
        self.alias = alias
        self.fields = [field for field in model._meta.concrete_fields
                       if not only or field.primary_key or field.attname in only]
        self.names = [field.attname for field in self.fields]
        self._pk = self.fields.index(model._meta.pk)
        self._converters: dict[str, list] = {}

    def sql(self, quote) -> str:
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    def read(self, values: Sequence[Any], using: str) -> Model | None:
        """The instance of `values` (this model's slice of a row); None for a missing
        LEFT JOIN row."""
        if values[self._pk] is None:
            return None
        connection = connections[using]
        converted = list(values)
        for i, col, converters in self._converters_for(using):
            for converter in converters:
                converted[i] = converter(converted[i], col, connection)
        return self.model.from_db(using, self.names, converted)

    def _converters_for(self, using: str) -> list:
        if using not in self._converters:
            connection = connections[using]
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                converters = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
                if converters:
                    found.append((i, col, converters))
            self._converters[using] = found
        return self._converters[using]

    def __len__(self) -> int:
        return len(self.fields)
