"""Rule conditions: checked when a journey is loaded, interpreted (never `eval`ed) when run.

A condition is data: a leaf `{field, operator, value}`, or a group `{all: [...]}`,
`{any: [...]}`, `{not: {...}}`; a list at the top level means `all`. Semantics are those of
docs "journey-format.md", section "Rules": strict types, and a missing field makes every
operator but `exists` false. Rule files come from people, so validation walks them
iteratively with bounded depth and size: a hostile file gets a list of problems, never a
RecursionError, and evaluation only ever runs on a condition that passed validation.
The operators, what each accepts and how each holds, are `processes.engine.operators`.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Final, Mapping, TypeAlias

from .operators import OPERATORS, PLAIN_SCALARS as _PLAIN_SCALARS, is_number, strict_equal

GROUP_KEYS: Final = ("all", "any", "not")
LEAF_KEYS: Final = frozenset({"field", "operator", "value"})
_GROUP_KEY_SET: Final = frozenset(GROUP_KEYS)

MAX_DEPTH: Final = 32  # groups nested deeper than this are rejected
MAX_NODES: Final = 1000  # conditions and groups in one tree
MAX_VALUE_ITEMS: Final = 10_000  # scalars, lists and mappings inside one JSON value
MAX_PATH_LENGTH: Final = 200
# Evaluation fails closed on a tree that does not validate, and says why with its first few
# problems: the rest of a hostile tree's thousands would be work for nobody.
EVALUATION_PROBLEMS: Final = 10

# Lower-case segments only, at most 8 of them; dunder segments are refused separately.
_FIELD_PATH: Final = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+){0,7}")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")

MISSING: Final = object()  # a path absent from the context (distinct from a null value)

__all__ = [
    "OPERATORS",
    "ConditionError",
    "condition_fields",
    "canonical_condition",
    "evaluate",
    "is_field_path",
    "json_problems",
    "lookup",
    "strict_equal",
    "validate_condition",
]


class ConditionError(ValueError):
    """A condition that failed validation at evaluation time (the engine fails closed)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems[:5]))
        self.problems = problems


# --- small helpers shared with the journey validator ------------------------------------


def show(value: Any) -> str:
    """A short, safe rendering of a user-supplied value for a problem message.

    Containers are named, not printed: `repr` of a 10,000-deep structure would itself
    raise RecursionError, and a huge one would flood the message.
    """
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a {type(value).__name__}"


