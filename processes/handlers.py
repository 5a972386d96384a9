"""System handlers: Python callables registered by name, run by a worker for system atoms.

A handler takes the process context and the atom's params and returns a JSON object,
merged into the context like a task result. Handlers must be safe to run more than once
(background work is at-least-once): key any outside effect by `ctx["_task_id"]`.
Projects add their own with `@register("name")` in modules listed in the
`GNDP_HANDLER_MODULES` environment variable (comma separated), imported at start-up by the
web process and the workers alike. Loading a journey refuses a system atom whose handler
is not registered (`names`).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Mapping

Handler = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]

_registry: dict[str, Handler] = {}


class UnknownHandler(LookupError):
    pass


class HandlerFailed(Exception):
    """Raised by a handler that wants to fail its step with a clear message."""


def register(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of this name. A name taken by another
    function is refused: a journey's step would silently run someone else's code."""
    def decorate(func: Handler) -> Handler:
        taken = _registry.get(name)
        if taken is not None and _where(taken) != _where(func):  # the same function imported again is fine
            raise ValueError(f"a system handler named {name!r} is registered already ({_where(taken)})")
        _registry[name] = func
        return func

    return decorate


def unregister(name: str) -> None:
    _registry.pop(name, None)


def _where(func: Handler) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


def names() -> set[str]:
    return set(_registry)


def get(name: str) -> Handler:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownHandler(f"no system handler named {name!r}") from None


def run(name: str, context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    result = get(name)(context, params)
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise HandlerFailed(f"handler {name!r} returned {type(result).__name__}, not a JSON object")
    return dict(result)


def load_handler_modules() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get("GNDP_HANDLER_MODULES", "").split(","))):
        importlib.import_module(module)


@register("noop")
def noop(context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@register("set_context")
def set_context(context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    return dict(params)


@register("fail")
def fail(context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Always fails: for drills of the incident path (retries, `failed`, admin retry)."""
    raise HandlerFailed(str(params.get("message", "this step always fails")))
