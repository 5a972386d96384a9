"""Executing what is already in the graph store: every journey it holds, validated as a file
is validated, published as a new workflow version when it changed.

In the GNDP system analysts draw and change journeys in Neo4j with other tools; this is
how the engine picks them up. `manage.py sync_journeys`, the periodic job (`processes.jobs`) and the
admin action on workflow versions all run `sync_journeys`. The store in use is read (Neo4j
when NEO4J_URI is set, the embedded store otherwise); nothing is written back to it.
Running processes keep the versions they started on: a new version only changes what new
processes run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InvalidInput, NotFound
from .graph import get_store
from .versions import latest_version, publish_stored_journey

PUBLISHED, UNCHANGED, REJECTED = "published", "unchanged", "rejected"


@dataclass(frozen=True)
class JourneySync:
    """What the sync did with one journey of the graph store."""

    journey_id: str
    outcome: str  # published | unchanged | rejected
    version: int | None = None  # the version the graph matches (published or unchanged)
    latest: int | None = None  # the latest version of the journey, when it is another one
    problems: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        if self.outcome == PUBLISHED:
            return f"{self.journey_id}: published (new version {self.version})"
        if self.outcome == UNCHANGED:
            if self.latest is not None and self.latest != self.version:
                # A hash names one version: the graph went back to an older version's content,
                # which cannot be published again under a new number.
                return (f"{self.journey_id}: unchanged (the graph matches version {self.version}; "
                        f"version {self.latest} stays the latest)")
            return f"{self.journey_id}: unchanged (version {self.version})"
        return f"{self.journey_id}: rejected: " + "; ".join(self.problems)


@dataclass
class SyncReport:
    journeys: list[JourneySync] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.journeys if item.outcome == outcome)

    @property
    def rejected(self) -> list[JourneySync]:
        return [item for item in self.journeys if item.outcome == REJECTED]

    @property
    def summary(self) -> str:
        return (f"{len(self.journeys)} journeys in the graph store: {self.count(PUBLISHED)} published, "
                f"{self.count(UNCHANGED)} unchanged, {self.count(REJECTED)} rejected")


def sync_journeys(store=None) -> SyncReport:
    """Publish every journey of the graph store that changed, in the order of their ids.

    Each journey stands alone: one that is rejected holds none of the others back. The
    graph store being unreachable is GraphStoreUnavailable (a ServiceError), raised."""
    store = store or get_store()
    report = SyncReport()
    for summary in store.list_journeys():
        report.journeys.append(sync_journey(summary.id, store=store))
    return report


def sync_journey(journey_id: str, *, store=None) -> JourneySync:
    try:
        published = publish_stored_journey(journey_id, store=store)
    except InvalidInput as exc:
        problems = exc.details.get("problems") if isinstance(exc.details, dict) else None
        return JourneySync(journey_id, REJECTED, problems=tuple(str(p) for p in problems or [exc.message]))
    except NotFound as exc:  # deleted between the listing and the read
        return JourneySync(journey_id, REJECTED, problems=(exc.message,))
    version = published.version
    if published.created:
        return JourneySync(journey_id, PUBLISHED, version=version.number)
    latest = latest_version(journey_id)
    return JourneySync(journey_id, UNCHANGED, version=version.number, latest=latest.number if latest else None)