def key_place(place: str, key: Any) -> str:
    """The place of a mapping key, as `place.key` when the key reads well that way."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{place}.{key}" if place else key
    return f"{place}[{show(key)}]" if place else f"[{show(key)}]"


def is_field_path(path: Any) -> bool:
    """A dotted context path: lower-case segments, no dunders (no `__class__` tricks)."""
    return isinstance(path, str) and len(path) <= MAX_PATH_LENGTH and _valid_path(path)


@functools.lru_cache(maxsize=4096)  # the same few paths are checked on every evaluation
def _valid_path(path: str) -> bool:
    if not _FIELD_PATH.fullmatch(path):
        return False
    return not any(segment.startswith("__") for segment in path.split("."))


def json_problems(
    value: Any, place: str, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_VALUE_ITEMS
) -> list[str]:
    """Problems making `value` something other than bounded, finite JSON data.

    Iterative, so the depth bound is reported instead of overflowing the stack.
    """
    if _plain_json(value, max_depth, max_items):
        return []
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(value, place, 1)]
    seen = 0
    while stack:
        item, where, depth = stack.pop()
        seen += 1
        if seen > max_items:
            problems.append(f"{place}: more than {max_items} items")
            break
        if type(item) in _PLAIN_SCALARS or isinstance(item, (bool, str)):
            continue
        if isinstance(item, _BadKey):
            problems.append(f"{where}: keys must be strings, got {show(item.key)}")
            continue
        if is_number(item):
            if isinstance(item, float) and not math.isfinite(item):
                problems.append(f"{where}: not a finite number")
            continue
        if not isinstance(item, (list, dict)):
            problems.append(f"{where}: a {type(item).__name__} is not JSON data")
            continue
        if depth >= max_depth:
            problems.append(f"{where}: nested deeper than {max_depth} levels")
            continue
        if isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in reversed(list(enumerate(item))))
            continue
        for key in reversed(list(item)):
            if isinstance(key, str):
                stack.append((item[key], key_place(where, key), depth + 1))
            else:
                stack.append((_BadKey(key), where, depth))  # reported in document order
    return problems


def _plain_json(value: Any, max_depth: int = MAX_DEPTH, max_items: int = MAX_VALUE_ITEMS) -> bool:
    # The common values, known to be JSON without the walk that names each problem: a plain
    # scalar, or a flat list of them (an `in` list).
    kind = type(value)
    return kind in _PLAIN_SCALARS or (
        kind is list and len(value) < max_items and max_depth > 1 and _PLAIN_SCALARS.issuperset(map(type, value)))


class _BadKey:
    """A mapping key that JSON cannot hold, waiting on the walk stack to be reported."""

    __slots__ = ("key",)

    def __init__(self, key: Any):
        self.key = key


# --- validation ---------------------------------------------------------------------------


# A leaf's place is written out only for a problem: evaluation re-validates every tree, and
# the places of a valid one's thousand leaves would be most of the work. Until then it is a
# `_Path`: a place, or (its group's place, the group's key or None, its index or None).
_Path: TypeAlias = "str | tuple[str, str | None, int | None]"


def _place(path: _Path) -> str:
    if type(path) is str:
        return path
    where, key, index = path
    return f"{where}[{index}]" if key is None else f"{where}.{key}" if index is None else f"{where}.{key}[{index}]"


def validate_condition(cond: Any, place: str, *, limit: int | None = None) -> list[str]:
    """Every problem of one condition or group, each as `"<place>: <message>"`; with a limit,
    the first `limit` of them."""
    problems: list[str] = []
    if isinstance(cond, list):
        if not cond:
            return [f"{place}: must not be empty"]
        stack: list[tuple[Any, _Path, int]] = [(item, (place, None, i), 2) for i, item in reversed(list(enumerate(cond)))]
    else:
        stack = [(cond, place, 1)]
    nodes = 0
    while stack and (limit is None or len(problems) < limit):
        node, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            problems.append(f"{place}: more than {MAX_NODES} conditions")
            break
        if depth > MAX_DEPTH:
            problems.append(f"{_place(path)}: nested deeper than {MAX_DEPTH} levels")
            continue
        if not isinstance(node, dict):
            problems.append(f"{_place(path)}: expected a condition or a group (all, any, not), got {show(node)}")
            continue
        if not _GROUP_KEY_SET.isdisjoint(node):
            stack.extend(_group_children(node, _place(path), depth, problems))
        else:
            problems.extend(_leaf_problems(node, path))
    return problems[:limit]


def _group_children(node: dict[Any, Any], where: str, depth: int, problems: list[str]) -> list[tuple[Any, _Path, int]]:
    """Check a group's own shape; return its children to walk, last first."""
    present = [key for key in GROUP_KEYS if key in node]
    for key in node:
        if key not in GROUP_KEYS:
            problems.append(f"{key_place(where, key)}: unknown key")
    if len(present) > 1:
        problems.append(f"{where}: a group has exactly one of all, any, not (found {', '.join(present)})")
        return []
    key = present[0]
    body = node[key]
    if key == "not":
        if not isinstance(body, dict):
            problems.append(f"{where}.not: expected a condition or a group, got {show(body)}")
            return []
        return [(body, (where, "not", None), depth + 1)]
    if not isinstance(body, list):
        problems.append(f"{where}.{key}: expected a list of conditions, got {show(body)}")
        return []
    if not body:
        problems.append(f"{where}.{key}: must not be empty")
    depth += 1
    return [(body[i], (where, key, i), depth) for i in range(len(body) - 1, -1, -1)]


