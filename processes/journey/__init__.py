"""Journey files (`gndp-journey/1`): parse, validate, canonicalize, hash, dump.

Pure Python (no Django): the contract is docs "journey-format.md".
"""

from .errors import JourneyError
from .hashing import canonical_json, definition_hash
from .normalizer import FORMAT, normalize
from .observations import warnings
from .text import dump, parse_text

__all__ = [
    "FORMAT",
    "JourneyError",
    "canonical_json",
    "definition_hash",
    "dump",
    "normalize",
    "parse_text",
    "warnings",
]
