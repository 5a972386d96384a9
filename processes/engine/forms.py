"""Validation of a step's result against its atom's `form`, with strict types."""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from .blueprint import Atom, FormField
from .bounds import DEFAULT_BOUNDS, Bounds, string_problems


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but a checkbox is not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_TYPE_CHECKS = {
    "string": lambda value, field: isinstance(value, str),
    "number": lambda value, field: _is_number(value),
    "integer": lambda value, field: _is_number(value) and float(value).is_integer(),
    "boolean": lambda value, field: isinstance(value, bool),
    "date": lambda value, field: _is_date(value),
    "choice": lambda value, field: any(type(value) is type(c) and value == c for c in field.choices),
}

_TYPE_MESSAGES = {
    "string": "must be a string",
    "number": "must be a number",
    "integer": "must be an integer",
    "boolean": "must be true or false",
    "date": "must be a date (YYYY-MM-DD)",
    "choice": "must be one of {choices}",
}


def _blank(value: Any) -> bool:
    return value is None or value == ""


def validate_result(atom: Atom, result: Any, bounds: Bounds = DEFAULT_BOUNDS) -> dict[str, str]:
    """Problems of `result` keyed by field name; empty when the result is acceptable.

    An atom without a form accepts any JSON object within `bounds`. An atom with a form
    accepts only its fields: a step must not write context keys its form does not declare.
    """
    if not isinstance(result, Mapping):
        return {"result": "must be a JSON object"}
    if not atom.form:
        return string_problems(result, "", bounds.limit_for())
    fields: dict[str, FormField] = {field.name: field for field in atom.form}
    problems = {key: "is not a field of this step's form" for key in result if key not in fields}
    for name, field in fields.items():
        value = result.get(name)
        if _blank(value):
            if field.required:
                problems[name] = "is required"
            continue
        if not _TYPE_CHECKS[field.type](value, field):
            problems[name] = _TYPE_MESSAGES[field.type].format(choices=list(field.choices))
            continue
        problems.update(string_problems(value, name, bounds.limit_for(field)))
    return problems


def validate_context(context: Any, bounds: Bounds = DEFAULT_BOUNDS) -> dict[str, str]:
    """Problems of a start context keyed by path; empty when it is within `bounds`."""
    if not isinstance(context, Mapping):
        return {"context": "must be a JSON object"}
    return string_problems(context, "", bounds.limit_for())


def clean_result(atom: Atom, result: Mapping[str, Any]) -> dict[str, Any]:
    """The result as merged into the context: integers as int, blank optional fields dropped."""
    cleaned = {}
    fields = {field.name: field for field in atom.form}
    for key, value in result.items():
        field = fields.get(key)
        if field and _blank(value) and not field.required:
            continue
        if field and field.type == "integer":
            value = int(value)
        cleaned[key] = value
    return cleaned
