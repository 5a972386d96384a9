"""OpenAPI post-processing: every operation documents the error body it can answer with."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

ERRORS = {
    "400": "Bad input: the details name the fields.",
    "401": "No or bad credentials.",
    "403": "Known object, not yours to act on.",
    "404": "Unknown, or not visible to you.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "The object's state forbids the action.",
    "415": "Unsupported media type.",
    "422": "Idempotency-Key reused with another request.",
    "429": "Throttled.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                if status == "422" and method == "get":
                    continue
                responses.setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result
