"""JSON from outside, bounded before it is parsed: its size (413) and its nesting (400).

A body nested a few thousand levels deep is a few kilobytes, and Python's parser (and
every recursive walk after it: copying, serializing, hashing) overflows the stack on it;
a body of many megabytes costs memory and time before anything can refuse it. Every
entry point that parses outside JSON goes through `loads` (or `check` before its own
parser): the REST parsers, the pages that take JSON text, the journey files, the
management commands' options. The limits are settings: GNDP_JSON_MAX_BYTES and
GNDP_JSON_MAX_DEPTH, and GNDP_JOURNEY_MAX_BYTES and GNDP_JOURNEY_MAX_DEPTH for journeys.

The depth is measured on the text, before parsing, in linear time
(`processes.journey.nesting`); the usual small body costs two `bytes.count` calls.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from processes.errors import InvalidInput, ServiceError, TooLarge
from processes.journey.nesting import json_nesting_exceeds, overflow_path


def json_limits() -> tuple[int, int]:
    return settings.GNDP_JSON_MAX_BYTES, settings.GNDP_JSON_MAX_DEPTH


def journey_limits() -> tuple[int, int]:
    return settings.GNDP_JOURNEY_MAX_BYTES, settings.GNDP_JOURNEY_MAX_DEPTH


def too_large(what: str, max_bytes: int) -> TooLarge:
    return TooLarge(f"the {what} is larger than {filesizeformat(max_bytes).replace(chr(0xa0), ' ')}",
                    details={what: f"at most {max_bytes} bytes"})


def too_deep(what: str, max_depth: int, path: list | None = None) -> InvalidInput:
    """400 `too_deep`, naming the field (the body's first key on the way down) when known."""
    field = path[0] if path and isinstance(path[0], str) and path[0] else what
    return InvalidInput(f"the {what} is nested deeper than {max_depth} levels",
                        details={field: f"at most {max_depth} levels of nesting"}, code="too_deep")


def check(data: bytes | str, *, what: str = "body", max_bytes: int | None = None,
          max_depth: int | None = None) -> bytes:
    """`data` as UTF-8 bytes when within the limits (the JSON ones by default); TooLarge
    (413) or InvalidInput `too_deep` (400) otherwise."""
    default_bytes, default_depth = json_limits()
    max_bytes = default_bytes if max_bytes is None else max_bytes
    max_depth = default_depth if max_depth is None else max_depth
    if isinstance(data, str):
        if len(data) > max_bytes:  # at least as many bytes as characters: no need to encode
            raise too_large(what, max_bytes)
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise too_large(what, max_bytes)
    if json_nesting_exceeds(data, max_depth):
        raise too_deep(what, max_depth, overflow_path(data, max_depth))
    return data


def loads(data: bytes | str, *, what: str = "body", max_bytes: int | None = None, max_depth: int | None = None,
          **options: Any) -> Any:
    """`json.loads` after `check`. A syntax error is `json.JSONDecodeError` as usual."""
    checked = check(data, what=what, max_bytes=max_bytes, max_depth=max_depth)
    text = data if isinstance(data, str) else checked.decode("utf-8")
    try:
        return json.loads(text, **options)
    except RecursionError:  # only with a depth limit set beyond what the parser can take
        raise too_deep(what, max_depth if max_depth is not None else json_limits()[1]) from None


class BoundedJSONFormField(forms.JSONField):
    """Django's JSON form field (the admin's for a JSONField), bounded like the rest: a value
    nested too deep or too large is a form error, not a RecursionError and a 500."""

    def to_python(self, value):
        if isinstance(value, str) and not self.disabled:
            try:
                check(value, what="value")
            except ServiceError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        # Shown again with its error: Django parses it once more to show it, so the refused
        # text is not shown (nor parsed) at all.
        if isinstance(data, str) and not self.disabled:
            try:
                check(data, what="value")
            except ServiceError:
                return InvalidJSONInput("")
        return super().bound_data(data, initial)
