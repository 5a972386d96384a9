"""The optimisations the hot path keeps, each named, each able to step aside for the plain way.

Each trick replaces something the framework does (the ORM's compiling, a model's
constructor, a round trip of its own) where that was measured to cost more than the work
itself. Each one checks `on(name)` where it takes its short cut, and the plain way runs
otherwise, so that:

- `bench/instructions.py` measures a trick's gain as the difference the plain way makes
  (`GNDP_PLAIN=name` in the environment, or `all`): the figures in docs/performance.md,
  one decision record a trick;
- `tests/steps/test_tricks.py` holds each trick to the plain way: the same scenario leaves
  the same rows either way.

A trick whose gain does not pay for its code goes: that is how the list stays short.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

TRICKS = {
    "lock_read": "the lock read of a task, its process and assignee in hand-written SQL (steps.lockread)",
    "rows": "instances made without the model constructor's walk of every field (steps.rows)",
    "writes": "a step's writes sent as one statement of data-modifying CTEs (steps.writes)",
    "commit_with_writes": "the COMMIT sent in the round trip of the step's writes (steps.writes)",
    "lookahead": "a completion's certain next tasks routed in the lock read's round trip (steps.lookahead)",
    "statement_cache": "psycopg keeps the parsed form of a step's long statement (steps.writes)",
    "own_inbox": "the API's own-inbox page read in hand-written SQL (tasks.selectors.OwnInbox)",
    "token_auth": "an API token's user and roles read in one hand-written statement (gndp.api.authentication)",
    "representation": "output serializers' fields built once per class (gndp.api.representation)",
    "throttling": "the API rate limit counted in two numbers a user, not a list (gndp.api.throttling)",
}


def _from_environment() -> frozenset[str]:
    named = {name.strip() for name in os.environ.get("GNDP_PLAIN", "").split(",") if name.strip()}
    if "all" in named:
        return frozenset(TRICKS)
    unknown = named - set(TRICKS)
    if unknown:
        raise ValueError(f"GNDP_PLAIN names unknown tricks: {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(TRICKS)}, or all)")
    return frozenset(named)


_plain: frozenset[str] = _from_environment()


def on(name: str) -> bool:
    """Whether the trick `name` takes its short cut (not set aside by GNDP_PLAIN or `plain`)."""
    return name not in _plain


@contextmanager
def plain(*names: str) -> Iterator[None]:
    """Run the block the plain way for these tricks (all of them without names): the tests
    that hold each trick to the plain way."""
    global _plain
    unknown = set(names) - set(TRICKS)
    if unknown:
        raise ValueError(f"unknown tricks: {', '.join(sorted(unknown))}")
    previous = _plain
    _plain = previous | frozenset(names or TRICKS)
    try:
        yield
    finally:
        _plain = previous
