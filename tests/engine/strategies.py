"""Hypothesis strategies: random valid workflows (DAGs, with rework loops, exclusive choices and
races) in the canonical definition shape."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def workflows(draw, max_atoms: int = 10):
    n = draw(st.integers(min_value=1, max_value=max_atoms))
    ids = [f"atom-{i}" for i in range(n)]
    atoms = []
    for atom_id in ids:
        if draw(st.booleans()):
            atoms.append({"id": atom_id, "name": atom_id, "kind": "system", "handler": "noop"})
        else:
            atoms.append({"id": atom_id, "name": atom_id, "performed_by": "role-x"})
    edges = []
    for target in range(1, n):
        sources = draw(st.lists(st.integers(min_value=0, max_value=target - 1), max_size=3, unique=True))
        for source in sources:
            kind = draw(st.sampled_from(["plain", "plain", "conditional", "default"]))
            edge = {"type": "ENABLES", "from": ids[source], "to": ids[target]}
            if kind == "conditional":
                edge["condition"] = {"field": "x", "operator": "gte", "value": draw(st.integers(0, 10))}
            elif kind == "default":
                if any(e.get("default") and e["from"] == ids[source] for e in edges):
                    continue
                edge["default"] = True
            edges.append(edge)
    # Edges must be in file order per source; sort by source then keep the drawn order.
    edges.sort(key=lambda e: ids.index(e["from"]))
    # A rework loop now and then: a back edge that the normalizer accepts (its region entered
    # and left at its ends), conditioned on x, with a small limit so that runs hit it too.
    if n > 1 and draw(st.integers(0, 2)) == 0:
        source = draw(st.integers(min_value=1, max_value=n - 1))
        target = draw(st.integers(min_value=0, max_value=source))
        back = {"type": "ENABLES", "from": ids[source], "to": ids[target], "loop": True,
                "condition": {"field": "x", "operator": "lt", "value": draw(st.integers(0, 10))},
                "max_iterations": draw(st.integers(1, 3))}
        if _accepted({"atoms": atoms, "edges": [*edges, back]}):
            edges.append(back)
    # Choices: an exclusive choice here and there, and races where an atom's targets have it
    # as their only source (the rule a race needs).
    sources_of = {atom_id: {e["from"] for e in edges if e["to"] == atom_id} for atom_id in ids}
    for atom in atoms:
        targets = [e["to"] for e in edges if e["from"] == atom["id"] and not e.get("loop")]
        if any("condition" in e for e in edges if e["from"] == atom["id"]) and draw(st.integers(0, 2)) == 0:
            atom["choose"] = "first"
        if len(targets) > 1 and all(sources_of[t] == {atom["id"]} for t in targets) and draw(st.integers(0, 2)) == 0:
            atom["then"] = "first_done"
    for target in range(1, n):
        if draw(st.integers(0, 4)) == 0:
            dep = draw(st.integers(min_value=0, max_value=target - 1))
            edges.append({"type": "DEPENDS_ON", "from": ids[target], "to": ids[dep]})
    return {
        "format": "gndp-journey/1",
        "journey": {"id": "journey-random", "name": "random"},
        "roles": [{"id": "role-x", "name": "X"}],
        "phases": [],
        "atoms": atoms,
        "edges": edges,
        "rules": [],
    }


def _accepted(parts) -> bool:
    from processes.journey import JourneyError, normalize

    try:
        normalize({"format": "gndp-journey/1", "journey": {"id": "journey-random", "name": "random"},
                   "roles": [{"id": "role-x", "name": "X"}], **parts})
    except JourneyError:
        return False
    return True


def results_for(ids):
    return st.fixed_dictionaries({atom_id: st.fixed_dictionaries({"x": st.integers(0, 10)}) for atom_id in ids})
