"""A journey definition compiled into the immutable shape the engine core walks.

A blueprint is built once per (workflow version, container) and cached, so advancing a
process never touches the graph store: every lookup here is a dict access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Iterable, Mapping

from tasks import strategies

from .bounds import DEFAULT_BOUNDS, Bounds
from .durations import parse_duration

HUMAN = "human"
SYSTEM = "system"
DEFAULT_SYSTEM_RETRIES = 3
# `choose`: every conditional edge that holds fires (`all`), or only the first (`first`:
# an exclusive choice). `then: first_done`: the targets the atom enables race; the first
# of them to complete withdraws the others.
CHOOSE_ALL = "all"
CHOOSE_FIRST = "first"
FIRST_DONE = "first_done"
CHOOSE = (CHOOSE_ALL, CHOOSE_FIRST)
THEN = (FIRST_DONE,)
DEFAULT_MAX_ITERATIONS = 10  # a back edge's runs of its region, before a `loop_limit` incident


class UnknownContainer(LookupError):
    """The id names no journey, phase or module of this definition."""


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    type: str
    required: bool = False
    sensitive: bool = False
    choices: tuple[Any, ...] = ()
    label: str = ""


@dataclass(frozen=True, slots=True)
class Atom:
    id: str
    name: str
    position: int
    kind: str = HUMAN
    role: str | None = None
    priority: str = "medium"
    sla_target: timedelta | None = None
    sla_escalation: timedelta | None = None
    form: tuple[FormField, ...] = ()
    handler: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    choose: str = CHOOSE_ALL
    then: str | None = None

    @property
    def is_system(self) -> bool:
        return self.kind == SYSTEM


@dataclass(frozen=True, slots=True)
class Edge:
    """An ENABLES edge. `condition` is None for unconditional and default edges."""

    source: str
    target: str
    position: int
    condition: Any = None
    default: bool = False
    loop: bool = False  # a back edge: its firing runs its region again
    max_iterations: int = DEFAULT_MAX_ITERATIONS

    @property
    def conditional(self) -> bool:
        return self.condition is not None


@dataclass(frozen=True)
class Blueprint:
    container_id: str
    journey_id: str
    atoms: Mapping[str, Atom]
    edges: tuple[Edge, ...]
    depends_on: Mapping[str, tuple[str, ...]]
    roles: Mapping[str, str] = field(default_factory=dict)  # role id -> assignment strategy
    sensitive_paths: tuple[str, ...] = ()
    sla_target: timedelta | None = None
    bounds: Bounds = DEFAULT_BOUNDS  # on submitted values (results, contexts)

    @cached_property
    def outgoing(self) -> dict[str, tuple[Edge, ...]]:
        return _group(self.atoms, self.edges, key=lambda edge: edge.source)

    @cached_property
    def incoming(self) -> dict[str, tuple[Edge, ...]]:
        """The ordinary ENABLES edges into each atom: readiness waits for these. A back edge
        into an atom activates it itself, when it fires (`regions`)."""
        return _group(self.atoms, [edge for edge in self.edges if not edge.loop], key=lambda edge: edge.target)

    @cached_property
    def regions(self) -> dict[tuple[str, str], frozenset[str]]:
        """Each back edge (X, Y) -> its region: the atoms on a path of ordinary edges from Y
        to X, both included. The normalizer has checked that Y reaches X."""
        after = {atom_id: [edge.target for edge in edges if not edge.loop] for atom_id, edges in self.outgoing.items()}
        before = {atom_id: [edge.source for edge in edges] for atom_id, edges in self.incoming.items()}
        return {(edge.source, edge.target): frozenset(reachable(edge.target, after) & reachable(edge.source, before))
                for edge in self.edges if edge.loop}

    @cached_property
    def region_of(self) -> dict[str, tuple[str, str]]:
        """Each atom inside a loop -> the back edge of the innermost region it is in."""
        innermost: dict[str, tuple[str, str]] = {}
        for key, members in sorted(self.regions.items(), key=lambda item: -len(item[1])):
            for atom_id in members:
                innermost[atom_id] = key
        return innermost

    @cached_property
    def dependents(self) -> dict[str, tuple[str, ...]]:
        reverse: dict[str, list[str]] = {atom_id: [] for atom_id in self.atoms}
        for atom_id, targets in self.depends_on.items():
            for target in targets:
                reverse[target].append(atom_id)
        return {atom_id: tuple(ids) for atom_id, ids in reverse.items()}

    @cached_property
    def certain_next(self) -> dict[str, tuple[str, ...]]:
        """For each atom, the human atoms that its completion activates whatever the context:
        each enabled by it alone, unconditionally, and depending on nothing. A completion
        may route them before the engine has run (`steps.lookahead`). None for an atom with a
        back edge: when that fires, its other edges stay undecided."""
        return {
            atom_id: () if any(edge.loop for edge in self.outgoing[atom_id]) else tuple(
                edge.target for edge in self.outgoing[atom_id]
                if not edge.conditional and not edge.default and len(self.incoming[edge.target]) == 1
                and not self.depends_on.get(edge.target) and not self.atoms[edge.target].is_system
            )
            for atom_id in self.atoms
        }

    @cached_property
    def rivals(self) -> dict[str, tuple[str, ...]]:
        """For each racer (a target of a `then: first_done` atom, which is its only ENABLES
        source), the other racers of its race, in file order. The normalizer refuses a racer
        with another source, so a racer belongs to one race."""
        found: dict[str, tuple[str, ...]] = {}
        for atom_id, atom in self.atoms.items():
            if atom.then != FIRST_DONE:
                continue
            racers = [edge.target for edge in self.outgoing[atom_id] if not edge.loop]
            for racer in racers:
                found[racer] = tuple(other for other in racers if other != racer)
        return found

    @cached_property
    def start_atoms(self) -> tuple[str, ...]:
        return tuple(atom_id for atom_id in self.atoms if not self.incoming[atom_id])

    @cached_property
    def sensitive_fields(self) -> frozenset[str]:
        """Top-level context keys that hold PII: journey paths and sensitive form fields."""
        keys = {path.split(".", 1)[0] for path in self.sensitive_paths}
        for atom in self.atoms.values():
            keys.update(field.name for field in atom.form if field.sensitive)
        return frozenset(keys)

    @cached_property
    def encrypted_paths(self) -> tuple[str, ...]:
        """Context paths stored encrypted: the journey's `sensitive` paths and the sensitive
        form fields (top-level keys), shallowest first, none below another one."""
        names = [field.name for atom in self.atoms.values() for field in atom.form if field.sensitive]
        paths = sorted(set(self.sensitive_paths) | set(names), key=lambda path: (path.count("."), path))
        kept: list[str] = []
        for path in paths:
            if not any(path.startswith(parent + ".") for parent in kept):
                kept.append(path)
        return tuple(kept)


def reachable(start: str, arcs: Mapping[str, Iterable[str]]) -> set[str]:
    """`start` and every node its arcs lead to."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in arcs.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _group(atoms: Iterable[str], edges: Iterable[Edge], key) -> dict[str, tuple[Edge, ...]]:
    grouped: dict[str, list[Edge]] = {atom_id: [] for atom_id in atoms}
    for edge in edges:
        grouped[key(edge)].append(edge)
    return {atom_id: tuple(items) for atom_id, items in grouped.items()}


