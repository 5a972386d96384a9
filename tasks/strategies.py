"""Routing strategies: how a new task of a role picks one of the role's available people.

A strategy is one class, registered under the name a journey's role gives as its
`assignment`. It ranks the people three ways that must agree, each ahead of the tie-break
all strategies share (the one assigned longest ago, then the lowest user id):

- `statement_order`: the ORDER BY terms of the routing statement on PostgreSQL, over the
  user row `u`, where `{open_tasks}` stands for the person's open tasks;
- `query_order`: the same as Django order terms (the portable query, SQLite), over users
  annotated with `open_tasks`;
- `memory_rank`: the same in memory (a bulk start's `routing.BatchRouter`), given the
  person's open tasks, the batch's own counted, and the user.

`reads_open_tasks` says whether the ranking counts open tasks, so that routing counts them
only for the strategies that do. A strategy that `queues` picks nobody: the task waits in
the role's queue for any member to claim.

Importing this module imports no Django: the journey normalizer and the blueprint read the
names from it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Strategy:
    """One way to route a role's new tasks; see the module's docstring."""

    name: ClassVar[str]
    queues: ClassVar[bool] = False
    reads_open_tasks: ClassVar[bool] = False

    def statement_order(self) -> tuple[str, ...]:
        return ()

    def query_order(self) -> tuple[Any, ...]:
        return ()

    def memory_rank(self, open_tasks: int, user: Any) -> tuple[Any, ...]:
        return ()


# Every strategy by name, in the order they were registered (the order the journey
# normalizer lists them in). Routing reads it once a task: a dict lookup.
STRATEGIES: dict[str, Strategy] = {}

# A role that names no strategy routes this way; the canonical journey omits it.
DEFAULT = "least_busy"


def register(cls: type[Strategy]) -> type[Strategy]:
    """Register a strategy class under its `name` (a class decorator)."""
    if cls.name in STRATEGIES and type(STRATEGIES[cls.name]) is not cls:
        raise ValueError(f"a routing strategy named {cls.name!r} is registered already")
    STRATEGIES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    STRATEGIES.pop(name, None)


@register
class LeastBusy(Strategy):
    """The member with the fewest open tasks."""

    name = "least_busy"
    reads_open_tasks = True

    def statement_order(self) -> tuple[str, ...]:
        return ("{open_tasks}",)

    def query_order(self) -> tuple[Any, ...]:
        return ("open_tasks",)

    def memory_rank(self, open_tasks: int, user: Any) -> tuple[Any, ...]:
        return (open_tasks,)


@register
class RoundRobin(Strategy):
    """The member assigned longest ago: the tie-break alone, which is a rotation."""

    name = "round_robin"


@register
class Queue(Strategy):
    """Nobody: the task waits in the role's queue for any member to claim."""

    name = "queue"
    queues = True
