"""A journey definition as a property graph, and back: the model both stores share.

    (:Journey)-[:HAS_PHASE]->(:Phase)-[:HAS_MODULE]->(:Module)-[:CONTAINS]->(:Atom)
    (:Journey)-[:CONTAINS]->(:Atom)                  atoms not placed in a module
    (:Atom)-[:ENABLES|DEPENDS_ON]->(:Atom)   (:Atom)-[:PERFORMED_BY]->(:Atom {kind: 'role'})
    (:Atom)-[:ENABLES {loop: true, max_iterations}]->(:Atom)   a rework loop's back edge
    (:Rule {rule_id, description, conditions_json})
    (:Journey {start_json})                          who may start it, and which parts alone

Nested values are JSON strings (graph properties cannot hold maps), absent values are
absent properties (graph properties cannot be null), and `position` keeps file order, on
which the execution semantics depend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..journey.nesting import json_nesting_exceeds
from ..journey.text import MAX_BYTES, MAX_DEPTH


@dataclass(frozen=True)
class Node:
    label: str
    key: str
    position: int
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rel:
    type: str
    source: str
    target: str
    position: int
    props: dict[str, Any] = field(default_factory=dict)


def _loads(props: Mapping[str, Any], key: str) -> Any:
    """A nested value stored as JSON text. A graph drawn by another tool may hold anything
    there: text over a journey file's size or nested deeper than its depth is refused
    (ValueError, reported as a problem of the stored journey) before it is parsed."""
    text = props[key]
    encoded = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else b""
    if len(encoded) > MAX_BYTES:
        raise ValueError(f"{key}: larger than {MAX_BYTES} bytes")
    if json_nesting_exceeds(encoded, MAX_DEPTH):
        raise ValueError(f"{key}: nested deeper than {MAX_DEPTH} levels")
    return json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _present(**props: Any) -> dict[str, Any]:
    return {key: value for key, value in props.items() if value is not None}


def to_graph(definition: Mapping[str, Any]) -> tuple[list[Node], list[Rel]]:
    journey = definition["journey"]
    nodes = [
        Node(
            "Journey",
            journey["id"],
            0,
            _present(
                id=journey["id"],
                name=journey["name"],
                description=journey.get("description"),
                sla_target=journey.get("sla", {}).get("target"),
                sensitive_json=_dumps(journey["sensitive"]) if journey.get("sensitive") else None,
                privacy_json=_dumps(journey["privacy"]) if journey.get("privacy") else None,
                start_json=_dumps(journey["start"]) if journey.get("start") else None,
            ),
        )
    ]
    rels: list[Rel] = []
    for position, role in enumerate(definition["roles"]):
        nodes.append(Node("Atom", role["id"], position, _present(
            id=role["id"], name=role["name"], kind="role", assignment=role.get("assignment"),
        )))
    placed: set[str] = set()
    for position, phase in enumerate(definition["phases"]):
        nodes.append(Node("Phase", phase["id"], position, {"id": phase["id"], "name": phase["name"]}))
        rels.append(Rel("HAS_PHASE", journey["id"], phase["id"], position))
        for module_position, module in enumerate(phase.get("modules", [])):
            nodes.append(Node("Module", module["id"], module_position, {"id": module["id"], "name": module["name"]}))
            rels.append(Rel("HAS_MODULE", phase["id"], module["id"], module_position))
            for atom_position, atom_id in enumerate(module.get("atoms", [])):
                rels.append(Rel("CONTAINS", module["id"], atom_id, atom_position))
                placed.add(atom_id)
    for position, atom in enumerate(definition["atoms"]):
        sla = atom.get("sla", {})
        nodes.append(Node("Atom", atom["id"], position, _present(
            id=atom["id"],
            name=atom["name"],
            kind=atom.get("kind", "human"),
            priority=atom.get("priority"),
            sla_target=sla.get("target"),
            sla_escalation=sla.get("escalation"),
            handler=atom.get("handler"),
            params_json=_dumps(atom["params"]) if "params" in atom else None,
            form_json=_dumps(atom["form"]) if "form" in atom else None,
            retries=atom.get("retries"),
            choose=atom.get("choose"),
            then=atom.get("then"),
        )))
        if atom["id"] not in placed:
            rels.append(Rel("CONTAINS", journey["id"], atom["id"], position))
        if atom.get("performed_by"):
            rels.append(Rel("PERFORMED_BY", atom["id"], atom["performed_by"], 0))
    for position, edge in enumerate(definition["edges"]):
        props: dict[str, Any] = {}
        if edge["type"] == "ENABLES":
            props = _present(
                default=True if edge.get("default") else None,
                rule_ids=list(edge["rules"]) if edge.get("rules") else None,
                condition_json=_dumps(edge["condition"]) if "condition" in edge else None,
                loop=True if edge.get("loop") else None,
                max_iterations=edge.get("max_iterations"),
            )
        rels.append(Rel(edge["type"], edge["from"], edge["to"], position, props))
    for position, rule in enumerate(definition["rules"]):
        nodes.append(Node("Rule", rule["rule_id"], position, _present(
            rule_id=rule["rule_id"],
            description=rule.get("description"),
            conditions_json=_dumps(rule["conditions"]),
        )))
    return nodes, rels


def from_graph(nodes: list[Node], rels: list[Rel]) -> dict[str, Any]:
    """The definition a graph describes (in the canonical minimal form, before normalize)."""
    by_label: dict[str, list[Node]] = {}
    for node in nodes:
        by_label.setdefault(node.label, []).append(node)
    for items in by_label.values():
        items.sort(key=lambda node: node.position)
    by_type: dict[str, list[Rel]] = {}
    for rel in rels:
        by_type.setdefault(rel.type, []).append(rel)
    for items in by_type.values():
        items.sort(key=lambda rel: rel.position)

    journey_node = by_label["Journey"][0]
    # .get for names: a graph drawn by another tool may lack one, and validation then says so.
    journey: dict[str, Any] = {"id": journey_node.key, "name": journey_node.props.get("name")}
    if "description" in journey_node.props:
        journey["description"] = journey_node.props["description"]
    if "sensitive_json" in journey_node.props:
        journey["sensitive"] = _loads(journey_node.props, "sensitive_json")
    if "sla_target" in journey_node.props:
        journey["sla"] = {"target": journey_node.props["sla_target"]}
    if "privacy_json" in journey_node.props:
        journey["privacy"] = _loads(journey_node.props, "privacy_json")
    if "start_json" in journey_node.props:
        journey["start"] = _loads(journey_node.props, "start_json")

    atom_nodes = by_label.get("Atom", [])
    roles = []
    for node in atom_nodes:
        if node.props.get("kind") == "role":
            role = {"id": node.key, "name": node.props.get("name")}
            if "assignment" in node.props:
                role["assignment"] = node.props["assignment"]
            roles.append(role)

    children: dict[str, list[Rel]] = {}
    for rel_type in ("HAS_PHASE", "HAS_MODULE", "CONTAINS"):
        for rel in by_type.get(rel_type, []):
            children.setdefault(rel.source, []).append(rel)
    names = {node.key: node.props["name"] for node in nodes if "name" in node.props}
    phases = []
    for rel in children.get(journey_node.key, []):
        if rel.type != "HAS_PHASE":
            continue
        modules = []
        for module_rel in children.get(rel.target, []):
            atom_ids = [r.target for r in children.get(module_rel.target, []) if r.type == "CONTAINS"]
            modules.append({"id": module_rel.target, "name": names.get(module_rel.target), "atoms": atom_ids})
        phases.append({"id": rel.target, "name": names.get(rel.target), "modules": modules})

    performer = {rel.source: rel.target for rel in by_type.get("PERFORMED_BY", [])}
    atoms = []
    for node in atom_nodes:
        if node.props.get("kind") == "role":
            continue
        props = node.props
        atom: dict[str, Any] = {"id": node.key, "name": props.get("name")}
        if props.get("kind", "human") != "human":
            atom["kind"] = props["kind"]
        if node.key in performer:
            atom["performed_by"] = performer[node.key]
        for key in ("priority", "handler", "retries", "choose", "then"):
            if key in props:
                atom[key] = props[key]
        sla = {k: props[f"sla_{k}"] for k in ("target", "escalation") if f"sla_{k}" in props}
        if sla:
            atom["sla"] = sla
        if "form_json" in props:
            atom["form"] = _loads(props, "form_json")
        if "params_json" in props:
            atom["params"] = _loads(props, "params_json")
        atoms.append(atom)

    edges = []
    flow_rels = sorted(by_type.get("ENABLES", []) + by_type.get("DEPENDS_ON", []), key=lambda rel: rel.position)
    for rel in flow_rels:
        edge: dict[str, Any] = {"type": rel.type, "from": rel.source, "to": rel.target}
        if rel.props.get("rule_ids"):
            edge["rules"] = list(rel.props["rule_ids"])
        if "condition_json" in rel.props:
            edge["condition"] = _loads(rel.props, "condition_json")
        if rel.props.get("default"):
            edge["default"] = True
        if rel.props.get("loop"):
            edge["loop"] = True
        if "max_iterations" in rel.props:
            edge["max_iterations"] = rel.props["max_iterations"]
        edges.append(edge)

    rules = []
    for node in by_label.get("Rule", []):
        rule: dict[str, Any] = {"rule_id": node.key}
        if "description" in node.props:
            rule["description"] = node.props["description"]
        if "conditions_json" in node.props:
            rule["conditions"] = _loads(node.props, "conditions_json")
        rules.append(rule)

    return {
        "format": "gndp-journey/1",
        "journey": journey,
        "roles": roles,
        "phases": phases,
        "atoms": atoms,
        "edges": edges,
        "rules": rules,
    }
