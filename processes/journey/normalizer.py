"""Validation of a `gndp-journey/1` file and its canonical definition.

`normalize` reports every problem at once (one line each, naming its place) or returns
the canonical definition: defaults omitted, shorthands expanded (`rule: x` is
`rules: [x]`, PERFORMED_BY edges are folded into atoms, the seed's rule `actions` are
materialized into edge `rules`), durations rewritten canonically, order kept (edge order
decides which edge fires first). The canonical form is a fixed point: normalizing it
again changes nothing, so its hash identifies a workflow version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Collection, Final, Iterable

from processes.engine.blueprint import (  # the canonical form omits the defaults
    CHOOSE,
    CHOOSE_ALL,
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_SYSTEM_RETRIES,
    FIRST_DONE,
    THEN,
    reachable,
)
from processes.engine.durations import format_duration, parse_duration
from processes.engine.rules import (
    canonical_condition,
    is_field_path,
    is_number,
    json_problems,
    key_place,
    show,
    strict_equal,
    validate_condition,
)
from tasks import strategies

from .cycles import find_cycles
from .errors import JourneyError

FORMAT: Final = "gndp-journey/1"
ID_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
FIELD_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,63}")

KINDS: Final = ("human", "system")
PRIORITIES: Final = ("low", "medium", "high")
FIELD_TYPES: Final = ("string", "number", "integer", "boolean", "date", "choice")
EDGE_TYPES: Final = ("ENABLES", "DEPENDS_ON", "PERFORMED_BY")
CONDITION_KEYS: Final = ("rule", "rules", "condition", "default")

MAX_RETRIES: Final = 20

# Keys each item may have, in the order the canonical form (and so `dump`) writes them.
TOP_KEYS: Final = ("format", "journey", "roles", "phases", "atoms", "edges", "rules")
JOURNEY_KEYS: Final = ("id", "name", "description", "sensitive", "sla", "privacy", "start")
PRIVACY_KEYS: Final = ("subject_key", "personal", "retention")
START_KEYS: Final = ("by", "parts")
# `start.by`'s word for every signed-in user, in place of a list of roles.
EVERYONE: Final = "everyone"
ROLE_KEYS: Final = ("id", "name", "assignment")
PHASE_KEYS: Final = ("id", "name", "modules")
MODULE_KEYS: Final = ("id", "name", "atoms")
ATOM_KEYS: Final = (
    "id", "name", "kind", "performed_by", "priority", "sla", "form", "handler", "params", "retries",
    "choose", "then", "rules",
)
FORM_KEYS: Final = ("name", "type", "label", "required", "sensitive", "choices")
EDGE_KEYS: Final = ("type", "from", "to", "rule", "rules", "condition", "default", "loop", "max_iterations")
LOOP_KEYS: Final = ("loop", "max_iterations")
MAX_ITERATIONS: Final = 1000
RULE_KEYS: Final = ("rule_id", "description", "conditions", "actions")
ACTION_KEYS: Final = ("type", "target")

_ABSENT: Final = object()


def normalize(data: Any, known_handlers: Collection[str] | None = None) -> dict[str, Any]:
    """The canonical definition of a journey file's data, or JourneyError with every problem.

    With `known_handlers`, system atoms must name one of them.
    """
    return _Normalizer(known_handlers).run(data)


def _get(item: dict[Any, Any], key: str) -> Any:
    # An optional key set to null (`description:` with nothing after it) is simply absent.
    value = item.get(key)
    return _ABSENT if value is None else value


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _ordered(item: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: item[key] for key in keys if key in item}


@dataclass
class _Edge:
    out: dict[str, Any]  # the canonical edge
    place: str


class _Normalizer:
    def __init__(self, known_handlers: Collection[str] | None):
        self.known_handlers = None if known_handlers is None else frozenset(known_handlers)
        self.problems: list[str] = []
        self.kinds: dict[str, str] = {}  # id -> journey | role | phase | module | atom | rule
        self.id_places: dict[str, str] = {}
        self.atoms: dict[str, dict[str, Any]] = {}  # canonical atoms by id
        self.atom_places: dict[str, str] = {}
        self.module_of: dict[str, str] = {}
        self.seed_rules: list[tuple[str, list[tuple[str, str]]]] = []  # (atom id, [(rule id, place)])
        self.rule_targets: dict[str, list[str]] = {}  # rule id -> its transition targets
        self.performers: dict[str, tuple[str, str]] = {}  # atom id -> (role, edge place)
        self.edges: list[_Edge] = []
        self.edge_keys: dict[tuple[str, str, str], str] = {}  # (type, from, to) -> place

    def problem(self, place: str, message: str) -> None:
        self.problems.append(f"{place}: {message}")

    # --- the whole file ------------------------------------------------------------------

    def run(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise JourneyError([f"journey file: the top level must be a mapping, got {show(data)}"])
        self.unknown_keys(data, "", TOP_KEYS)
        self.check_format(data)
        self.collect_ids(data)
        journey = self.journey(data.get("journey"))
        roles = self.section(data, "roles", self.role)
        phases = self.section(data, "phases", self.phase)
        atoms = self.section(data, "atoms", self.atom)
        if data.get("atoms") in (None, []):
            self.problem("atoms", "a journey needs at least one atom")
        rules = self.section(data, "rules", self.rule)
        self.parse_edges(data.get("edges"))
        self.fold_performers()
        self.materialize_seed_rules()
        self.check_defaults()
        self.check_races()
        self.check_cycles()
        self.check_loops()
        result = {
            "format": FORMAT,
            "journey": journey,
            "roles": roles,
            "phases": phases,
            "atoms": [_ordered(atom, ATOM_KEYS) for atom in atoms],
            "edges": [edge.out for edge in self.edges],
            "rules": rules,
        }
        self.check_unicode(result)
        if self.problems:
            raise JourneyError(self.problems)
        return result

    def check_format(self, data: dict[Any, Any]) -> None:
        if "format" not in data:
            self.problem("format", f"required ({FORMAT!r})")
        elif data["format"] != FORMAT:
            self.problem("format", f"expected {FORMAT!r}, got {show(data['format'])}")

    def check_unicode(self, result: dict[str, Any]) -> None:
        # JSON text from outside may hold lone surrogates, which no UTF-8 hash can take.
        try:
            json.dumps(result, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            self.problem("journey file", "contains text that is not valid Unicode")

    # --- generic pieces --------------------------------------------------------------------

    def unknown_keys(self, item: dict[Any, Any], place: str, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in item:
            if key not in allowed:
                self.problem(key_place(place, key), "unknown key")

    def mapping(self, item: Any, place: str, allowed: Iterable[str]) -> bool:
        if not isinstance(item, dict):
            self.problem(place, f"must be a mapping, got {show(item)}")
            return False
        self.unknown_keys(item, place, allowed)
        return True

    def section(
        self, data: dict[Any, Any], key: str, parse: Callable[[Any, str], dict[str, Any] | None]
    ) -> list[dict[str, Any]]:
        items = self.list_of(data, key, key)
        return [out for i, item in enumerate(items) if (out := parse(item, f"{key}[{i}]")) is not None]

    def list_of(self, item: dict[Any, Any], key: str, place: str) -> list[Any]:
        value = _get(item, key)
        if value is _ABSENT:
            return []
        if not isinstance(value, list):
            self.problem(place, f"must be a list, got {show(value)}")
            return []
        return value

    def name(self, item: dict[Any, Any], place: str) -> Any:
        value = _get(item, "name")
        if value is _ABSENT:
            self.problem(f"{place}.name", "required")
        elif not isinstance(value, str) or not value.strip():
            self.problem(f"{place}.name", f"must be a non-empty string, got {show(value)}")
        return value

    def optional_text(self, item: dict[Any, Any], key: str, place: str) -> str | None:
        value = _get(item, key)
        if value is _ABSENT:
            return None
        if not isinstance(value, str):
            self.problem(f"{place}.{key}", f"must be a string, got {show(value)}")
            return None
        return value or None  # an empty text is the default: omitted

    def choice(self, item: dict[Any, Any], key: str, place: str, options: tuple[str, ...]) -> str | None:
        value = _get(item, key)
        if value is _ABSENT:
            return None
        if not isinstance(value, str) or value not in options:
            self.problem(f"{place}.{key}", f"must be one of {', '.join(options)}, got {show(value)}")
            return None
        return value

    def flag(self, item: dict[Any, Any], key: str, place: str) -> bool:
        value = _get(item, key)
        if value is _ABSENT:
            return False
        if not isinstance(value, bool):
            self.problem(f"{place}.{key}", f"must be true or false, got {show(value)}")
            return False
        return value

    def reference(self, value: Any, place: str, kind: str) -> str | None:
        """`value` if it is the id of a `kind` (atom, role, rule) of this file."""
        if not isinstance(value, str):
            self.problem(place, f"must be the id of {_a(kind)}, got {show(value)}")
            return None
        actual = self.kinds.get(value)
        if actual is None:
            self.problem(place, f"unknown {kind} {show(value)}")
            return None
        if actual != kind:
            self.problem(place, f"{show(value)} is {_a(actual)}, not {_a(kind)}")
            return None
        return value

    def references(self, item: dict[Any, Any], key: str, place: str, kind: str) -> list[tuple[str, str]]:
        """The valid, distinct ids listed under `key`, each with its place."""
        found: list[tuple[str, str]] = []
        for i, value in enumerate(self.list_of(item, key, f"{place}.{key}")):
            where = f"{place}.{key}[{i}]"
            ref = self.reference(value, where, kind)
            if ref is None:
                continue
            if any(ref == seen for seen, _ in found):
                self.problem(where, f"duplicate {kind} {show(ref)}")
            else:
                found.append((ref, where))
        return found

    def duration(self, value: Any, place: str) -> str | None:
        try:
            delta = parse_duration(value)
        except ValueError as exc:
            self.problem(place, str(exc))
            return None
        if delta <= timedelta(0):
            self.problem(place, "must be longer than zero")
            return None
        return format_duration(delta)

    def sla(self, item: dict[Any, Any], place: str, keys: tuple[str, ...]) -> dict[str, str] | None:
        value = _get(item, "sla")
        if value is _ABSENT or not self.mapping(value, f"{place}.sla", keys):
            return None
        out = {}
        for key in keys:
            if _get(value, key) is not _ABSENT:
                text = self.duration(value[key], f"{place}.sla.{key}")
                if text:
                    out[key] = text
        return out or None

    # --- ids -------------------------------------------------------------------------------

    def collect_ids(self, data: dict[Any, Any]) -> None:
        """Check every id first, so references anywhere can be resolved in one pass."""
        journey = data.get("journey")
        if isinstance(journey, dict):
            self.register(journey, "id", "journey", "journey")
        for key, kind, id_key in (("roles", "role", "id"), ("phases", "phase", "id")):
            for place, item in self.items_at(data, key):
                self.register(item, id_key, place, kind)
                if kind == "phase":
                    for module_place, module in self.items_at(item, "modules", place):
                        self.register(module, "id", module_place, "module")
        for place, item in self.items_at(data, "atoms"):
            self.register(item, "id", place, "atom")
        for place, item in self.items_at(data, "rules"):
            self.register(item, "rule_id", place, "rule")

    @staticmethod
    def items_at(container: dict[Any, Any], key: str, place: str = "") -> list[tuple[str, dict[Any, Any]]]:
        value = container.get(key)
        if not isinstance(value, list):
            return []
        prefix = f"{place}.{key}" if place else key
        return [(f"{prefix}[{i}]", item) for i, item in enumerate(value) if isinstance(item, dict)]

    def register(self, item: dict[Any, Any], key: str, place: str, kind: str) -> None:
        where = f"{place}.{key}"
        value = item.get(key)
        if value is None:
            self.problem(where, "required")
        elif not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            self.problem(where, f"invalid id {show(value)} (lower-case letters, digits, '.', '_', '-')")
        elif value in self.kinds:
            self.problem(where, f"duplicate id {show(value)} (also {self.id_places[value]})")
        else:
            self.kinds[value] = kind
            self.id_places[value] = where

    def owns(self, item: dict[Any, Any], key: str, place: str) -> str | None:
        """The item's id when it was registered for this very item (not a duplicate)."""
        value = item.get(key)
        return value if isinstance(value, str) and self.id_places.get(value) == f"{place}.{key}" else None

    # --- sections ----------------------------------------------------------------------------

    def journey(self, value: Any) -> dict[str, Any]:
        if value is None:
            self.problem("journey", "required")
            return {}
        if not self.mapping(value, "journey", JOURNEY_KEYS):
            return {}
        out: dict[str, Any] = {"id": value.get("id"), "name": self.name(value, "journey")}
        description = self.optional_text(value, "description", "journey")
        if description:
            out["description"] = description
        sensitive = self.sensitive_paths(value)
        if sensitive:
            out["sensitive"] = sensitive
        sla = self.sla(value, "journey", ("target",))
        if sla:
            out["sla"] = sla
        privacy = self.privacy(value)
        if privacy:
            out["privacy"] = privacy
        start = self.start(value)
        if start:
            out["start"] = start
        return out

    def start(self, journey: dict[Any, Any]) -> dict[str, Any]:
        """Who may start the journey (`by`: role ids, or `everyone`) and which of its phases
        and modules may be started on their own (`parts`). Both optional: without `by`, the
        roles that perform its atoms start it; without `parts`, no part starts on its own.
        Omitted when it says no more than the defaults, so a file without it keeps its hash."""
        value = _get(journey, "start")
        if value is _ABSENT or not self.mapping(value, "journey.start", START_KEYS):
            return {}
        out: dict[str, Any] = {}
        by = self.start_by(value)
        if by is not None:
            out["by"] = by
        parts = self.start_parts(value)
        if parts:
            out["parts"] = parts
        return out

    def start_by(self, start: dict[Any, Any]) -> str | list[str] | None:
        """`everyone`, or the distinct role ids in file order (an empty list: administrators
        only); None when absent (the default)."""
        value = _get(start, "by")
        if value is _ABSENT:
            return None
        place = "journey.start.by"
        if value == EVERYONE or value == [EVERYONE]:
            clash = self.everyone_clash()
            if clash:
                self.problem(place, clash)
                return None
            return EVERYONE
        if not isinstance(value, list):
            self.problem(place, f"must be a list of role ids or {EVERYONE!r}, got {show(value)}")
            return None
        roles: list[str] = []
        for i, item in enumerate(value):
            where = f"{place}[{i}]"
            if item == EVERYONE:
                self.problem(where, self.everyone_clash() or f"{EVERYONE!r} cannot be listed with roles")
                continue
            role = self.reference(item, where, "role")
            if role is None:
                continue
            if role in roles:
                self.problem(where, f"duplicate role {show(role)}")
            else:
                roles.append(role)
        return roles

    def everyone_clash(self) -> str | None:
        # A file may name a role `everyone` (old files keep loading); then the word is ambiguous.
        if self.kinds.get(EVERYONE) == "role":
            return f"{EVERYONE!r} is also the id of a role of this file ({self.id_places[EVERYONE]}): rename the role"
        return None

    def start_parts(self, start: dict[Any, Any]) -> list[str]:
        """The distinct phase and module ids that may be started on their own, in file order."""
        parts: list[str] = []
        for i, item in enumerate(self.list_of(start, "parts", "journey.start.parts")):
            where = f"journey.start.parts[{i}]"
            kind = self.kinds.get(item) if isinstance(item, str) else None
            if not isinstance(item, str):
                self.problem(where, f"must be the id of a phase or module, got {show(item)}")
            elif kind is None:
                self.problem(where, f"unknown phase or module {show(item)}")
            elif kind not in ("phase", "module"):
                self.problem(where, f"{show(item)} is {_a(kind)}, not a phase or module of this journey")
            elif item in parts:
                self.problem(where, f"duplicate part {show(item)}")
            else:
                parts.append(item)
        return parts

    def privacy(self, journey: dict[Any, Any]) -> dict[str, Any]:
        """Data protection: the context path naming the data subject (a borrower), the other
        paths holding their personal data, and how long a finished process keeps them."""
        value = _get(journey, "privacy")
        if value is _ABSENT or not self.mapping(value, "journey.privacy", PRIVACY_KEYS):
            return {}
        out: dict[str, Any] = {}
        subject_key = _get(value, "subject_key")
        if subject_key is not _ABSENT:
            if is_field_path(subject_key):
                out["subject_key"] = subject_key
            else:
                self.problem("journey.privacy.subject_key", f"invalid field path {show(subject_key)}")
        personal: list[str] = []
        for i, path in enumerate(self.list_of(value, "personal", "journey.privacy.personal")):
            place = f"journey.privacy.personal[{i}]"
            if not is_field_path(path):
                self.problem(place, f"invalid field path {show(path)}")
            elif path in personal or path == out.get("subject_key"):
                self.problem(place, f"duplicate path {show(path)}")
            else:
                personal.append(path)
        if personal:
            out["personal"] = personal
        if _get(value, "retention") is not _ABSENT:
            retention = self.duration(value["retention"], "journey.privacy.retention")
            if retention:
                out["retention"] = retention
        return out

    def sensitive_paths(self, journey: dict[Any, Any]) -> list[str]:
        paths: list[str] = []
        for i, path in enumerate(self.list_of(journey, "sensitive", "journey.sensitive")):
            place = f"journey.sensitive[{i}]"
            if not is_field_path(path):
                self.problem(place, f"invalid field path {show(path)}")
            elif path in paths:
                self.problem(place, f"duplicate path {show(path)}")
            else:
                paths.append(path)
        return paths

    def role(self, item: Any, place: str) -> dict[str, Any] | None:
        if not self.mapping(item, place, ROLE_KEYS):
            return None
        out: dict[str, Any] = {"id": item.get("id"), "name": self.name(item, place)}
        assignment = self.choice(item, "assignment", place, tuple(strategies.STRATEGIES))
        if assignment and assignment != strategies.DEFAULT:
            out["assignment"] = assignment
        return out

    def phase(self, item: Any, place: str) -> dict[str, Any] | None:
        if not self.mapping(item, place, PHASE_KEYS):
            return None
        out: dict[str, Any] = {"id": item.get("id"), "name": self.name(item, place)}
        modules = []
        for i, module in enumerate(self.list_of(item, "modules", f"{place}.modules")):
            parsed = self.module(module, f"{place}.modules[{i}]")
            if parsed is not None:
                modules.append(parsed)
        if modules:
            out["modules"] = modules
        return out

    def module(self, item: Any, place: str) -> dict[str, Any] | None:
        if not self.mapping(item, place, MODULE_KEYS):
            return None
        module_id = item.get("id")
        out: dict[str, Any] = {"id": module_id, "name": self.name(item, place)}
        members: list[str] = []
        for i, value in enumerate(self.list_of(item, "atoms", f"{place}.atoms")):
            atom_id = self.reference(value, f"{place}.atoms[{i}]", "atom")
            if atom_id is None:
                continue
            if atom_id in self.module_of:
                owner = show(self.module_of[atom_id])
                self.problem(f"{place}.atoms[{i}]", f"atom {show(atom_id)} is already in module {owner}")
                continue
            self.module_of[atom_id] = module_id
            members.append(atom_id)
        if members:
            out["atoms"] = members
        return out

    def atom(self, item: Any, place: str) -> dict[str, Any] | None:
        if not self.mapping(item, place, ATOM_KEYS):
            return None
        out: dict[str, Any] = {"id": item.get("id"), "name": self.name(item, place)}
        kind = "human" if _get(item, "kind") is _ABSENT else self.choice(item, "kind", place, KINDS)
        if kind == "system":
            out["kind"] = "system"
        if _get(item, "performed_by") is not _ABSENT:
            role = self.reference(item["performed_by"], f"{place}.performed_by", "role")
            if role:
                out["performed_by"] = role
        priority = self.choice(item, "priority", place, PRIORITIES)
        if priority and priority != "medium":
            out["priority"] = priority
        sla = self.sla(item, place, ("target", "escalation"))
        if sla:
            out["sla"] = sla
        form = self.form(item, place)
        if form:
            out["form"] = form
        if kind == "system":
            self.system_parts(item, place, out)
        elif kind == "human":
            for key in ("handler", "params", "retries"):
                if _get(item, key) is not _ABSENT:
                    self.problem(f"{place}.{key}", "only system atoms have this")
        choose = self.choice(item, "choose", place, CHOOSE)
        if choose and choose != CHOOSE_ALL:
            out["choose"] = choose
        then = self.choice(item, "then", place, THEN)
        if then:
            out["then"] = then
        atom_id = self.owns(item, "id", place)
        if atom_id:
            self.atoms[atom_id] = out
            self.atom_places[atom_id] = place
            if _get(item, "rules") is not _ABSENT:
                self.seed_rules.append((atom_id, self.references(item, "rules", place, "rule")))
        return out

    def system_parts(self, item: dict[Any, Any], place: str, out: dict[str, Any]) -> None:
        if _get(item, "performed_by") is not _ABSENT:
            self.problem(f"{place}.performed_by", "system atoms are run by a handler, not performed by a role")
        handler = _get(item, "handler")
        if handler is _ABSENT:
            self.problem(f"{place}.handler", "required for system atoms")
        elif not isinstance(handler, str) or not handler:
            self.problem(f"{place}.handler", f"must be a handler name, got {show(handler)}")
        elif self.known_handlers is not None and handler not in self.known_handlers:
            self.problem(f"{place}.handler", f"unknown handler {show(handler)}")
        else:
            out["handler"] = handler
        params = _get(item, "params")
        if params is not _ABSENT:
            if not isinstance(params, dict):
                self.problem(f"{place}.params", f"must be a mapping, got {show(params)}")
            else:
                shape = json_problems(params, f"{place}.params")
                self.problems.extend(shape)
                if params and not shape:
                    out["params"] = json.loads(json.dumps(params))  # a fresh, JSON-only copy
        retries = _get(item, "retries")
        if retries is not _ABSENT:
            if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
                self.problem(f"{place}.retries", f"must be a whole number from 0 to {MAX_RETRIES}, got {show(retries)}")
            elif retries != DEFAULT_SYSTEM_RETRIES:
                out["retries"] = retries

    def form(self, item: dict[Any, Any], place: str) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        names: set[str] = set()
        for i, field in enumerate(self.list_of(item, "form", f"{place}.form")):
            parsed = self.form_field(field, f"{place}.form[{i}]", names)
            if parsed is not None:
                fields.append(parsed)
        return fields

    def form_field(self, item: Any, place: str, names: set[str]) -> dict[str, Any] | None:
        if not self.mapping(item, place, FORM_KEYS):
            return None
        name = _get(item, "name")
        if name is _ABSENT:
            self.problem(f"{place}.name", "required")
        elif not isinstance(name, str) or not FIELD_NAME.fullmatch(name) or name.startswith("__"):
            self.problem(f"{place}.name", f"invalid field name {show(name)} (lower-case letters, digits, '_')")
        elif name in names:
            self.problem(f"{place}.name", f"duplicate field name {show(name)}")
        else:
            names.add(name)
        field_type = _get(item, "type")
        if field_type is _ABSENT:
            self.problem(f"{place}.type", "required")
        elif field_type not in FIELD_TYPES or not isinstance(field_type, str):
            self.problem(f"{place}.type", f"must be one of {', '.join(FIELD_TYPES)}, got {show(field_type)}")
        out: dict[str, Any] = {"name": name, "type": field_type}
        label = self.optional_text(item, "label", place)
        if label:
            out["label"] = label
        for key in ("required", "sensitive"):
            if self.flag(item, key, place):
                out[key] = True
        if field_type in FIELD_TYPES:  # with an unknown type, whether choices belong is moot
            choices = self.choices(item, place, field_type == "choice")
            if choices:
                out["choices"] = choices
        return out

    def choices(self, item: dict[Any, Any], place: str, wanted: bool) -> list[Any]:
        value = _get(item, "choices")
        where = f"{place}.choices"
        if not wanted:
            if value is not _ABSENT:
                self.problem(where, "only choice fields have choices")
            return []
        if not isinstance(value, list) or not value:
            self.problem(where, "a choice field needs a non-empty list of choices")
            return []
        found: list[Any] = []
        for i, choice in enumerate(value):
            scalar = isinstance(choice, (str, bool)) or (is_number(choice) and not json_problems(choice, ""))
            if not scalar:
                self.problem(f"{where}[{i}]", f"must be a string, number or boolean, got {show(choice)}")
            elif any(strict_equal(choice, seen) for seen in found):
                self.problem(f"{where}[{i}]", f"duplicate choice {show(choice)}")
            else:
                found.append(choice)
        return found

    def rule(self, item: Any, place: str) -> dict[str, Any] | None:
        if not self.mapping(item, place, RULE_KEYS):
            return None
        out: dict[str, Any] = {"rule_id": item.get("rule_id")}
        description = self.optional_text(item, "description", place)
        if description:
            out["description"] = description
        if "conditions" not in item:
            self.problem(f"{place}.conditions", "required")
        else:
            problems = validate_condition(item["conditions"], f"{place}.conditions")
            self.problems.extend(problems)
            if not problems:
                out["conditions"] = canonical_condition(item["conditions"])
        targets = self.actions(item, place)
        rule_id = self.owns(item, "rule_id", place)
        if rule_id:
            self.rule_targets[rule_id] = targets
        return out

    def actions(self, item: dict[Any, Any], place: str) -> list[str]:
        """The transition targets of a seed-style rule (they become edge rules, then go)."""
        targets: list[str] = []
        for i, action in enumerate(self.list_of(item, "actions", f"{place}.actions")):
            where = f"{place}.actions[{i}]"
            if not self.mapping(action, where, ACTION_KEYS):
                continue
            if action.get("type") != "transition":
                self.problem(f"{where}.type", f"unknown action {show(action.get('type'))} (only 'transition')")
                continue
            if "target" not in action:
                self.problem(f"{where}.target", "required")
                continue
            target = self.reference(action["target"], f"{where}.target", "atom")
            if target is not None and target not in targets:
                targets.append(target)
        return targets

    # --- edges -------------------------------------------------------------------------------

    def parse_edges(self, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.problem("edges", f"must be a list, got {show(value)}")
            return
        for i, item in enumerate(value):
            self.edge(item, f"edges[{i}]")

    def edge(self, item: Any, place: str) -> None:
        if not self.mapping(item, place, EDGE_KEYS):
            return
        edge_type = item.get("type")
        if edge_type is None:
            self.problem(f"{place}.type", "required")
        elif edge_type not in EDGE_TYPES or not isinstance(edge_type, str):
            self.problem(f"{place}.type", f"unknown edge type {show(edge_type)} ({', '.join(EDGE_TYPES)})")
            edge_type = None
        source_kind, target_kind = ("atom", "role") if edge_type == "PERFORMED_BY" else ("atom", "atom")
        source = self.endpoint(item, "from", place, source_kind)
        target = self.endpoint(item, "to", place, target_kind)
        if edge_type is None:
            return
        if edge_type != "ENABLES":
            for key in (*CONDITION_KEYS, *LOOP_KEYS):
                if key in item:
                    self.problem(f"{place}.{key}", f"only ENABLES edges carry {key}")
        if source is None or target is None:
            return
        loop = edge_type == "ENABLES" and self.flag(item, "loop", place)
        if source == target and not loop:
            self.problem(place, f"self loop on {show(source)} (a rework loop says loop: true)")
            return
        key = (edge_type, source, target)
        if key in self.edge_keys:
            self.problem(place, f"duplicate of {self.edge_keys[key]} ({edge_type} {source} -> {target})")
            return
        self.edge_keys[key] = place
        if edge_type == "PERFORMED_BY":
            self.performed_by_edge(source, target, place)
            return
        out: dict[str, Any] = {"type": edge_type, "from": source, "to": target}
        if edge_type == "ENABLES":
            self.edge_conditions(item, place, out)
            self.loop_parts(item, place, out, loop)
        self.edges.append(_Edge(out, place))

    def loop_parts(self, item: dict[Any, Any], place: str, out: dict[str, Any], loop: bool) -> None:
        """A back edge (`loop: true`) and its `max_iterations`. Whether it carries a condition
        is checked once seed-style rules have conditioned their edges (`check_loops`)."""
        limit = _get(item, "max_iterations")
        if loop:
            out["loop"] = True
        if limit is _ABSENT:
            return
        if not loop:
            self.problem(f"{place}.max_iterations", "only a back edge (loop: true) has max_iterations")
        elif not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_ITERATIONS:
            self.problem(f"{place}.max_iterations",
                         f"must be a whole number from 1 to {MAX_ITERATIONS}, got {show(limit)}")
        elif limit != DEFAULT_MAX_ITERATIONS:
            out["max_iterations"] = limit

    def endpoint(self, item: dict[Any, Any], key: str, place: str, kind: str) -> str | None:
        if item.get(key) is None:
            self.problem(f"{place}.{key}", "required")
            return None
        return self.reference(item[key], f"{place}.{key}", kind)

    def edge_conditions(self, item: dict[Any, Any], place: str, out: dict[str, Any]) -> None:
        rules: list[str] = []
        if _get(item, "rule") is not _ABSENT:
            rule = self.reference(item["rule"], f"{place}.rule", "rule")
            if rule:
                rules.append(rule)
        for rule, where in self.references(item, "rules", place, "rule"):
            if rule in rules:
                self.problem(where, f"duplicate rule {show(rule)}")
            else:
                rules.append(rule)
        if rules:
            out["rules"] = rules
        condition = item.get("condition")
        if condition is not None:
            problems = validate_condition(condition, f"{place}.condition")
            self.problems.extend(problems)
            if not problems:
                out["condition"] = canonical_condition(condition)
        if self.flag(item, "default", place):
            if rules or condition is not None:
                self.problem(f"{place}.default", "a default edge carries no condition")
            out["default"] = True

    def performed_by_edge(self, atom_id: str, role: str, place: str) -> None:
        if atom_id in self.performers:
            other_role, other_place = self.performers[atom_id]
            given = f"{other_place} already gives atom {show(atom_id)} role {show(other_role)}"
            self.problem(place, f"conflicting performed_by: {given}")
            return
        self.performers[atom_id] = (role, place)

    def fold_performers(self) -> None:
        """PERFORMED_BY edges become `performed_by`; then every human atom must have one."""
        for atom_id, (role, place) in self.performers.items():
            atom = self.atoms.get(atom_id)
            if atom is None:
                continue
            if atom.get("kind") == "system":
                self.problem(place, f"system atom {show(atom_id)} is run by a handler, not performed by a role")
            elif atom.get("performed_by", role) != role:
                own = f"{self.atom_places[atom_id]}.performed_by"
                self.problem(place, f"conflicting performed_by: {own} is {show(atom['performed_by'])}")
            else:
                atom["performed_by"] = role
        for atom_id, atom in self.atoms.items():
            if atom.get("kind") != "system" and "performed_by" not in atom and not self.has_problem_at(atom_id):
                self.problem(f"{self.atom_places[atom_id]}.performed_by", "required for human atoms")

    def has_problem_at(self, atom_id: str) -> bool:
        """Whether performed_by or kind was already reported (a bad value is not a missing one)."""
        place = self.atom_places[atom_id]
        return any(problem.startswith((f"{place}.performed_by:", f"{place}.kind:")) for problem in self.problems)

    def materialize_seed_rules(self) -> None:
        """The seed's way: atom A lists rule R whose action moves to T -> R conditions A->T."""
        index = {(e.out["from"], e.out["to"]): e for e in self.edges if e.out["type"] == "ENABLES"}
        for atom_id, listed in self.seed_rules:
            for rule_id, where in listed:
                targets = self.rule_targets.get(rule_id)
                if targets is None:
                    continue  # the rule itself is invalid and already reported
                if not targets:
                    self.problem(where, f"rule {show(rule_id)} has no transition action")
                for target in targets:
                    self.condition_edge(atom_id, target, rule_id, where, index)

    def condition_edge(
        self, source: str, target: str, rule_id: str, where: str, index: dict[tuple[str, str], _Edge]
    ) -> None:
        if source == target:
            self.problem(where, f"rule {show(rule_id)} moves {show(source)} to itself")
            return
        edge = index.get((source, target))
        if edge is None:
            edge = _Edge({"type": "ENABLES", "from": source, "to": target, "rules": [rule_id]}, where)
            self.edges.append(edge)
            index[(source, target)] = edge
        elif edge.out.get("default"):
            self.problem(where, f"rule {show(rule_id)} would condition the default edge {edge.place}")
        elif rule_id not in edge.out.get("rules", []):
            rules = edge.out.setdefault("rules", [])
            rules.append(rule_id)
            # Keep the canonical key order (rules before condition and default).
            edge.out = _ordered(edge.out, EDGE_KEYS)

    def check_defaults(self) -> None:
        first_default: dict[str, str] = {}
        for edge in self.edges:
            if edge.out.get("default"):
                source = edge.out["from"]
                if source in first_default:
                    message = f"atom {show(source)} already has a default edge ({first_default[source]})"
                    self.problem(f"{edge.place}.default", message)
                else:
                    first_default[source] = edge.place

    def check_races(self) -> None:
        """A racer (a target of a `then: first_done` atom) has that atom as its only ENABLES
        source: a second way in would let it run outside the race it lost."""
        enables = [edge for edge in self.edges if edge.out["type"] == "ENABLES"]
        for edge in enables:
            source = edge.out["from"]
            if self.atoms.get(source, {}).get("then") != FIRST_DONE:
                continue
            racer = edge.out["to"]
            for other in enables:
                if other.out["to"] == racer and other.out["from"] != source:
                    message = (f"atom {show(racer)} is a racer of {show(source)} (then: first_done) and may have no "
                               f"other ENABLES source, here {show(other.out['from'])}")
                    self.problem(other.place, message)

    def check_cycles(self) -> None:
        # DEPENDS_ON from B to A means A finishes before B: the arc A -> B. Back edges are the
        # loops a file means, and are checked as such (`check_loops`).
        arcs = [
            (edge.out["from"], edge.out["to"]) if edge.out["type"] == "ENABLES" else (edge.out["to"], edge.out["from"])
            for edge in self.edges if not edge.out.get("loop")
        ]
        for cycle in find_cycles(list(self.atoms), arcs):
            self.problem("edges", "cycle " + " -> ".join(cycle))

    def check_loops(self) -> None:
        """Each back edge X -> Y: conditioned (or X's default), Y leads to X through ordinary
        edges, its region is entered only at Y and left only at X, and two regions are
        disjoint or nested."""
        if any(problem.startswith("edges: cycle") for problem in self.problems):
            return  # regions are meaningless on a graph that is not acyclic
        ordinary = [edge.out for edge in self.edges if edge.out["type"] == "ENABLES" and not edge.out.get("loop")]
        after: dict[str, list[str]] = {}
        before: dict[str, list[str]] = {}
        for edge in ordinary:
            after.setdefault(edge["from"], []).append(edge["to"])
            before.setdefault(edge["to"], []).append(edge["from"])
        regions: list[tuple[str, frozenset[str]]] = []
        for edge in self.edges:
            if not edge.out.get("loop"):
                continue
            source, target = edge.out["from"], edge.out["to"]
            if not (edge.out.get("rules") or "condition" in edge.out or edge.out.get("default")):
                self.problem(f"{edge.place}.loop", "a back edge carries a condition or is its atom's default edge")
            region = frozenset(reachable(target, after) & reachable(source, before))
            if source not in region:
                self.problem(edge.place, f"not a loop: {show(target)} does not lead to {show(source)} "
                                         "through ordinary ENABLES edges")
                continue
            for other in ordinary:
                inside_from, inside_to = other["from"] in region, other["to"] in region
                place = self.edge_keys[("ENABLES", other["from"], other["to"])]
                if inside_to and not inside_from and other["to"] != target:
                    self.problem(place, f"enters the loop {edge.place} at {show(other['to'])}: a loop is entered "
                                        f"only at its first atom {show(target)}")
                if inside_from and not inside_to and other["from"] != source:
                    self.problem(place, f"leaves the loop {edge.place} at {show(other['from'])}: a loop is left "
                                        f"only at its last atom {show(source)}")
            for other_place, other_region in regions:
                if region & other_region and not (region <= other_region or other_region <= region):
                    self.problem(edge.place, f"the loop overlaps the loop {other_place}: loops are disjoint or "
                                             "one lies inside the other")
            regions.append((edge.place, region))

