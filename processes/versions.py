"""Publishing journeys as immutable workflow versions, and the per-version blueprint cache."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from . import handlers
from .engine.blueprint import Blueprint, StartRule, compile_blueprint, containers, start_rule
from .engine.bounds import Bounds
from .errors import InvalidInput, NotFound
from .graph import get_store
from .journey import JourneyError, definition_hash, normalize
from .models import WorkflowVersion


@dataclass(frozen=True)
class Published:
    version: WorkflowVersion
    created: bool


def publish_journey(data: Any) -> Published:
    """Validate a journey file's data, store it in the graph store, and publish it.

    Nothing is stored when anything is wrong. An unchanged journey publishes no new
    version: the content hash finds the existing one.
    """
    definition = _validated(data)
    store = get_store()
    store.save_journey(definition)
    # What runs is what the store holds: read it back, so a store that lost or changed
    # anything fails here, at load time, and not in a running process.
    stored = normalize(store.get_journey(definition["journey"]["id"]), known_handlers=handlers.names())
    return _publish_version(stored)


def publish_stored_journey(journey_id: str, *, store=None) -> Published:
    """Publish the journey the graph store holds now, validated exactly as a file is
    (normalize with the registered handlers), without writing to the graph store: what
    `manage.py sync_journeys` does for journeys drawn or changed in Neo4j by other tools.

    InvalidInput (with `details["problems"]`) when the stored graph is not a valid journey;
    NotFound when the store does not hold it. An unchanged journey publishes nothing: the
    content hash finds the existing version.
    """
    store = store or get_store()
    try:
        data = store.get_journey(journey_id)
    except (KeyError, TypeError, ValueError) as exc:
        # A graph drawn by hand can miss what the model requires (an id, valid JSON).
        problem = f"the stored graph cannot be read as a journey: {type(exc).__name__}: {exc}"
        raise InvalidInput("invalid journey", details={"problems": [problem]}) from exc
    if data is None:
        raise NotFound(f"the graph store holds no journey {journey_id!r}", code="unknown_journey")
    return _publish_version(_validated(data))


def _validated(data: Any) -> dict:
    """The journey's canonical definition, checked with the registered handlers."""
    try:
        return normalize(data, known_handlers=handlers.names())
    except JourneyError as exc:
        raise InvalidInput("invalid journey", details={"problems": exc.problems}) from exc


def _publish_version(stored: dict) -> Published:
    """The version of a validated definition: the existing one with its content hash, or
    the next number. Two publishers at the same moment: the unique constraint turns one
    away, and it looks again."""
    digest = definition_hash(stored)
    journey_id = stored["journey"]["id"]
    for _ in range(3):
        existing = WorkflowVersion.objects.filter(journey_id=journey_id, hash=digest).first()
        if existing:
            return Published(existing, created=False)
        latest = latest_version(journey_id)
        try:
            with transaction.atomic():
                version = WorkflowVersion.objects.create(
                    journey_id=journey_id,
                    number=(latest.number + 1) if latest else 1,
                    hash=digest,
                    name=stored["journey"]["name"],
                    definition=stored,
                )
            return Published(version, created=True)
        except IntegrityError:
            continue  # another loader or sync published at the same moment: look again
    raise InvalidInput("could not publish the journey: too many concurrent publications")


def latest_version(journey_id: str, *, with_definition: bool = True) -> WorkflowVersion | None:
    found = WorkflowVersion.objects.filter(journey_id=journey_id)
    if not with_definition:
        found = found.defer("definition")
    return found.order_by("-number").first()


def resolve_workflow(container_id: str) -> WorkflowVersion:
    """The latest published version of the journey that holds this journey, phase or module.

    Read from the published versions, not the graph store: starting a process must not
    depend on the graph store being reachable (it may be a Neo4j server that is down).
    Without its definition, which every start would read and parse again: `definition_of`
    and `get_blueprint` have it, cached.
    """
    version = latest_version(container_id, with_definition=False)
    if version is not None:
        return version
    newest = WorkflowVersion.objects.filter(journey_id=OuterRef("journey_id")).order_by("-number").values("number")[:1]
    for candidate in WorkflowVersion.objects.filter(number=Subquery(newest)).defer("definition").order_by("journey_id"):
        if container_id in _containers(candidate.pk):
            return candidate
    raise NotFound(f"no journey, phase or module named {container_id!r}", code="unknown_workflow")


@lru_cache(maxsize=256)
def _definition(version_id: int) -> dict[str, Any]:
    # Versions never change, so caching by primary key is always correct.
    return WorkflowVersion.objects.values_list("definition", flat=True).get(pk=version_id)


@lru_cache(maxsize=256)
def _containers(version_id: int) -> frozenset[str]:
    return frozenset(containers(_definition(version_id)))


@lru_cache(maxsize=1024)
def get_blueprint(version_id: int, container_id: str) -> Blueprint:
    return compile_blueprint(_definition(version_id), container_id, input_bounds())


def input_bounds() -> Bounds:
    """The bounds on submitted values the engine applies (GNDP_MAX_STRING_LENGTH)."""
    return Bounds(max_string_length=settings.GNDP_MAX_STRING_LENGTH)


def definition_of(version_id: int) -> dict[str, Any]:
    return _definition(version_id)


@lru_cache(maxsize=256)
def start_rule_of(version_id: int) -> StartRule:
    """Who may start this version, and which of its parts (processes.start_rights checks it)."""
    return start_rule(_definition(version_id))
