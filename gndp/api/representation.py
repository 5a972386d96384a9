"""Output serializers whose fields are built once per class instead of once per instance.

A `ModelSerializer` builds its fields (a deep copy of the declared ones, plus one per model
field, each with its keyword arguments worked out from the model) every time it is
instantiated, and a response of one task or process instantiates one. On the API's hot
path that building cost more than everything else the serializer did. Here each class
builds them once, on a prototype, and every instance reads through them.

The output is DRF's own: each field's `get_attribute` and `to_representation`, `None`
where the attribute is, and method fields called on the serializer at hand (so they see
its context). Input, validation and the OpenAPI schema are untouched: they still read
`self.fields`.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from steps import tricks


class BuiltOnceFields:
    """Mix into a read-only serializer, before `ModelSerializer`."""

    _built: dict[type, list[tuple[str, Any, str | None]]] = {}

    @classmethod
    def _readable(cls) -> list[tuple[str, Any, str | None]]:
        plan = BuiltOnceFields._built.get(cls)
        if plan is None:
            plan = [
                (field.field_name, field,
                 field.method_name if isinstance(field, serializers.SerializerMethodField) else None)
                for field in cls()._readable_fields
            ]
            BuiltOnceFields._built[cls] = plan
        return plan

    def to_representation(self, instance) -> dict[str, Any]:
        if not tricks.on("representation"):
            return super().to_representation(instance)
        ret = {}
        for name, field, method in self._readable():
            if method is not None:
                ret[name] = getattr(self, method)(instance)
                continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check is None else field.to_representation(attribute)
        return ret
