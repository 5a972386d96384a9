"""Non-fatal observations about a valid journey: things a reviewer would want to know."""

from __future__ import annotations

from typing import Any, Mapping

from processes.engine.durations import parse_duration


def warnings(defn: Mapping[str, Any]) -> list[str]:
    """Observations on a normalized definition, one line each, naming the place."""
    found: list[str] = []
    found += _unused_roles(defn)
    found += _start_observations(defn)
    found += _unused_rules(defn)
    found += _atom_observations(defn)
    found += _lonely_defaults(defn)
    return found


def _unused_roles(defn: Mapping[str, Any]) -> list[str]:
    used = {atom.get("performed_by") for atom in defn.get("atoms", [])}
    starts = defn["journey"].get("start", {}).get("by", [])
    if isinstance(starts, list):
        used.update(starts)  # a role that only starts the journey is used too
    return [
        f"roles[{i}]: role {role['id']!r} performs no atom"
        for i, role in enumerate(defn.get("roles", []))
        if role["id"] not in used
    ]


def _start_observations(defn: Mapping[str, Any]) -> list[str]:
    if defn["journey"].get("start", {}).get("by") == []:
        return ["journey.start.by: an empty list: only administrators can start this journey"]
    return []


def _unused_rules(defn: Mapping[str, Any]) -> list[str]:
    used = {rule_id for edge in defn.get("edges", []) for rule_id in edge.get("rules", [])}
    return [
        f"rules[{i}]: rule {rule['rule_id']!r} conditions no edge"
        for i, rule in enumerate(defn.get("rules", []))
        if rule["rule_id"] not in used
    ]


def _atom_observations(defn: Mapping[str, Any]) -> list[str]:
    found = []
    in_module = {
        atom_id
        for phase in defn.get("phases", [])
        for module in phase.get("modules", [])
        for atom_id in module.get("atoms", [])
    }
    for i, atom in enumerate(defn.get("atoms", [])):
        place, atom_id, sla = f"atoms[{i}]", atom["id"], atom.get("sla", {})
        if atom.get("kind") == "system":
            if atom.get("retries") == 0:
                found.append(f"{place}: system atom {atom_id!r} has retries 0: one handler failure fails the process")
        elif "target" not in sla:
            found.append(f"{place}: human atom {atom_id!r} has no SLA target (its tasks have no due date)")
        if _escalates_early(sla):
            early = f"escalates ({sla['escalation']}) before its target ({sla['target']})"
            found.append(f"{place}: atom {atom_id!r} {early}")
        if defn.get("phases") and atom_id not in in_module:
            found.append(f"{place}: atom {atom_id!r} is in no module (only a journey-wide process runs it)")
    return found


def _escalates_early(sla: Mapping[str, str]) -> bool:
    if "target" not in sla or "escalation" not in sla:
        return False
    return parse_duration(sla["escalation"]) < parse_duration(sla["target"])


def _lonely_defaults(defn: Mapping[str, Any]) -> list[str]:
    """A default edge fires when no conditional sibling fired: with no sibling, always."""
    edges = [edge for edge in defn.get("edges", []) if edge.get("type") == "ENABLES"]
    conditional = {edge["from"] for edge in edges if edge.get("rules") or "condition" in edge}
    return [
        f"edges[{i}]: default edge from {edge['from']!r} has no conditional sibling, so it always fires"
        for i, edge in enumerate(defn.get("edges", []))
        if edge.get("default") and edge["from"] not in conditional
    ]