def containers(definition: Mapping[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Every container id of a definition -> (kind, its atom ids in file order)."""
    all_atoms = [atom["id"] for atom in definition["atoms"]]
    found: dict[str, tuple[str, list[str]]] = {definition["journey"]["id"]: ("journey", all_atoms)}
    order = {atom_id: index for index, atom_id in enumerate(all_atoms)}
    for phase in definition.get("phases", []):
        phase_atoms: list[str] = []
        for module in phase.get("modules", []):
            module_atoms = sorted(module.get("atoms", []), key=order.__getitem__)
            found[module["id"]] = ("module", module_atoms)
            phase_atoms.extend(module_atoms)
        found[phase["id"]] = ("phase", sorted(phase_atoms, key=order.__getitem__))
    return found


EVERYONE = "everyone"  # `journey.start.by`'s word for every signed-in user


@dataclass(frozen=True, slots=True)
class StartRule:
    """Who may start a journey version, and which of its phases and modules start on their
    own (`journey.start` of the file, its defaults resolved). Holders of the permission to
    start any journey are not part of it: that is the caller's business."""

    journey_id: str
    everyone: bool
    roles: frozenset[str]  # members of any of these may start (unless `everyone`)
    parts: frozenset[str]  # phases and modules that may be started on their own
    declared: bool  # `start.by` was written (False: the default, the performing roles)

    def allows_part(self, container_id: str) -> bool:
        return container_id == self.journey_id or container_id in self.parts


def start_rule(definition: Mapping[str, Any]) -> StartRule:
    """The start rule of a normalized definition. Without `start.by`, the roles that perform
    the journey's human atoms may start it; without `start.parts`, no part starts alone."""
    journey = definition["journey"]
    start = journey.get("start", {})
    by = start.get("by")
    if by is None:
        roles = frozenset(atom["performed_by"] for atom in definition["atoms"] if atom.get("performed_by"))
    else:
        roles = frozenset() if by == EVERYONE else frozenset(by)
    return StartRule(journey_id=journey["id"], everyone=by == EVERYONE, roles=roles,
                     parts=frozenset(start.get("parts", ())), declared=by is not None)


def compile_blueprint(
    definition: Mapping[str, Any], container_id: str | None = None, bounds: Bounds = DEFAULT_BOUNDS
) -> Blueprint:
    """Compile a normalized definition (see processes.journey) for one of its containers,
    to run under `bounds` (the app's settings)."""
    journey = definition["journey"]
    container_id = container_id or journey["id"]
    try:
        _, member_ids = containers(definition)[container_id]
    except KeyError:
        raise UnknownContainer(container_id) from None
    members = set(member_ids)
    rules = {rule["rule_id"]: rule["conditions"] for rule in definition.get("rules", [])}

    atoms = {}
    for position, raw in enumerate(definition["atoms"]):
        if raw["id"] in members:
            atoms[raw["id"]] = _compile_atom(raw, position)

    edges: list[Edge] = []
    depends_on: dict[str, list[str]] = {atom_id: [] for atom_id in atoms}
    for position, raw in enumerate(definition.get("edges", [])):
        # Edges that leave the container are not part of this workflow.
        if raw["from"] not in members or raw["to"] not in members:
            continue
        if raw["type"] == "DEPENDS_ON":
            depends_on[raw["from"]].append(raw["to"])
        elif raw["type"] == "ENABLES":
            edges.append(
                Edge(
                    source=raw["from"],
                    target=raw["to"],
                    position=position,
                    condition=_edge_condition(raw, rules),
                    default=bool(raw.get("default", False)),
                    loop=bool(raw.get("loop", False)),
                    max_iterations=int(raw.get("max_iterations", DEFAULT_MAX_ITERATIONS)),
                )
            )

    sla = journey.get("sla", {}).get("target")
    return Blueprint(
        container_id=container_id,
        journey_id=journey["id"],
        atoms=atoms,
        edges=tuple(edges),
        depends_on={atom_id: tuple(ids) for atom_id, ids in depends_on.items()},
        roles={role["id"]: role.get("assignment", strategies.DEFAULT) for role in definition.get("roles", [])},
        sensitive_paths=tuple(journey.get("sensitive", ())),
        sla_target=parse_duration(sla) if sla else None,
        bounds=bounds,
    )


def _compile_atom(raw: Mapping[str, Any], position: int) -> Atom:
    kind = raw.get("kind", HUMAN)
    sla = raw.get("sla", {})
    return Atom(
        id=raw["id"],
        name=raw.get("name", raw["id"]),
        position=position,
        kind=kind,
        role=raw.get("performed_by"),
        priority=raw.get("priority", "medium"),
        sla_target=parse_duration(sla["target"]) if "target" in sla else None,
        sla_escalation=parse_duration(sla["escalation"]) if "escalation" in sla else None,
        form=tuple(
            FormField(
                name=item["name"],
                type=item["type"],
                required=bool(item.get("required", False)),
                sensitive=bool(item.get("sensitive", False)),
                choices=tuple(item.get("choices", ())),
                label=item.get("label", ""),
            )
            for item in raw.get("form", ())
        ),
        handler=raw.get("handler"),
        params=dict(raw.get("params", {})),
        retries=int(raw.get("retries", DEFAULT_SYSTEM_RETRIES if kind == SYSTEM else 0)),
        choose=raw.get("choose", CHOOSE_ALL),
        then=raw.get("then"),
    )


def _edge_condition(raw: Mapping[str, Any], rules: Mapping[str, Any]) -> Any:
    """All the edge's rules and its inline condition, as one `all` group (None if none)."""
    parts = [_as_group(rules[rule_id]) for rule_id in raw.get("rules", ())]
    if raw.get("condition") is not None:
        parts.append(_as_group(raw["condition"]))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"all": parts}


def _as_group(condition: Any) -> Any:
    return {"all": list(condition)} if isinstance(condition, list) else condition
