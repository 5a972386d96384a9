"""Hypothesis strategies: random rule conditions (every operator, nested groups) and random
workflows whose conditional edges carry them."""

from __future__ import annotations

from hypothesis import strategies as st

from processes.engine import rules
from tests.engine.strategies import workflows

FIELDS = ("x", "y")
SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.5, "a", "b", "ab", "", True, False, None]))


def _value_for(operator: str):
    if operator in ("in", "not_in"):
        return st.lists(SCALARS, max_size=3)
    if operator == "between":
        numbers = st.lists(st.integers(-3, 3), min_size=2, max_size=2).map(sorted)
        strings = st.lists(st.sampled_from(["", "a", "ab", "b"]), min_size=2, max_size=2).map(sorted)
        return st.one_of(numbers, strings)
    if operator in ("gt", "gte", "lt", "lte"):
        return st.one_of(st.integers(-3, 3), st.sampled_from([0.5, "a", "ab", "b"]))
    if operator == "startswith":
        return st.sampled_from(["", "a", "ab", "b"])
    return SCALARS


@st.composite
def leaves(draw, fields=FIELDS):
    operator = draw(st.sampled_from(sorted(rules.OPERATORS)))
    leaf = {"field": draw(st.sampled_from(fields)), "operator": operator}
    if operator != "exists":
        leaf["value"] = draw(_value_for(operator))
    return leaf


def conditions(fields=FIELDS, max_leaves: int = 6):
    return st.recursive(
        leaves(fields),
        lambda children: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda items: {"any": items}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda item: {"not": item}, children),
        ),
        max_leaves=max_leaves,
    )


def contexts(fields=FIELDS):
    """A context where each field is absent or holds a value near the constants above."""
    return st.fixed_dictionaries({}, optional={name: SCALARS for name in fields})


@st.composite
def rich_workflows(draw, max_atoms: int = 8):
    """tests.engine.strategies.workflows with every condition replaced by a random one on x and y."""
    raw = draw(workflows(max_atoms=max_atoms))
    for edge in raw["edges"]:
        if "condition" in edge:
            edge["condition"] = draw(conditions(max_leaves=4))
    return raw


def results_for(atom_ids):
    """Each step writes x (an integer) and maybe y."""
    one = st.fixed_dictionaries({"x": st.integers(0, 10)}, optional={"y": SCALARS})
    return st.fixed_dictionaries({atom_id: one for atom_id in atom_ids})
