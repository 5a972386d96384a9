"""The operators of rule conditions: one entry each, read by the evaluator, the validation
(`processes.engine.rules`) and the analysis (`processes.engine.analysis`).

An operator says which values a rule may give it (`check`), whether the field's value
satisfies it (`holds`), and what the analysis needs to reason about it without running
it on guesses. Types are strict (docs "journey-format.md", section "Rules"): 1 is not "1",
True is not 1. `holds` sees only a field that is present: a missing field makes every
operator false but `exists`, which is the one operator about presence itself.

A new operator is one `register(Operator(...))` from any module imported at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Final

# Exact types that are always JSON scalars: the fast path of the hot checks.
PLAIN_SCALARS: Final = frozenset({str, bool, int, type(None)})

# The kinds of JSON value, as the analysis splits a field's possible values.
KINDS: Final = ("null", "bool", "number", "string", "list", "dict")

EXISTS: Final = "exists"  # holds when the field is present, whatever its value


class UnknownOperator(ValueError):
    pass


def _any_value(value: Any) -> str | None:
    return None


def _no_candidates(value: Any) -> tuple[Any, ...]:
    return ()


def _no_bounds(value: Any) -> tuple[tuple[str, Any, bool], ...]:
    return ()


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    # Whether the field's (present) value satisfies it, given the rule's value.
    holds: Callable[[Any, Any], bool]
    # What is wrong with the rule's (JSON) value for it, or None.
    check: Callable[[Any], str | None] = _any_value
    takes_value: bool = True  # False: a value given is ignored (and dropped when canonical)

    # What the analysis needs. `kinds`: the kinds of field value (KINDS) for which it can
    # hold, given the rule's value.
    kinds: Callable[[Any], frozenset[str] | set[str]] = lambda value: set(KINDS)
    # Whether, over numbers, its truth changes only at the rule's constants: the analysis
    # then tries one number between each two and may prove that none satisfies a rule.
    # Otherwise it proves nothing about numbers.
    steps_at_constants: bool = False
    # Whether it holding (True) or failing (False) means the field's value, if present, is
    # one of the rule's values; None if neither.
    pins_when: bool | None = None
    # The bounds it holding puts on an ordered value: (side "low" or "high", bound, strict).
    bounds: Callable[[Any], tuple[tuple[str, Any, bool], ...]] = _no_bounds
    # Values of the field worth trying, beyond the rule's constants and their neighbours.
    candidates: Callable[[Any], tuple[Any, ...]] = _no_candidates


# Every operator by name: the allowlist of the rule language (nothing else is reachable).
OPERATORS: dict[str, Operator] = {}


def register(operator: Operator) -> Operator:
    if operator.name in OPERATORS and OPERATORS[operator.name] != operator:
        raise ValueError(f"a rule operator named {operator.name!r} is registered already")
    OPERATORS[operator.name] = operator
    return operator


def unregister(name: str) -> None:
    OPERATORS.pop(name, None)


def get(name: Any) -> Operator:
    """The operator of this name, or UnknownOperator: reasoning about an operator it does
    not know would be guessing."""
    operator = OPERATORS.get(name) if isinstance(name, str) else None
    if operator is None:
        raise UnknownOperator(f"no rule operator named {name!r}")
    return operator


# --- JSON values, compared strictly ----------------------------------------------------------


def is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but a flag is not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind(value: Any) -> str:
    """The value's kind (KINDS), or "other" for what JSON cannot hold."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "other"


def strict_equal(left: Any, right: Any) -> bool:
    """JSON equality where types never mix: 1 != "1", True != 1, [1] != [True].

    Iterative; it stops at the first difference, so comparing with a bounded (validated)
    value is bounded too, whatever the context holds.
    """
    if type(left) is type(right) and type(left) in PLAIN_SCALARS:
        return left == right  # the common case: two strings, two ints, ...
    stack = [(left, right)]
    while stack:
        a, b = stack.pop()
        found = kind(a)
        if found != kind(b) or found == "other":
            return False  # unknown types are never equal: their __eq__ is not ours to run
        if found == "list":
            if len(a) != len(b):
                return False
            stack.extend(zip(a, b))
        elif found == "dict":
            if a.keys() != b.keys():
                return False
            stack.extend((a[key], b[key]) for key in a)
        elif a != b:
            return False
    return True


