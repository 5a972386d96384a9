"""The REST API's JSON parser, with the body's size and nesting bounded before parsing.

DRF's own parser hands the whole stream to `json.load`: a body nested a few thousand levels
deep overflowed the stack (a 500), and one of many megabytes was parsed before anything
looked at it. Here at most the limit plus one byte is read, then checked, then parsed
(gndp.json_input). Endpoints that take more (journey import, bulk start) name their parser.
"""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.utils import json

from gndp import json_input


class BoundedJSONParser(JSONParser):
    def limits(self) -> tuple[int, int]:
        return json_input.json_limits()

    def parse(self, stream, media_type=None, parser_context=None):
        max_bytes, max_depth = self.limits()
        raw = json_input.check(stream.read(max_bytes + 1), max_bytes=max_bytes, max_depth=max_depth)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:  # a depth limit configured beyond what the parser can take
            raise json_input.too_deep("body", max_depth) from None


class JourneyJSONParser(BoundedJSONParser):
    """A journey file: larger, and its conditions nest deeper (GNDP_JOURNEY_MAX_*)."""

    def limits(self) -> tuple[int, int]:
        return json_input.journey_limits()


class BulkStartJSONParser(BoundedJSONParser):
    """Up to 1,000 contexts in one body (GNDP_BULK_START_MAX_BYTES)."""

    def limits(self) -> tuple[int, int]:
        return settings.GNDP_BULK_START_MAX_BYTES, settings.GNDP_JSON_MAX_DEPTH
