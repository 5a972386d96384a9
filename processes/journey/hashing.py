"""The content hash that identifies a workflow version."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping


def canonical_json(defn: Mapping[str, Any]) -> str:
    # Key order and whitespace must not change the hash; NaN is not JSON and never hashed.
    return json.dumps(defn, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def definition_hash(defn: Mapping[str, Any]) -> str:
    """sha256 hex digest of the definition's canonical JSON (pass a normalized definition)."""
    return hashlib.sha256(canonical_json(defn).encode("utf-8")).hexdigest()
