"""ISO 8601 durations (`PT4H`, `P1DT2H30M`, `P2W`) as used by SLA targets and escalations.

Calendar units have no fixed length, so a year counts as 365 days and a month as 30:
an SLA is a span of working clock time, not a calendar date. The canonical text
(`format_duration`) therefore uses days and clock units only, and parsing it gives back
exactly the same timedelta.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

MAX_TEXT_LENGTH: Final = 64

_NUMBER = r"([0-9]+(?:[.,][0-9]+)?)"  # ASCII digits only: \d would accept other scripts too
_DURATION: Final = re.compile(
    rf"P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)

_MICROSECONDS_PER_SECOND: Final = 1_000_000
# Microseconds per unit, in the order the pattern's groups appear.
_UNITS: Final = (
    ("years", 365 * 86_400 * _MICROSECONDS_PER_SECOND),
    ("months", 30 * 86_400 * _MICROSECONDS_PER_SECOND),
    ("weeks", 7 * 86_400 * _MICROSECONDS_PER_SECOND),
    ("days", 86_400 * _MICROSECONDS_PER_SECOND),
    ("hours", 3_600 * _MICROSECONDS_PER_SECOND),
    ("minutes", 60 * _MICROSECONDS_PER_SECOND),
    ("seconds", _MICROSECONDS_PER_SECOND),
)
_EXAMPLES: Final = "e.g. PT4H, P2D, P1DT12H, PT0.5S"


def parse_duration(text: object) -> timedelta:
    """The timedelta an ISO 8601 duration denotes; ValueError with a clear message if none."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string ({_EXAMPLES})")
    shown = text if len(text) <= MAX_TEXT_LENGTH else text[:MAX_TEXT_LENGTH] + "..."
    match = _DURATION.fullmatch(text.upper()) if len(text) <= MAX_TEXT_LENGTH else None
    if match is None or text.upper().endswith("T") or not any(match.groups()):
        raise ValueError(f"invalid ISO 8601 duration {shown!r} ({_EXAMPLES})")
    present = [(value, unit) for value, unit in zip(match.groups(), _UNITS) if value is not None]
    # ISO 8601 allows a fraction on the smallest unit only ("P1.5DT2H" is ambiguous).
    if any(_has_fraction(value) for value, _ in present[:-1]):
        raise ValueError(f"invalid ISO 8601 duration {shown!r}: only the last unit may have a fraction")
    total = sum(_microseconds(value, per_unit) for value, (_, per_unit) in present)
    try:
        return timedelta(microseconds=total)
    except OverflowError:
        raise ValueError(f"duration {shown!r} is too long") from None


def _has_fraction(value: str) -> bool:
    return "." in value or "," in value


def _microseconds(value: str, per_unit: int) -> int:
    try:
        amount = Decimal(value.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        raise ValueError(f"invalid number {value!r} in duration") from None
    # Exact decimal arithmetic: PT0.1S is 100000 microseconds, not 99999.
    return int((amount * per_unit).to_integral_value())


def format_duration(delta: timedelta) -> str:
    """Canonical ISO 8601 text: days and clock units only (`P14D`, `PT4H`, `P1DT2H30M`, `PT0.5S`)."""
    if delta < timedelta(0):
        raise ValueError("negative durations have no ISO 8601 form")
    if delta == timedelta(0):
        return "PT0S"
    hours, rest = divmod(delta.seconds, 3_600)
    minutes, seconds = divmod(rest, 60)
    text = f"P{delta.days}D" if delta.days else "P"
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or delta.microseconds:
        fraction = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
        clock += f"{seconds}{fraction}S"
    return text + ("T" + clock if clock else "")
