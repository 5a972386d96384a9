"""The step transaction: the one way a service changes a process and its tasks.

    with step(task=task_id, actor=user, completing=True) as s:
        ...checks on s.task and s.process...
        s.change_task(s.task, move="complete", result=...)
        s.event(EventType.TASK_COMPLETED, task=s.task)
        s.advance(outcome, closing=s.task)

`step` opens the transaction, locks the process row (and reads the task with it), yields a
`Step`, and commits. Everything a service changes through the `Step` waits for the commit
and goes with it: on PostgreSQL the step's writes and events are one statement, sent with
the COMMIT in one round trip (`steps.writes`), and the lock read carries the routing of the
task's certain next steps (`steps.lookahead`). A service sees none of that: it reads and
changes instances, and the step decides how they reach the database.

The invariants are held here, not in docstrings:

- **Nothing after the commit.** Once the step has committed (at the end of the block, or
  by `Step.commit`), any statement on that connection in the block raises
  `StatementAfterCommit` at once: with the COMMIT sent early, it would otherwise run
  outside the step's transaction, unseen.
- **One writer for tasks.** A task changes through `Step.change_task` (`steps.changes`),
  which moves its version on and guards on the version read; its status by a move of
  `tasks.states`, a process's by a move of `processes.states`.
- **The process row first.** The lock read takes the process row before anything else, so
  every step of a process is serialised, whatever it touches after.

A step inside another transaction (an `Idempotency-Key`'s record, which shares the write's
transaction) writes everything with its own last statement and leaves the commit to the
outer block.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from psycopg import pq

from processes import states, versions
from processes.engine import core
from processes.errors import NotFound
from processes.models import ProcessInstance
from tasks.models import TaskInstance
from tasks.routing import BatchRouter, Route

from . import changes, lockread, lookahead, tricks
from .advance import advance
from .events import EventLog
from .writes import NEXT_IDS, pipelined

__all__ = ["Step", "StatementAfterCommit", "step"]


class StatementAfterCommit(RuntimeError):
    """A statement was sent after the step had committed, inside the step's block."""


class Step:
    """What a service holds inside `step`: the locked process (and the task it was asked
    for), and the ways to change them, all sent with the step's commit."""

    def __init__(self, db, *, process: ProcessInstance | None, task: TaskInstance | None = None,
                 actor=None, routes: dict[str, Route] | None = None, router: BatchRouter | None = None) -> None:
        self.db = db
        self.process = process
        self.task = task
        self.actor = actor
        self.routes = routes or {}
        self.router = router
        # The process rows were locked and read under the lock (or made here): the events'
        # hash chain continues from them.
        self.log = EventLog(actor, process_locked=True)
        self.committed = False

    # --- reading --------------------------------------------------------------------------

    @property
    def blueprint(self):
        return versions.get_blueprint(self.process.version_id, self.process.workflow_id)

    def runtime(self, process: ProcessInstance | None = None) -> core.Runtime:
        process = process or self.process
        return core.Runtime.stored(process.atom_states, process.fired_edges, process.loops)

    # --- changing: everything waits for the commit ------------------------------------------

    def event(self, type: str, *, process: ProcessInstance | None = None, task: TaskInstance | None = None,
              atom_id: str = "", **payload: Any) -> None:
        self.log.add(process or self.process, type, task=task, atom_id=atom_id, **payload)

    def change_task(self, task: TaskInstance, *, move: str | None = None, **fields: Any) -> None:
        """The one writer (`steps.changes.change_task`), with the step's writes."""
        changes.change_task(task, self.log.writes, move=move, **fields)

    def move_process(self, move: str, *, process: ProcessInstance | None = None, **fields: Any) -> None:
        """Change the process's status by a move of `processes.states`, with `fields`."""
        process = process or self.process
        process.status = states.target_of(process.status, move)
        self.save_process("status", process=process, **fields)

    def save_process(self, *names: str, process: ProcessInstance | None = None, **fields: Any) -> None:
        """Save these fields of the process row (set from `fields`, or as they are), its
        lock version moved on: an edit made against what was read before fails (412)."""
        process = process or self.process
        for name, value in fields.items():
            setattr(process, name, value)
        process.lock_version += 1
        process.updated_at = timezone.now()
        self.log.writes.update(process, [*names, *fields, "lock_version", "updated_at"])

    def advance(self, outcome: core.Step, *, process: ProcessInstance | None = None,
                closing: TaskInstance | None = None) -> list[TaskInstance]:
        """What the engine decided (`outcome`): the new tasks, the atom states and context, the
        completion (`steps.advance`). `closing`: the task this step completes."""
        process = process or self.process
        blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
        return advance(process, blueprint, outcome, self.log, closing=closing, router=self.router,
                       routes=self.routes if process is self.process else None)

    def after_commit(self, func: Callable[[], Any]) -> None:
        transaction.on_commit(func, using=self.db.alias)

    def commit(self) -> None:
        """Send everything, with the COMMIT where this step's transaction is the outermost.
        From then on, a statement in the block raises `StatementAfterCommit`."""
        if self.committed:
            return
        if self.router is not None:
            self.router.stamp()
        outermost = len(self.db.atomic_blocks) == 1
        self.log.flush(commit=outermost)
        self.committed = True
        if outermost:
            _commit_now(self.db)
            self.db._step_committed_in = self.db.atomic_blocks[0]


