"""The one error a journey file can cause."""

from __future__ import annotations


class JourneyError(Exception):
    """A journey file that cannot be loaded; `problems` lists every problem found, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"invalid journey: {shown}{more}")
