"""What a journey will do before it runs: validation warnings, and test coverage.

Pure Python (no Django). Rule conditions are reasoned about, never run on guesses: an
edge's condition is put in disjunctive normal form over its leaves, and each conjunction
is checked field by field. A field's possible values are split by kind; numbers are
reasoned about by intervals (every literal's truth only changes at the constants the
rules name, so one candidate per interval between them is enough), and `eq`/`ne`/`in`/
`not_in` by sets (a positive `eq` or `in` limits the value to finitely many). Each answer
is one of:

- SAT, with a witness: a context that makes the formula true, *checked by the rule
  evaluator itself*, so a warning that quotes a witness is never wrong;
- UNSAT, proved: no JSON value of any kind the field can have satisfies it;
- UNKNOWN: too large, or a kind this reasoning does not cover (long strings, lists):
  then nothing is claimed and no warning is given.

What a field can hold comes from the forms: a required field of the atom whose edges are
decided holds a value of its type (its result was validated and merged just before); a
field some other form declares holds one of the declared types or is absent; any other
field may be absent or hold any JSON value.

What the reasoning knows of each operator (the kinds of value it can hold for, its bounds,
whether it pins a value to the rule's) is the operator's own entry in
`processes.engine.operators`. A condition naming an operator not registered there is
refused (`operators.UnknownOperator`), never guessed at.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from . import operators, rules
from .blueprint import CHOOSE_FIRST, Blueprint, Edge, FormField
from .prediction import topological_order

SAT = "sat"
UNSAT = "unsat"
UNKNOWN = "unknown"

MAX_CONJUNCTIONS = 256  # DNF terms per formula before the answer is UNKNOWN
MAX_CANDIDATES = 400  # values tried per field
MAX_LIST_VALUE = 200  # an `in` list longer than this is not reasoned about

_MISSING = rules.MISSING
_ALL_KINDS = operators.KINDS
_TYPE_KINDS = {"number": "number", "integer": "number", "string": "string", "date": "string",
               "boolean": "bool", "choice": "finite"}


# --- formulas --------------------------------------------------------------------------------


class Literal(NamedTuple):
    field: str
    operator: str
    value: Any
    positive: bool

    def holds_for(self, value: Any) -> bool:
        """Whether the literal holds when its field has `value` (or is _MISSING)."""
        leaf = {"field": "v", "operator": self.operator}
        if operators.get(self.operator).takes_value:
            leaf["value"] = self.value
        held = rules.evaluate(leaf, {} if value is _MISSING else {"v": value})
        return held if self.positive else not held


class _TooComplex(Exception):
    pass


def dnf(cond: Any, positive: bool = True) -> list[list[Literal]]:
    """The condition (negated when not `positive`) as a disjunction of conjunctions."""
    if isinstance(cond, list):
        cond = {"all": cond}
    if "not" in cond:
        return dnf(cond["not"], not positive)
    for key in ("all", "any"):
        if key in cond:
            parts = [dnf(child, positive) for child in cond[key]]
            # not(all) is any(not) and not(any) is all(not): De Morgan flips the join.
            if (key == "all") == positive:
                return _product(parts)
            joined = [term for part in parts for term in part]
            if len(joined) > MAX_CONJUNCTIONS:
                raise _TooComplex()
            return joined
    operators.get(cond["operator"])  # an operator it knows nothing of is refused, not guessed at
    return [[Literal(cond["field"], cond["operator"], cond.get("value"), positive)]]


def _product(parts: list[list[list[Literal]]]) -> list[list[Literal]]:
    terms: list[list[Literal]] = [[]]
    for part in parts:
        if len(terms) * len(part) > MAX_CONJUNCTIONS:
            raise _TooComplex()
        terms = [term + other for term in terms for other in part]
    return terms


# --- what a field can hold -----------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """The values a context field can have where a condition is evaluated."""

    types: frozenset[str] = frozenset({"any"})  # form field types, or "any"
    choices: tuple[Any, ...] = ()
    may_be_missing: bool = True
    required: bool = False  # a required form value is never blank (null or "")

    def accepts(self, value: Any) -> bool:
        if value is _MISSING:
            return self.may_be_missing
        if self.required and (value is None or value == ""):
            return False
        return any(_type_accepts(kind, value, self.choices) for kind in self.types)

    @property
    def kinds(self) -> set[str]:
        if "any" in self.types:
            return set(_ALL_KINDS)
        return {_TYPE_KINDS[kind] for kind in self.types}


ANY = Domain()


def _type_accepts(kind: str, value: Any, choices: tuple[Any, ...]) -> bool:
    if kind == "any":
        return True
    if kind == "number":
        return rules.is_number(value)
    if kind == "integer":
        return rules.is_number(value) and float(value).is_integer()
    if kind == "string":
        return isinstance(value, str)
    if kind == "date":
        return _is_date(value)
    if kind == "boolean":
        return isinstance(value, bool)
    return any(type(value) is type(choice) and value == choice for choice in choices)  # choice


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def field_domains(blueprint: Blueprint) -> Callable[[str], Callable[[str], Domain]]:
    """domains(source atom id)(field path): what a field holds when that atom's edges are decided."""
    declared: dict[str, list[FormField]] = {}
    for atom in blueprint.atoms.values():
        for item in atom.form:
            declared.setdefault(item.name, []).append(item)

    def for_source(source: str) -> Callable[[str], Domain]:
        own = {item.name: item for item in blueprint.atoms[source].form} if source in blueprint.atoms else {}

        def domain(path: str) -> Domain:
            if path in own and own[path].required:
                item = own[path]
                return Domain(frozenset({item.type}), item.choices, may_be_missing=False, required=True)
            if path in declared:
                items = declared[path]
                choices = tuple(c for item in items for c in item.choices)
                return Domain(frozenset(item.type for item in items), choices, may_be_missing=True)
            return ANY

        return domain

    return for_source


