"""Journey files as text: YAML or JSON in, YAML or JSON out."""

from __future__ import annotations

import json
from typing import Any, Final, Mapping

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from .errors import JourneyError
from .nesting import YamlTooLarge, check_yaml_shape, json_nesting_exceeds
from .normalizer import normalize

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _JourneyLoader(yaml.SafeLoader):
    """SafeLoader that keeps the data JSON-shaped and refuses duplicate keys.

    Plain YAML turns `2024-01-31` into a date, which JSON (and so the version hash)
    cannot hold: here it stays a string. A repeated key would silently drop a value.
    """

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value!r}", key_node.start_mark,
                    )
                seen.add(identity)
        return super().construct_mapping(node, deep=deep)


_JourneyLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# The bounds on a journey file before it is parsed; the app passes its settings
# (GNDP_JOURNEY_MAX_BYTES, GNDP_JOURNEY_MAX_DEPTH), whose defaults these are.
MAX_BYTES: Final = 2 * 1024 * 1024
MAX_DEPTH: Final = 128


def parse_text(text: str, filename: str | None = None, *, max_bytes: int = MAX_BYTES,
               max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The data of a journey file. JSON when the name ends in .json or the text starts
    with `{`, YAML otherwise. Raises JourneyError for a syntax error, a text over
    `max_bytes`, data nested deeper than `max_depth` (YAML aliases expanded), or a top
    level that is not a mapping; the content itself is checked by `normalize`."""
    label = filename or "<text>"
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) > max_bytes:
        raise JourneyError([f"{label}: larger than {max_bytes} bytes"])
    named_json = (filename or "").lower().endswith(".json")
    if named_json or text.lstrip().startswith("{"):
        try:
            if json_nesting_exceeds(encoded, max_depth):
                raise RecursionError
            data = _load_json(text)
        except ValueError as exc:
            if named_json:
                raise JourneyError([f"{label}: invalid JSON: {_json_message(exc)}"]) from None
            # `{format: gndp-journey/1, ...}` is a YAML flow mapping, not broken JSON.
            data = _load_yaml(text, label, max_bytes, max_depth)
        except RecursionError:
            raise JourneyError([f"{label}: nested deeper than {max_depth} levels"]) from None
    else:
        data = _load_yaml(text, label, max_bytes, max_depth)
    if not isinstance(data, dict):
        raise JourneyError([f"{label}: the top level must be a mapping"])
    return data


def _load_yaml(text: str, label: str, max_bytes: int, max_depth: int) -> Any:
    try:
        # Its shape first, from the event stream: the loader recurses, and builds aliases.
        check_yaml_shape(text, _JourneyLoader, max_depth=max_depth, max_nodes=max_bytes // 4)
        return yaml.load(text, Loader=_JourneyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise JourneyError([f"{label}: invalid YAML: {_one_line(exc)}"]) from None
    except YamlTooLarge as exc:
        raise JourneyError([f"{label}: {exc}"]) from None
    except RecursionError:
        raise JourneyError([f"{label}: nested deeper than {max_depth} levels"]) from None


def _json_message(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    return str(exc)


def _load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _one_line(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{exc.problem or exc.context}{where}"
    return " ".join(str(exc).split())


class _Dumper(yaml.SafeDumper):
    """Block style for structure, flow style for flat mappings (`{type: ENABLES, from: a, to: b}`),
    as people write journey files; never &anchors, even for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(_scalar(item) for item in value)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flat = bool(data) and all(_scalar(value) or _flat_list(value) for value in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flat)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=bool(data) and _flat_list(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Unicode line breaks (NEL, LS, PS) and the BOM come back as spaces or vanish in any
    # style but double quotes, where they are escaped.
    style = '"' if any(char in _FRAGILE for char in data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_FRAGILE: Final = frozenset("\x85\u2028\u2029\ufeff")

_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def dump(defn: Mapping[str, Any], fmt: str = "yaml") -> str:
    """A journey file that loads back (parse_text + normalize) to the same hash.

    The definition is normalized first, so the file is canonical and in reading order
    even when `defn` came back from a store that reorders keys (PostgreSQL jsonb does).
    """
    canonical = normalize(dict(defn))
    if fmt == "json":
        return json.dumps(canonical, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(canonical, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"unknown format {fmt!r} (yaml or json)")
