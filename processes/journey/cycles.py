"""Cycle detection for the run-order graph of a journey (iterative: no recursion limit)."""

from __future__ import annotations

from collections import deque
from typing import Iterable


def find_cycles(nodes: list[str], arcs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, as `[a, b, ..., a]`.

    Each cycle starts at its component's first node in `nodes` order and is a shortest
    way back to it, so the report is deterministic and short.
    """
    successors: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in arcs:
        if source in successors and target in successors:
            successors[source].append(target)
    order = {node: index for index, node in enumerate(nodes)}
    cycles = []
    for component in _components(nodes, successors):
        if len(component) > 1:
            start = min(component, key=order.__getitem__)
            cycles.append(_cycle_through(start, set(component), successors))
    cycles.sort(key=lambda cycle: order[cycle[0]])
    return cycles


def _components(nodes: list[str], successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, with an explicit work stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in nodes:
        if root in index:
            continue
        enter(root)
        work = [(root, iter(successors[root]))]
        while work:
            node, pending = work[-1]
            for successor in pending:
                if successor not in index:
                    enter(successor)
                    work.append((successor, iter(successors[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def _cycle_through(start: str, members: set[str], successors: dict[str, list[str]]) -> list[str]:
    """A shortest path start -> ... -> start inside one component (breadth first)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in successors[node]:
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if successor in members and successor not in parent:
                parent[successor] = node
                queue.append(successor)
    raise AssertionError("a strongly connected component always has a cycle")  # pragma: no cover