def _leaf_problems(node: dict[Any, Any], path: _Path) -> list[str]:
    operator = node.get("operator")
    entry = OPERATORS.get(operator) if type(operator) is str else None
    if (entry is not None and node.keys() <= LEAF_KEYS and is_field_path(node.get("field"))
            and (not entry.takes_value or "value" in node and _plain_json(node["value"])
                 and entry.check(node["value"]) is None)):
        return []  # the common leaf, whose checks below would each pass
    where = _place(path)
    problems: list[str] = []
    for key in node:
        if key not in LEAF_KEYS:
            hint = " (the key is 'operator')" if key == "op" else ""
            problems.append(f"{key_place(where, key)}: unknown key{hint}")
    if "field" not in node:
        problems.append(f"{where}.field: required")
    elif not is_field_path(node["field"]):
        problems.append(f"{where}.field: invalid field path {show(node['field'])}")
    if "operator" not in node:
        problems.append(f"{where}.operator: required")
        return problems
    if entry is None:
        problems.append(f"{where}.operator: unknown operator {show(operator)}")
        return problems
    if not entry.takes_value:
        return problems  # a value given is ignored (and dropped when canonical)
    if "value" not in node:
        problems.append(f"{where}.value: required for operator '{operator}'")
        return problems
    value = node["value"]
    shape = json_problems(value, f"{where}.value")
    if shape:
        return problems + shape
    message = entry.check(value)
    if message:
        problems.append(f"{where}.value: {message}")
    return problems


# --- evaluation ---------------------------------------------------------------------------


def evaluate(cond: Any, context: Any) -> bool:
    """Whether the condition holds on the context.

    The condition is validated again first: evaluation is the last line of defence, and
    a tree that was tampered with after load time must fail closed, not run.
    """
    problems = validate_condition(cond, "condition", limit=EVALUATION_PROBLEMS)
    if problems:
        raise ConditionError(problems)
    return _holds(cond, context)


def _holds(node: Any, context: Any) -> bool:
    # Recursion is safe here: validation bounded the depth to MAX_DEPTH. Loops, not all() and
    # any() over generators: a maximal tree is a thousand calls, each paying for its generator.
    if isinstance(node, list) or "all" in node:
        for child in node if isinstance(node, list) else node["all"]:
            if not _holds(child, context):
                return False
        return True
    if "any" in node:
        for child in node["any"]:
            if _holds(child, context):
                return True
        return False
    if "not" in node:
        return not _holds(node["not"], context)
    actual = lookup(context, node["field"])
    if actual is MISSING:
        return False  # for every operator, `exists` included
    return OPERATORS[node["operator"]].holds(actual, node.get("value"))


def lookup(context: Any, path: str) -> Any:
    """The value at a dotted path, or MISSING. Dict keys only: never an attribute."""
    current = context
    for segment in _segments(path):
        if not isinstance(current, dict) or segment not in current:
            return MISSING
        current = current[segment]
    return current


@functools.lru_cache(maxsize=4096)  # as `_valid_path`: the same few paths, every evaluation
def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


# --- inspection ---------------------------------------------------------------------------


def condition_fields(cond: Any) -> set[str]:
    """The field paths a condition reads. Safe on any input (bounded, iterative)."""
    fields: set[str] = set()
    stack: list[tuple[Any, int]] = [(cond, 0)]
    visited = 0
    while stack and visited < MAX_NODES * 2:
        node, depth = stack.pop()
        visited += 1
        if depth > MAX_DEPTH + 1:
            continue
        if isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, dict):
            if isinstance(node.get("field"), str):
                fields.add(node["field"])
            for key in GROUP_KEYS:
                if key in node:
                    body = node[key]
                    stack.extend((child, depth + 1) for child in (body if isinstance(body, list) else [body]))
    return fields


def canonical_condition(cond: Any) -> Any:
    """A fresh copy of a *valid* condition in minimal form (no ignored `exists` value)."""
    if isinstance(cond, list):
        return [canonical_condition(child) for child in cond]
    for key in ("all", "any"):
        if key in cond:
            return {key: [canonical_condition(child) for child in cond[key]]}
    if "not" in cond:
        return {"not": canonical_condition(cond["not"])}
    leaf = {"field": cond["field"], "operator": cond["operator"]}
    if OPERATORS[cond["operator"]].takes_value:
        leaf["value"] = _copy_json(cond["value"])
    return leaf


def _copy_json(value: Any) -> Any:
    # Valid values are bounded JSON, so recursion is safe; copying keeps the output free
    # of references shared with the input (YAML would print those as &anchors).
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    return value
