"""JSON from outside, bounded before it is parsed: its size (413) and its nesting (400).

A body nested a few thousand levels deep is a few kilobytes, and Python's parser (and
every recursive walk after it: copying, serializing, hashing) overflows the stack on it;
a body of many megabytes costs memory and time before anything can refuse it. Every
entry point that parses outside JSON goes through `loads` (or `check` before its own
parser): the REST parsers, the pages that take JSON text, the journey files, the
management commands' options. The limits are settings: GNDP_JSON_MAX_BYTES and
GNDP_JSON_MAX_DEPTH, and GNDP_JOURNEY_MAX_BYTES and GNDP_JOURNEY_MAX_DEPTH for journeys.

The depth is measured on the text, before parsing, in linear time: strings are cut out
(brackets inside them do not count), and the running count of `[`/`{` against `]`/`}`
must stay within the limit. A text with fewer brackets than the limit cannot exceed it,
so the usual small body costs two `bytes.count` calls.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from processes.errors import InvalidInput, TooLarge

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
# Opening brackets count +1 and closing ones -1 (255 is -1 as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_limits() -> tuple[int, int]:
    return settings.GNDP_JSON_MAX_BYTES, settings.GNDP_JSON_MAX_DEPTH


def journey_limits() -> tuple[int, int]:
    return settings.GNDP_JOURNEY_MAX_BYTES, settings.GNDP_JOURNEY_MAX_DEPTH


def too_large(what: str, max_bytes: int) -> TooLarge:
    return TooLarge(f"the {what} is larger than {filesizeformat(max_bytes)}",
                    details={what: f"at most {max_bytes} bytes"})


def too_deep(what: str, max_depth: int) -> InvalidInput:
    return InvalidInput(f"the {what} is nested deeper than {max_depth} levels",
                        details={what: f"at most {max_depth} levels of nesting"}, code="too_deep")


def nesting_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether the JSON text `data` nests arrays and objects deeper than `max_depth`."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    if not brackets:
        return False
    return max(accumulate(array("b", brackets.translate(_STEPS)))) > max_depth


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
    if nesting_exceeds(data, max_depth):
        raise too_deep(what, max_depth)
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