def orderable(value: Any) -> bool:
    return is_number(value) or isinstance(value, str)


def comparable(a: Any, b: Any) -> bool:
    # Numbers with numbers, strings with strings; anything else would raise or mislead.
    return (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _is_in(actual: Any, value: list[Any]) -> bool:
    # `strict_equal` item by item, its common cases inlined: a string, flag or null equals
    # only its own type; a number equals numbers (1 == 1.0), never a flag.
    found = type(actual)
    if found in PLAIN_SCALARS or found is float:
        if actual not in value:
            return False  # `in` finds every item the checks below would: they only refuse more
    if found is str or found is bool or actual is None:
        return any(type(item) is found and item == actual for item in value)
    if found is int or found is float:
        return any((type(item) is int or type(item) is float) and item == actual for item in value)
    return any(strict_equal(actual, item) for item in value)


def _contains(actual: Any, value: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(value, str) and value in actual
    if isinstance(actual, list):
        return any(strict_equal(item, value) for item in actual)
    return False


def _between(actual: Any, bounds: list[Any]) -> bool:
    low, high = bounds
    return comparable(actual, low) and comparable(actual, high) and low <= actual <= high


# --- what each takes ----------------------------------------------------------------------------


def _a_list(name: str) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, list) else f"'{name}' needs a list"


def _orderable_value(name: str) -> Callable[[Any], str | None]:
    return lambda value: None if orderable(value) else f"'{name}' needs a number or a string"


def _check_between(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) != 2:
        return "'between' needs a list [low, high]"
    low, high = value
    if not (orderable(low) and comparable(low, high)):
        return "'between' needs two numbers or two strings"
    if low > high:
        return "'between' needs low <= high"
    return None


def _own_kind(value: Any) -> set[str]:
    return {kind(value)}


# --- the operators ------------------------------------------------------------------------------

register(Operator(EXISTS, holds=lambda actual, value: True, takes_value=False, steps_at_constants=True))
register(Operator("eq", holds=strict_equal, kinds=_own_kind, steps_at_constants=True, pins_when=True))
register(Operator("ne", holds=lambda actual, value: not strict_equal(actual, value), steps_at_constants=True,
                  pins_when=False))
for _name, _holds, _bound in (
    ("gt", lambda actual, value: comparable(actual, value) and actual > value, ("low", True)),
    ("gte", lambda actual, value: comparable(actual, value) and actual >= value, ("low", False)),
    ("lt", lambda actual, value: comparable(actual, value) and actual < value, ("high", True)),
    ("lte", lambda actual, value: comparable(actual, value) and actual <= value, ("high", False)),
):
    register(Operator(_name, holds=_holds, check=_orderable_value(_name), kinds=_own_kind, steps_at_constants=True,
                      bounds=lambda value, side=_bound[0], strict=_bound[1]: ((side, value, strict),)))
register(Operator("between", holds=_between, check=_check_between, kinds=lambda value: {kind(value[0])},
                  steps_at_constants=True, bounds=lambda value: (("low", value[0], False), ("high", value[1], False))))
register(Operator("in", holds=_is_in, check=_a_list("in"), kinds=lambda value: {kind(item) for item in value},
                  steps_at_constants=True, pins_when=True))
register(Operator("not_in", holds=lambda actual, value: not _is_in(actual, value), check=_a_list("not_in"),
                  steps_at_constants=True, pins_when=False))
register(Operator("contains", holds=_contains,
                  kinds=lambda value: {"string", "list"} if isinstance(value, str) else {"list"},
                  steps_at_constants=True, candidates=lambda value: ([value],)))
register(Operator("startswith",
                  holds=lambda actual, value: (isinstance(actual, str) and isinstance(value, str)
                                               and actual.startswith(value)),
                  check=lambda value: None if isinstance(value, str) else "'startswith' needs a string",
                  kinds=lambda value: {"string"}, steps_at_constants=True))
