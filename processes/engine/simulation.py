"""Run a workflow with the engine core alone: no database, no tasks, no side effects.

Besides the path, a simulation records why the path went where it did: for every atom
that has a conditional or a default edge, each outgoing edge's outcome and, for a
conditional edge, each of its rules with every condition's field, operator, expected
value and actual value. Whether an edge fired is read from the engine core's own
decision; the explanation is computed beside it and only ever describes it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping, Sequence

from . import core, rules
from .blueprint import CHOOSE_FIRST, Atom, Blueprint, Edge
from .durations import format_duration
from .prediction import path_duration

HandlerRunner = Callable[[Atom, Mapping[str, Any]], Mapping[str, Any]]
# (source, target) of an ENABLES edge -> the ids of its rules, None for an inline condition,
# in the order compile_blueprint joins them into the edge's condition.
EdgeRules = Mapping[tuple[str, str], Sequence[str | None]]

REDACTED = "[redacted]"
CONDITIONAL = "conditional"
DEFAULT = "default"
UNCONDITIONAL = "unconditional"


@dataclass
class SimulationResult:
    success: bool
    visited_atoms: list[str] = field(default_factory=list)
    skipped_atoms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    predicted_duration: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    fired_edges: list[dict[str, str]] = field(default_factory=list)  # {"from", "to"}, in decision order

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "visited_atoms": self.visited_atoms,
            "skipped_atoms": self.skipped_atoms,
            "errors": self.errors,
            "predicted_duration": self.predicted_duration,
            "decisions": self.decisions,
            "fired_edges": self.fired_edges,
        }


def simulate(
    blueprint: Blueprint,
    context: Mapping[str, Any] | None = None,
    results: Mapping[str, Mapping[str, Any]] | None = None,
    run_handler: HandlerRunner | None = None,
    *,
    edge_rules: EdgeRules | None = None,
    durations: Mapping[str, timedelta] | None = None,
) -> SimulationResult:
    """While any atom is active, complete the one first in file order, then re-evaluate.

    An atom's result is what `results` maps its id to (for a loop, a list: the n-th
    completion takes the n-th, the last repeats), laid over its handler's result for a
    system atom, and `{}` otherwise. A loop run past its `max_iterations` is an error. `durations` (atom id -> how long it takes) replaces
    SLA targets in `predicted_duration`, the critical path of the path taken.
    """
    results = results or {}
    completions: dict[str, int] = {}
    try:
        step = core.start(blueprint, context or {})
    except core.InvalidContext as exc:
        problems = [f"context.{name}: {message}" for name, message in exc.problems.items()]
        return SimulationResult(success=False, errors=problems)
    runtime, ctx = step.runtime, step.context
    visited: list[str] = []
    skipped: list[str] = list(step.skipped)
    errors: list[str] = []
    decisions: list[dict[str, Any]] = []
    fired_edges: list[dict[str, str]] = []
    # Only completion turns an active atom into anything else (or a race's end, which
    # skips the rivals: they are dropped as they come up), so the active set is what the
    # steps activated minus what was completed: no rescan of all states.
    active = [(blueprint.atoms[a].position, a) for a in step.activated]
    heapq.heapify(active)

    while active:
        atom = blueprint.atoms[heapq.heappop(active)[1]]
        if runtime.states[atom.id] != core.ACTIVE:
            continue
        result: dict[str, Any] = {}
        completions[atom.id] = completions.get(atom.id, 0) + 1
        if atom.is_system and run_handler is not None:
            try:
                result.update(run_handler(atom, ctx))
            except Exception as exc:  # a handler is user code: report, don't crash
                errors.append(f"{atom.id}: handler {atom.handler!r} failed: {exc}")
                break
        result.update(nth_result(results.get(atom.id, {}), completions[atom.id]))
        try:
            step = core.complete(blueprint, runtime, ctx, atom.id, result)
        except core.InvalidResult as exc:
            errors.extend(f"{atom.id}.{name}: {message}" for name, message in exc.problems.items())
            break
        if step.incident is not None:
            errors.append(f"{atom.id}: {core.LOOP_LIMIT}: {core.describe_incident(step.incident)}")
            break
        runtime, ctx = step.runtime, step.context
        visited.append(atom.id)
        skipped.extend(step.skipped)
        fired = step.fired
        fired_edges.extend({"from": atom.id, "to": e.target} for e in blueprint.outgoing[atom.id] if e.target in fired)
        decisions.extend(explain_decision(blueprint, atom.id, ctx, fired, edge_rules))
        for atom_id in step.activated:
            heapq.heappush(active, (blueprint.atoms[atom_id].position, atom_id))

    # An atom skipped in one run of a loop may complete in the next: skipped is where it ended.
    skipped = [atom_id for atom_id in dict.fromkeys(skipped) if runtime.states[atom_id] == core.SKIPPED]
    if not errors and not all(state in core.DECIDED for state in runtime.states.values()):
        stuck = [atom_id for atom_id, state in runtime.states.items() if state not in core.DECIDED]
        errors.append(f"process cannot finish: atoms never decided: {', '.join(stuck)}")
    return SimulationResult(
        success=not errors,
        visited_atoms=visited,
        skipped_atoms=skipped,
        errors=errors,
        predicted_duration=format_duration(path_duration(blueprint, runtime.states, durations)),
        context=ctx,
        decisions=decisions,
        fired_edges=fired_edges,
    )


def nth_result(given: Any, n: int) -> Mapping[str, Any]:
    """An atom's result for its n-th completion (1-based): `results` maps an atom to one
    result, or to a list of them for a loop, the last repeating."""
    if isinstance(given, list):
        return given[min(n, len(given)) - 1] if given else {}
    return given


# --- why the path went where it did --------------------------------------------------------


def explain_decision(
    blueprint: Blueprint,
    atom_id: str,
    context: Mapping[str, Any],
    fired: frozenset[str],
    edge_rules: EdgeRules | None = None,
) -> list[dict[str, Any]]:
    """One record per outgoing edge of a completed atom that has a conditional or default
    edge (an atom with unconditional edges only decides nothing). `context` is the one the
    edges were decided on: the process context with the atom's result merged in."""
    outgoing = blueprint.outgoing[atom_id]
    if not any(edge.conditional or edge.default for edge in outgoing):
        return []
    conditional_fired = [e.target for e in outgoing if e.conditional and e.target in fired]
    exclusive = blueprint.atoms[atom_id].choose == CHOOSE_FIRST
    # A back edge that fired leaves the atom's other edges undecided (Rework loops, 2).
    repeated = next((edge.target for edge in outgoing if edge.loop and edge.target in fired), None)
    redact = blueprint.sensitive_fields
    records = []
    for edge in outgoing:
        record: dict[str, Any] = {
            "atom": atom_id,
            "from": edge.source,
            "to": edge.target,
            "edge": f"edges[{edge.position}]",
            "kind": _kind(edge),
            "fired": edge.target in fired,
        }
        if edge.conditional:
            record["rules"] = _explain_rules(edge, context, edge_rules, redact)
            record["reason"] = _conditional_reason(record["rules"], record["fired"])
            if exclusive and not record["fired"] and all(rule["held"] for rule in record["rules"]):
                record["reason"] += f"; choose: first, and the edge to {conditional_fired[0]} came first"
        elif edge.default:
            record["reason"] = (
                f"default: the conditional edge to {', '.join(conditional_fired)} fired" if conditional_fired
                else "default: no conditional edge fired"
            )
        else:
            record["reason"] = "unconditional: always fires"
        if repeated is not None and not edge.loop:
            record["reason"] = f"not decided: the loop back to {repeated} ran again ({record['reason']})"
        records.append(record)
    return records