# --- solving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: str
    witness: Mapping[str, Any] | None = None  # field path -> value (_MISSING: absent)

    def describe(self) -> str:
        if not self.witness:
            return "any context"
        return ", ".join(f"{path} missing" if value is _MISSING else f"{path} = {rules.show(value)}"
                         for path, value in sorted(self.witness.items()))


def solve(cond: Any, domains: Callable[[str], Domain] = lambda path: ANY) -> Verdict:
    """Whether some context satisfies the condition, with a witness when it does."""
    try:
        terms = dnf(cond)
    except _TooComplex:
        return Verdict(UNKNOWN)
    unknown = False
    for term in terms:
        verdict = _solve_conjunction(term, domains)
        if verdict.status == SAT and rules.evaluate(cond, witness_context(verdict.witness)):
            return verdict
        unknown = unknown or verdict.status != UNSAT
    return Verdict(UNKNOWN if unknown else UNSAT)


def witness_context(witness: Mapping[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for path, value in (witness or {}).items():
        if value is _MISSING:
            continue
        *parents, last = path.split(".")
        node = context
        for segment in parents:
            node = node.setdefault(segment, {})
        node[last] = value
    return context


def _solve_conjunction(literals: Sequence[Literal], domains: Callable[[str], Domain]) -> Verdict:
    by_field: dict[str, list[Literal]] = {}
    for literal in literals:
        by_field.setdefault(literal.field, []).append(literal)
    # `a` and `a.b` constrain each other (a must then be a mapping): not reasoned about.
    unknown = any(other.startswith(path + ".") for path in by_field for other in by_field)
    witness: dict[str, Any] = {}
    for path, group in by_field.items():
        status, value = _solve_field(group, domains(path))
        if status == UNSAT:
            return Verdict(UNSAT)
        if status == UNKNOWN:
            unknown = True
        else:
            witness[path] = value
    return Verdict(UNKNOWN) if unknown else Verdict(SAT, witness)


def _solve_field(literals: Sequence[Literal], domain: Domain) -> tuple[str, Any]:
    if any(isinstance(lit.value, list) and len(lit.value) > MAX_LIST_VALUE for lit in literals):
        return UNKNOWN, None
    candidates, complete = _candidates(literals, domain)
    for value in candidates:
        if domain.accepts(value) and all(lit.holds_for(value) for lit in literals):
            return SAT, value
    if complete and all(_kind_covered(kind, literals) for kind in domain.kinds):
        return UNSAT, None
    return UNKNOWN, None


def _kind_covered(kind: str, literals: Sequence[Literal]) -> bool:
    """Whether the candidates tried every value of this kind that could matter."""
    if kind in ("null", "bool", "finite"):
        return True  # exhaustive by construction (see _candidates)
    if kind == "number" and all(operators.get(lit.operator).steps_at_constants for lit in literals):
        return True  # one number in each interval between the constants was tried
    if any(lit.positive and kind not in operators.get(lit.operator).kinds(lit.value) for lit in literals):
        return True  # a positive literal no value of this kind satisfies
    if any(not lit.positive and lit.operator == operators.EXISTS for lit in literals):
        return True  # the field must be absent, and absence was tried
    if any(operators.get(lit.operator).pins_when is lit.positive for lit in literals):
        return True  # a present value is one of the listed constants, and each was tried
    return kind == "string" and _string_interval_empty(literals)


_kind = operators.kind  # a JSON value's kind (the analysis meets no other)


def _string_interval_empty(literals: Sequence[Literal]) -> bool:
    """Whether the positive orderings on strings leave no string between their bounds."""
    low, low_open, high, high_open = None, False, None, False
    for lit in literals:
        if not lit.positive:
            continue
        for side, bound, strict in operators.get(lit.operator).bounds(lit.value):
            if not isinstance(bound, str):
                continue
            if side == "low" and (low is None or bound > low or (bound == low and strict)):
                low, low_open = bound, strict
            elif side == "high" and (high is None or bound < high or (bound == high and strict)):
                high, high_open = bound, strict
    if low is None or high is None:
        return False
    return low > high or (low == high and (low_open or high_open))


def _candidates(literals: Sequence[Literal], domain: Domain) -> tuple[list[Any], bool]:
    """Values worth trying, and whether the list is whole (not cut at MAX_CANDIDATES).

    For numbers the list holds every constant, a point strictly between each two
    neighbours and one beyond each end (for integer fields, the whole numbers next to
    each constant): every region where the literals' truth is constant has one.
    """
    constants = [lit.value for lit in literals if operators.get(lit.operator).takes_value]
    flat: list[Any] = []
    for value in constants:
        flat.extend(value if isinstance(value, list) else [value])
    found: list[Any] = [_MISSING, None, True, False, "", [], {}]
    found += list(domain.choices)
    found += [value for value in flat if not isinstance(value, (list, dict))]
    found += [value for value in constants if isinstance(value, (list, dict))]
    numbers = [v for v in flat if rules.is_number(v)]
    if domain.types & {"any", "number"}:
        found += _real_candidates(numbers)
    if "integer" in domain.types:
        found += _integer_candidates(numbers)
    found += _string_candidates([v for v in flat if isinstance(v, str)], dates="date" in domain.types)
    found += [value for lit in literals for value in operators.get(lit.operator).candidates(lit.value)]
    unique: dict[tuple[Any, ...], Any] = {}
    for value in found:
        unique.setdefault(_identity(value), value)
    values = list(unique.values())
    return values[:MAX_CANDIDATES], len(values) <= MAX_CANDIDATES


def _identity(value: Any) -> tuple[Any, ...]:
    """A key under which values the evaluator treats as equal collide (1 and 1.0; not 1 and True)."""
    if value is _MISSING:
        return ("missing",)
    kind = _kind(value)
    if kind in ("list", "dict"):
        return (kind, json.dumps(value, sort_keys=True))
    return (kind, value)


def _real_candidates(numbers: list[float]) -> list[float]:
    points = sorted(set(numbers)) or [0]
    found = [0, *points, points[0] - 1, points[-1] + 1]
    return found + [(a + b) / 2 for a, b in zip(points, points[1:])]


def _integer_candidates(numbers: list[float]) -> list[int]:
    found = [0]
    for value in sorted(set(numbers)):
        below, above = math.floor(value), math.ceil(value)
        found += [below - 1, below, below + 1, above - 1, above, above + 1]
    return found


def _string_candidates(strings: list[str], dates: bool) -> list[str]:
    found = ["~"]
    for value in strings:
        found += [value, value + "z", value[:-1]]
    if dates:
        found.append("2000-01-01")
        for value in strings:
            if _is_date(value):
                day = datetime.date.fromisoformat(value)
                found += [(day + datetime.timedelta(days=d)).isoformat() for d in (-1, 1)]
    return found


# --- the warnings --------------------------------------------------------------------------------


def workflow_errors(blueprint: Blueprint) -> list[str]:
    if not blueprint.atoms:
        return [f"{blueprint.container_id}: the workflow has no atoms"]
    if not blueprint.start_atoms:
        return [f"{blueprint.container_id}: the workflow has no start atom"]
    return []


def rule_warnings(blueprint: Blueprint, definition: Mapping[str, Any]) -> list[str]:
    """Conditions that never or always hold, fan-outs that can skip every branch, loops that
    never end, and atoms that no context reaches."""
    labels = _rule_labels(definition)
    domains = field_domains(blueprint)
    check = _memoized_solve()
    found: list[str] = []
    can_fire: dict[tuple[str, str], bool] = {}
    for atom_id, edges in blueprint.outgoing.items():
        atom_found, atom_can_fire = _decision_warnings(blueprint, atom_id, edges, labels, domains(atom_id), check)
        found += atom_found
        can_fire.update(atom_can_fire)
    found += _endless_loops(blueprint, can_fire, labels, domains, check)
    found += _unreachable(blueprint, can_fire)
    return found


def _endless_loops(blueprint: Blueprint, can_fire, labels, domains, check) -> list[str]:
    """Back edges that fire whatever the context: their loop ends only at its limit."""
    found = []
    for edge in blueprint.edges:
        if not edge.loop:
            continue
        exits = [other for other in blueprint.outgoing[edge.source] if not other.loop]
        if edge.conditional:
            endless = check({"not": edge.condition}, domains(edge.source)).status == UNSAT
        else:  # the default edge: it fires whenever no conditional edge does
            endless = not any(can_fire[(other.source, other.target)] for other in exits if other.conditional)
        if endless:
            found.append(f"edges[{edge.position}]: the loop {_edge_name(edge, labels)} always runs again: every "
                         f"process stops at its limit ({edge.max_iterations} runs)")
    return found


def _memoized_solve() -> Callable[[Any, Callable[[str], Domain]], Verdict]:
    """`solve`, remembering answers: large journeys repeat the same rule on many edges."""
    answers: dict[tuple[str, tuple[tuple[str, Domain], ...]], Verdict] = {}

    def check(cond: Any, domains: Callable[[str], Domain]) -> Verdict:
        fields = tuple((path, domains(path)) for path in sorted(rules.condition_fields(cond)))
        key = (json.dumps(cond, sort_keys=True), fields)
        if key not in answers:
            answers[key] = solve(cond, domains)
        return answers[key]

    return check


def _decision_warnings(
    blueprint: Blueprint, atom_id: str, edges: Sequence[Edge], labels, domains, check
) -> tuple[list[str], dict[tuple[str, str], bool]]:
    """The warnings about one atom's outgoing edges, and which of them can fire at all."""
    conditional = [edge for edge in edges if edge.conditional]
    default = next((edge for edge in edges if edge.default), None)
    can_fire = {(edge.source, edge.target): True for edge in edges}
    if not conditional:
        return [], can_fire
    found = []
    always = []
    exclusive = blueprint.atoms[atom_id].choose == CHOOSE_FIRST
    for index, edge in enumerate(conditional):
        name = _edge_name(edge, labels)
        # With `choose: first` an edge fires when its condition holds and no earlier one's does.
        earlier = [{"not": other.condition} for other in conditional[:index]] if exclusive else []
        condition = {"all": [edge.condition, *earlier]} if earlier else edge.condition
        if check(edge.condition, domains).status == UNSAT:
            found.append(f"edges[{edge.position}]: the condition of {name} can never hold, so the edge never fires")
            can_fire[(edge.source, edge.target)] = False
        elif earlier and check(condition, domains).status == UNSAT:
            found.append(f"edges[{edge.position}]: {name} never fires: with choose: first, an earlier edge fires "
                         "whenever its condition holds")
            can_fire[(edge.source, edge.target)] = False
        elif check({"not": condition}, domains).status == UNSAT:
            always.append(edge)
            tail = f"; the default edge edges[{default.position}] never fires" if default else ""
            found.append(f"edges[{edge.position}]: the condition of {name} always holds{tail}")
    none_fire = check({"all": [{"not": edge.condition} for edge in conditional]}, domains)
    if default is not None:
        can_fire[(default.source, default.target)] = none_fire.status != UNSAT
        if none_fire.status == UNSAT and not always:
            found.append(f"edges[{default.position}]: the default edge {_edge_name(default, labels)} never fires: "
                         "some conditional edge from the same atom always does")
    elif none_fire.status == SAT and all(edge.conditional for edge in edges):
        atom = blueprint.atoms[atom_id]
        found.append(f"atoms[{atom.position}]: atom {atom_id!r} has conditional edges and no default: "
                     f"every branch is skipped when {none_fire.describe()}")
    return found, can_fire


def _unreachable(blueprint: Blueprint, can_fire: Mapping[tuple[str, str], bool]) -> list[str]:
    """Atoms with no path of edges that can fire from a start atom."""
    reached: set[str] = set()
    for atom_id in topological_order(blueprint):
        incoming = blueprint.incoming[atom_id]
        if not incoming or any(edge.source in reached and can_fire[(edge.source, edge.target)] for edge in incoming):
            reached.add(atom_id)
    return [
        f"atoms[{atom.position}]: atom {atom.id!r} is unreachable: no context makes an edge into it fire"
        for atom in blueprint.atoms.values() if atom.id not in reached
    ]


def _rule_labels(definition: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in definition.get("edges", ()):
        if edge.get("type") == "ENABLES" and edge.get("rules"):
            labels[(edge["from"], edge["to"])] = list(edge["rules"])
    return labels


def _edge_name(edge: Edge, labels: Mapping[tuple[str, str], list[str]]) -> str:
    rule_ids = labels.get((edge.source, edge.target))
    named = f" (rule {', '.join(repr(r) for r in rule_ids)})" if rule_ids else ""
    return f"{edge.source} -> {edge.target}{named}"


# --- coverage ------------------------------------------------------------------------------


def coverage(blueprint: Blueprint, outcomes: Iterable[Any]) -> dict[str, Any]:
    """Which atoms and ENABLES edges a set of simulations exercised (SimulationResults),
    and for each conditional or default edge how often it fired and did not."""
    visited: set[str] = set()
    fired: dict[tuple[str, str], int] = {}
    not_fired: dict[tuple[str, str], int] = {}
    for outcome in outcomes:
        visited.update(outcome.visited_atoms)
        for edge in outcome.fired_edges:
            key = (edge["from"], edge["to"])
            fired[key] = fired.get(key, 0) + 1
        for decision in outcome.decisions:
            if not decision["fired"]:
                key = (decision["from"], decision["to"])
                not_fired[key] = not_fired.get(key, 0) + 1
    atom_ids = list(blueprint.atoms)
    edge_keys = [(edge.source, edge.target) for edge in blueprint.edges]
    covered_edges = [key for key in edge_keys if fired.get(key)]
    return {
        "atoms": _share([a for a in atom_ids if a in visited], [a for a in atom_ids if a not in visited]),
        "edges": _share([_edge_dict(k) for k in covered_edges], [_edge_dict(k) for k in edge_keys if not fired.get(k)]),
        "branches": [
            {**_edge_dict((edge.source, edge.target)), "edge": f"edges[{edge.position}]",
             "kind": "conditional" if edge.conditional else "default",
             "fired": fired.get((edge.source, edge.target), 0),
             "not_fired": not_fired.get((edge.source, edge.target), 0),
             "complete": bool(fired.get((edge.source, edge.target)) and not_fired.get((edge.source, edge.target)))}
            for edge in blueprint.edges if edge.conditional or edge.default
        ],
    }


def _edge_dict(key: tuple[str, str]) -> dict[str, str]:
    return {"from": key[0], "to": key[1]}


def _share(covered: list[Any], uncovered: list[Any]) -> dict[str, Any]:
    total = len(covered) + len(uncovered)
    return {"total": total, "covered": covered, "uncovered": uncovered,
            "ratio": round(len(covered) / total, 4) if total else 1.0}
