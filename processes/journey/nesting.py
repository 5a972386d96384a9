"""How deep (and, for YAML, how large once its aliases are expanded) a text's data would be,
measured before it is built. Pure: no Django, no I/O.

Building the data first is what fails: Python's JSON parser and every recursive walk after
it overflow the stack on a few thousand levels, and YAML aliases can describe a structure
that is exponentially larger than its text ("billion laughs"), which loads as shared
references but is copied, dumped and hashed in full afterwards.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

import yaml

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
# Opening brackets count +1 and closing ones -1 (255 is -1 as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_nesting_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether the JSON text `data` nests arrays and objects deeper than `max_depth`.

    Linear in the text: strings are cut out (brackets inside them do not count), then the
    running count of openers against closers must stay within the limit. A text with no
    more brackets than the limit cannot exceed it, so the usual small body costs two
    `bytes.count` calls."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data))
    if not brackets:
        return False
    return max(accumulate(array("b", brackets.translate(_STEPS)))) > max_depth


_TOKENS = re.compile(rb'"((?:[^"\\]++|\\.)*+)"(\s*:)?|[\[\]{},]', re.DOTALL)


def overflow_path(data: bytes, max_depth: int) -> list[str | int]:
    """Where the JSON text `data` first nests deeper than `max_depth`: the keys and indexes
    leading there (`["context", "a", "a", ...]`), to name the field that is refused. Only
    called on a text known to be too deep; it stops at the overflow."""
    path: list[str | int] = []
    kinds: list[int] = []  # per open bracket: b"{"[0] or b"["[0]
    for match in _TOKENS.finditer(data):
        token = match.group(0)
        if match.group(2) is not None:  # a key
            if kinds and kinds[-1] == 0x7B:
                path[-1] = _key(match.group(1))
        elif token in (b"{", b"["):
            kinds.append(token[0])
            path.append(0 if token == b"[" else "")
            if len(kinds) > max_depth:
                return [step for step in path[:-1] if step != ""]
        elif token in (b"}", b"]"):
            if kinds:
                kinds.pop()
                path.pop()
        elif token == b"," and kinds and kinds[-1] == 0x5B:
            path[-1] = int(path[-1]) + 1
    return []


def _key(raw: bytes) -> str:
    try:
        return json.loads(b'"' + raw + b'"')
    except ValueError:
        return raw.decode("utf-8", "replace")


class YamlTooLarge(ValueError):
    """The YAML's data, aliases expanded, would nest too deeply or hold too many nodes."""


def check_yaml_shape(text: str, loader: type, *, max_depth: int, max_nodes: int) -> None:
    """Walk the YAML's event stream (iterative, nothing built) and raise YamlTooLarge when
    the data it describes, each alias counted as the whole node it names, nests deeper
    than `max_depth` or holds more than `max_nodes` nodes. A syntax error is raised as
    yaml.YAMLError, as loading would."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height) of the node it names
    open_nodes: list[list] = []  # per open collection: [anchor, nodes, height of its deepest child]
    total = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            open_nodes.append([event.anchor, 1, 0])
            total += 1
            if len(open_nodes) > max_depth:
                raise YamlTooLarge(f"nested deeper than {max_depth} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, nodes, child_height = open_nodes.pop()
            _add(open_nodes, anchors, anchor, nodes, child_height + 1)
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            _add(open_nodes, anchors, event.anchor, 1, 0)
        elif isinstance(event, yaml.AliasEvent):
            nodes, height = anchors.get(event.anchor, (1, 0))  # an unknown one fails when loaded
            total += nodes
            if len(open_nodes) + height > max_depth:
                raise YamlTooLarge(f"nested deeper than {max_depth} levels (through the alias *{event.anchor})")
            _add(open_nodes, anchors, None, nodes, height)
        if total > max_nodes:
            raise YamlTooLarge(f"more than {max_nodes} values once its aliases are expanded")


def _add(open_nodes: list[list], anchors: dict[str, tuple[int, int]], anchor: str | None, nodes: int,
         height: int) -> None:
    if anchor is not None:
        anchors[anchor] = (nodes, height)
    if open_nodes:
        parent = open_nodes[-1]
        parent[1] += nodes
        parent[2] = max(parent[2], height)
