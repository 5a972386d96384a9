"""Routing a completion's next tasks in the round trip of its lock read.

A completion waits on PostgreSQL for the lock read, for the routing of each next task, and
for the step's writes with the COMMIT. The routing waits for the engine to say which atoms
the completion activates, but for most steps the blueprint says so beforehand: an
atom enabled unconditionally by the completed one alone, and depending on nothing, becomes
active whatever the result (`Blueprint.certain_next`). Knowing the task's atom before
reading it, the routing statements of those atoms are sent in the lock read's pipeline,
after it. They run under the lock, in the same transaction, so they count what the statements after the
engine would have, and their choices are stamped with the step's writes, as any routing's
are (`routing.stamp_assignments`): a transaction that rolls back (a 409, a refusal), or
commits without the routed tasks (a system step whose handler's result broke the form
fails the process instead), stamps nobody.

Which atom a task is of is known when this process created or read the task (a task never
changes its atom, nor a process its version): `remember` keeps the last `LIMIT` of them.
For a task not known, or an atom with no certain successor, the completion routes as
before, after the engine ran: where that is several tasks at once (the branches of a parallel
block after a choice or a join), their statements travel together, in one round trip
(`route_together`).
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from processes import versions
from .writes import pipelined

from tasks import routing
from tasks.strategies import DEFAULT, STRATEGIES

LIMIT = 20_000  # tasks; a few megabytes

_known: dict[int, tuple[int, str, str]] = {}  # task id -> (version id, workflow id, atom id)


def remember(task_id: int | None, process, atom_id: str) -> None:
    """Note the atom of a task of `process` (created or read here)."""
    if task_id is None:
        return
    if task_id not in _known and len(_known) >= LIMIT:
        try:
            _known.pop(next(iter(_known)), None)  # the oldest (dicts keep insertion order)
        except (StopIteration, RuntimeError):  # another thread emptied or changed it meanwhile
            pass
    _known[task_id] = (process.version_id, process.workflow_id, atom_id)


def forget_all() -> None:
    _known.clear()


class Foreseen:
    """Routing statements sent ahead in a pipeline; `routes` reads their answers."""

    def __init__(self, picks: list[tuple[str, object]], when, expected: tuple[int, str, str] | None = None) -> None:
        self._picks = picks  # (atom id, cursor awaiting the answer)
        self.when = when  # when the routing statements were sent: the chosen people's stamp
        self.expected = expected  # what the task read must be, for a guess

    def routes(self, task=None) -> dict[str, routing.Route]:
        """The routes by atom id, once the pipeline is done. For a guess from a remembered
        task, none if the task read is not the one remembered (ids are never reused, so
        only a database emptied under a running process could make it so; the guess then
        only counts its choices as this transaction's in later routing statements)."""
        try:
            if self.expected is not None and self.expected != (
                    task.process.version_id, task.process.workflow_id, task.atom_id):
                return {}
            return {atom_id: routing.read_pick(cursor, self.when) for atom_id, cursor in self._picks}
        finally:
            self.discard()

    def discard(self) -> None:
        for _, cursor in self._picks:
            cursor.close()
        self._picks = []


def send(task_id: int, db=connection) -> Foreseen | None:
    """Inside the lock read's pipeline, after the lock read of `task_id` (the task being
    closed): the routing statements of its certain next atoms, if its atom is known."""
    known = _known.get(task_id)
    if known is None:
        return None
    version_id, workflow_id, atom_id = known
    blueprint = versions.get_blueprint(version_id, workflow_id)  # cached: the engine reads it next
    return send_routes(blueprint, blueprint.certain_next.get(atom_id, ()), closing=task_id, expected=known, db=db)


def send_routes(blueprint, atom_ids, *, closing: int | None = None,
                expected: tuple[int, str, str] | None = None, db=connection) -> Foreseen | None:
    """Send, in the open pipeline of `db` (the default database), the routing statements of
    the human atoms among `atom_ids` whose role routes by a statement (picks someone); None
    where there are none, or where routing is not one statement (not PostgreSQL)."""
    if db.vendor != "postgresql":
        return None
    when, picks = timezone.now(), []
    for atom_id in atom_ids:
        if not _routed_by_statement(blueprint, atom_id):
            continue
        atom = blueprint.atoms[atom_id]
        cursor = db.cursor()
        routing.send_pick(cursor, atom.role, blueprint.roles.get(atom.role, DEFAULT), when, closing=closing)
        picks.append((atom_id, cursor))
    return Foreseen(picks, when, expected) if picks else None


def route_together(blueprint, atom_ids, *, closing: int | None = None) -> dict[str, routing.Route]:
    """The routes of the atoms a step has just activated, their routing statements sent in one
    round trip (a pipeline) where more than one of them routes by a statement (the branches
    of a parallel block that no lock read foresaw); {} otherwise, and each is routed on its
    own (`routing.choose`: one statement needs no pipeline)."""
    if sum(_routed_by_statement(blueprint, atom_id) for atom_id in atom_ids) < 2:
        return {}
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return {}
    foreseen = None
    try:
        with pipelined(db):
            foreseen = send_routes(blueprint, atom_ids, closing=closing, db=db)
        return foreseen.routes()
    except BaseException:
        if foreseen is not None:
            foreseen.discard()
        raise


def _routed_by_statement(blueprint, atom_id: str) -> bool:
    atom = blueprint.atoms[atom_id]
    return not atom.is_system and bool(atom.role) and not STRATEGIES[blueprint.roles.get(atom.role, DEFAULT)].queues
