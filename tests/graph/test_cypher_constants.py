"""Every Cypher text of the Neo4j store, the runtime mirror and the graph analytics is a
constant: values travel only as parameters, so no name, id or text in a journey can change
what a query does.

Statically: Cypher appears only in module-level constants, is never built with formatting or
concatenation, and what `run` receives is a name, never an expression. Dynamically: during
these tests every managed transaction runs one of those constants (the guard in conftest)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from processes.graph import analytics, mirror, neo4j_store
from tests.source import parse

MODULES = [Path(neo4j_store.__file__), Path(mirror.__file__), Path(analytics.__file__)]
CYPHER = re.compile(r"\b(MATCH|MERGE|CREATE|UNWIND|RETURN|DELETE|DETACH|SET|REMOVE|CALL)\b")


def parsed(path: Path) -> ast.Module:
    return parse(path.read_text(), str(path))


def constant_names(tree: ast.Module) -> set[str]:
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }


def strings_in(node: ast.AST) -> list[str]:
    return [item.value for item in ast.walk(node) if isinstance(item, ast.Constant) and isinstance(item.value, str)]


def in_constants(tree: ast.Module) -> set[int]:
    """ids of the string nodes that belong to module-level UPPER_CASE assignments."""
    inside: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            inside.update(id(item) for item in ast.walk(node.value) if isinstance(item, ast.Constant))
    return inside


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_cypher_appears_only_in_module_constants(path):
    tree = parsed(path)
    inside = in_constants(tree)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node)}

    stray = [
        item.value for item in ast.walk(tree)
        if isinstance(item, ast.Constant) and isinstance(item.value, str) and CYPHER.search(item.value)
        and id(item) not in inside and id(item) not in docstrings
    ]

    assert stray == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_constants_are_plain_literals(path):
    # Adjacent literals are one constant to the parser; anything else (f-strings, +, %,
    # format, join) would build text at import time from something that is not a literal.
    tree = parsed(path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(CYPHER.search(text) for text in strings_in(node.value)):
            for item in ast.walk(node.value):
                assert not isinstance(item, (ast.JoinedStr, ast.BinOp, ast.Call)), ast.unparse(node)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_run_receives_a_name_never_an_expression(path):
    tree = parsed(path)
    constants = constant_names(tree)
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run"]

    assert calls, "no query runs found: the test no longer looks at the right thing"
    for call in calls:
        query = call.args[0]
        if isinstance(query, ast.Subscript):
            query = query.value  # a fixed dictionary of constants, looked up by label or type
        assert isinstance(query, ast.Name), ast.unparse(call)
        assert query.id in constants or query.id in {"query", "statement"}, ast.unparse(call)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_text_is_formatted_anywhere(path):
    tree = parsed(path)
    constants = constant_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            names = {item.id for item in ast.walk(node) if isinstance(item, ast.Name)}
            assert not names & constants, ast.unparse(node)
            assert not any(CYPHER.search(text) for text in strings_in(node)), ast.unparse(node)
        if isinstance(node, ast.JoinedStr):
            assert not any(CYPHER.search(text) for text in strings_in(node)), ast.unparse(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format", "join"}:
            receiver = node.func.value
            assert not (isinstance(receiver, ast.Name) and receiver.id in constants), ast.unparse(node)


def test_the_guard_refuses_a_query_that_is_not_a_constant(falkordb_store):
    built = "MATCH (n:Atom {id: " + "'x'" + "}) RETURN n"

    with pytest.raises(AssertionError, match="not one of the store's constants"):
        falkordb_store.read(lambda tx: tx.run(built).data())
