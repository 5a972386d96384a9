"""Reading the project's source as syntax trees, for the tests that check its structure."""

from __future__ import annotations

import ast


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, once more where CPython 3.11 raises "AST constructor recursion depth
    mismatch": its parser keeps that depth in state every thread shares, and the traceback
    module parses too, on any background thread that logs an error meanwhile."""
    try:
        return ast.parse(source, filename)
    except SystemError:
        return ast.parse(source, filename)