@contextmanager
def step(*, task: Any = None, process: Any = None, new: ProcessInstance | list[ProcessInstance] | None = None,
         actor=None, completing: bool = False, outcome: core.Step | None = None,
         router: BatchRouter | None = None) -> Iterator[Step]:
    """One step transaction, for one of:

    - `task=ID`: the task (404 `NotFound` if there is none), its process locked, its
      assignee read with it. `completing`: the step completes this task; its certain next
      tasks are routed in the same round trip (`steps.lookahead`).
    - `process=ID`: the process locked (404 if there is none).
    - `new=PROCESS` (its first `outcome` from the engine) or `new=[PROCESSES]` (a bulk
      start, with a `router`): processes this step creates; nobody else can see them before
      the commit.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up again
    _guard(db)
    with transaction.atomic(using=db.alias):
        if task is not None:
            locked_task, routes = lockread.lock_task(task, db, completing=completing)
            current = Step(db, process=locked_task.process, task=locked_task, actor=actor, routes=routes)
        elif process is not None:
            current = Step(db, process=_lock_process(process), actor=actor)
        elif isinstance(new, list):
            current = Step(db, process=None, actor=actor, router=router)
            current.log.writes.create(new)  # ids now, inserted with the step's writes
        else:
            current = Step(db, process=new, actor=actor, routes=_begin(db, new, outcome))
            current.log.writes.create([new])
        yield current
        current.commit()


def _lock_process(process_id: Any) -> ProcessInstance:
    try:
        return ProcessInstance.objects.select_for_update().get(pk=int(process_id))
    except (ProcessInstance.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(f"process {process_id} not found") from None


def _begin(db, process: ProcessInstance, outcome: core.Step | None) -> dict[str, Route]:
    """A new process's first statements, on PostgreSQL in one pipeline: its row's id and the
    routing of its first tasks (the engine has decided them already). The routes by atom id;
    elsewhere none, and the tasks are routed one by one."""
    if db.vendor != "postgresql" or outcome is None or not tricks.on("lookahead"):
        return {}
    blueprint = versions.get_blueprint(process.version_id, process.workflow_id)
    with db.cursor() as cursor:
        with pipelined(db):
            cursor.execute(NEXT_IDS, [ProcessInstance._meta.db_table, ProcessInstance._meta.pk.column, 1])
            foreseen = lookahead.send_routes(blueprint, outcome.activated, db=db)
        process.pk = cursor.fetchone()[0]
    return foreseen.routes() if foreseen is not None else {}


# --- nothing after the commit ---------------------------------------------------------------------

def _commit_now(db) -> None:
    """End the transaction now, where the step's writes did not carry its COMMIT (SQLite; a
    step that wrote nothing): committed is committed on every database, not at the block's
    end. Django's own commit at the block's end then finds nothing to do."""
    raw = db.connection
    if raw is None:
        return
    with db.wrap_database_errors:
        if db.vendor == "postgresql":
            if raw.info.transaction_status != pq.TransactionStatus.IDLE:
                with db.committing():
                    raw.commit()
        elif getattr(raw, "in_transaction", False):
            raw.commit()


def _guard(db) -> None:
    if _refuse_after_commit not in db.execute_wrappers:
        db.execute_wrappers.append(_refuse_after_commit)


def _refuse_after_commit(execute, sql, params, many, context):
    db = context["connection"]
    committed_in = db.__dict__.get("_step_committed_in")
    # The block whose step committed is still open: its transaction is over, and this
    # statement would run outside it (on PostgreSQL, after the COMMIT sent with the writes).
    if committed_in is not None and db.atomic_blocks and db.atomic_blocks[0] is committed_in:
        raise StatementAfterCommit(
            "the step has committed: this statement would run outside its transaction "
            f"({sql.split(None, 1)[0] if sql else 'statement'}); move it before the commit, or after the block")
    return execute(sql, params, many, context)
