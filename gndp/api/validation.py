"""Input checked by a serializer, or the contract's 400 naming each field."""

from __future__ import annotations

from typing import Any

from processes.errors import InvalidInput


def validated(serializer_class, data: Any, message: str = "invalid input") -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput(message, details=serializer.errors)
    return serializer.validated_data
