"""Bounds on what people submit (task results, start contexts) where no form declares any.

A string of two million characters in a note is valid JSON and a valid `string` field, and
it made every page of its process two megabytes. The blueprint carries the bounds its
journey runs under (the app compiles them in from its settings, GNDP_MAX_STRING_LENGTH),
so the live engine and the simulator refuse the same values. Per-field bounds declared on
a form field (a later version of the journey format) take precedence for that field: see
`limit_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_STRING_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class Bounds:
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH

    def limit_for(self, field: Any = None) -> int:
        """The longest string `field` (a FormField, or None for a value no form declares)
        may hold. The place where a field's own `max_length` will slot in."""
        return self.max_string_length


DEFAULT_BOUNDS = Bounds()


def string_problems(value: Any, place: str, max_length: int) -> dict[str, str]:
    """Strings (values and mapping keys) in `value` longer than `max_length`, keyed by
    where they are (`note`, `borrower.name`, `items[2]`): the first few only.

    Iterative, so a deeply nested value cannot overflow the stack here."""
    problems: dict[str, str] = {}
    message = f"must be at most {max_length} characters"
    stack: list[tuple[Any, str]] = [(value, place)]
    while stack and len(problems) < 10:
        item, where = stack.pop()
        if isinstance(item, str):
            if len(item) > max_length:
                problems[where] = message
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and len(key) > max_length:
                    problems[where or "key"] = f"has a key longer than {max_length} characters"
                    continue
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return problems