def _kind(edge: Edge) -> str:
    if edge.conditional:
        return CONDITIONAL
    return DEFAULT if edge.default else UNCONDITIONAL


def _explain_rules(
    edge: Edge, context: Mapping[str, Any], edge_rules: EdgeRules | None, redact: frozenset[str]
) -> list[dict[str, Any]]:
    """The edge's condition split back into the rules it was compiled from."""
    labels = list((edge_rules or {}).get((edge.source, edge.target), ()))
    parts = [edge.condition]
    # compile_blueprint joins several parts into one `all` group, in label order; one part
    # is the rule's own condition (which may itself be an `all` group: never split that).
    if len(labels) > 1 and isinstance(edge.condition, dict) and len(edge.condition.get("all", ())) == len(labels):
        parts = list(edge.condition["all"])
    else:
        labels = labels[:1] if len(labels) == 1 else [None]
    return [
        {"rule_id": label, **explain_condition(part, context, redact)} for label, part in zip(labels, parts)
    ]


def explain_condition(cond: Any, context: Mapping[str, Any], redact: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The condition as a tree of `{all|any|not, held}` groups and leaves
    `{field, operator, expected, actual, present, held}`.

    Every leaf is evaluated by rules.evaluate itself (no second interpreter), and all
    children are shown even where evaluation short-circuits. Actual values of sensitive
    fields (journey `sensitive` paths and sensitive form fields) are redacted.
    """
    if isinstance(cond, list):
        cond = {"all": cond}
    for key in ("all", "any"):
        if key in cond:
            children = [explain_condition(child, context, redact) for child in cond[key]]
            combine = all if key == "all" else any
            return {key: children, "held": combine(child["held"] for child in children)}
    if "not" in cond:
        inner = explain_condition(cond["not"], context, redact)
        return {"not": inner, "held": not inner["held"]}
    actual = rules.lookup(context, cond["field"])
    present = actual is not rules.MISSING
    leaf = {
        "field": cond["field"],
        "operator": cond["operator"],
        "expected": cond.get("value") if rules.OPERATORS[cond["operator"]].takes_value else None,
        "actual": actual if present else None,
        "present": present,
        "held": rules.evaluate(cond, context),
    }
    if present and cond["field"].split(".", 1)[0] in redact:
        leaf["actual"] = REDACTED
    return leaf


def _conditional_reason(explained: list[dict[str, Any]], fired: bool) -> str:
    parts = []
    for rule in explained:
        name = f"rule {rule['rule_id']}" if rule["rule_id"] else "condition"
        parts.append(f"{name} {'held' if rule['held'] else 'did not hold'}: {describe(rule)}")
    return "; ".join(parts)


def describe(node: Mapping[str, Any]) -> str:
    """A one-line reading of an explained condition, e.g. `credit_score gte 620 (actual 700)`."""
    for key in ("all", "any"):
        if key in node:
            inner = ", ".join(describe(child) for child in node[key])
            return f"{key} of [{inner}]"
    if "not" in node:
        return f"not ({describe(node['not'])})"
    actual = f"actual {_show(node['actual'])}" if node["present"] else "missing"
    expected = f" {_show(node['expected'])}" if rules.OPERATORS[node["operator"]].takes_value else ""
    return f"{node['field']} {node['operator']}{expected} ({actual}: {'true' if node['held'] else 'false'})"


def _show(value: Any) -> str:
    return value if value == REDACTED else rules.show(value)


def edge_rule_ids(definition: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str | None, ...]]:
    """(source, target) -> the rule ids of each ENABLES edge (None for an inline
    condition), in the order compile_blueprint joins them."""
    labels: dict[tuple[str, str], tuple[str | None, ...]] = {}
    for edge in definition.get("edges", ()):
        if edge.get("type") != "ENABLES":
            continue
        parts: list[str | None] = list(edge.get("rules", ()))
        if edge.get("condition") is not None:
            parts.append(None)
        if parts:
            labels[(edge["from"], edge["to"])] = tuple(parts)
    return labels
