"""The writes of one engine step, sent to the database together.

Advancing a process writes four tables: the new tasks, their object permissions, the
process row and the events. Through the ORM that is four round trips, each through its
query compiler. Here the SQL comes straight from the models' metadata, and on PostgreSQL
the step's writes travel as the data-modifying CTEs of one statement. They are independent
of each other (rows that others point to get their ids first, `need_ids`), so the order
inside the statement does not matter. Other databases run them one by one, at once.

An update may be guarded (`where`): it changes its row only if the row still holds what was
read, and `execute` raises otherwise; the completion's conditional task update travels so.
On PostgreSQL the guard raises inside the statement (`gndp_stale`, an error of SQLSTATE
GN409), so the statement fails as a whole; that is what lets a transaction's last writes
carry its COMMIT (`execute(commit=True)`): one round trip fewer, and a refused guard never
commits. Writes are deferred until `execute`: nothing in between may read what they write.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models
from django.db.models import Model

from psycopg import pq

from gndp import rls

from . import tricks

__all__ = ["NEXT_IDS", "StaleRow", "Writes", "pipelined"]

# Parameters a statement may carry: PostgreSQL's protocol allows 65,535.
MAX_PARAMS = 30_000
# Inserts of more rows than this send a column's values as one array.
UNNEST_ROWS = 20
# What a refused guard raises on PostgreSQL (migration processes 0008).
STALE_SQLSTATE = "GN409"
# The next ids of a table's serial key (table, column, how many): rows that others point to
# get theirs before they are written.
NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"


class Writes:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using
        self.connection = connections[using]
        self.deferred = self.connection.vendor == "postgresql" and tricks.on("writes")
        self._statements: list[tuple[str, list[Any]]] = []
        self._returning: list[tuple[int, list[Model]]] = []  # statement index, rows awaiting ids
        self._updates: dict[tuple[type, Any], _Update] = {}
        self._late: list[list[Model]] = []  # rows inserted at `execute`, as they are then

    def __bool__(self) -> bool:
        return bool(self._statements or self._updates or self._late)

    # --- building ----------------------------------------------------------------------

    def update(self, obj: Model, fields: Iterable[str], *, where: dict[str, Any] | None = None,
               stale: Exception | None = None) -> None:
        """UPDATE the row of `obj` with the values `fields` (attribute names) hold at `execute`.

        Updates of one row are merged into one (a statement may change a row only once).
        With `where` (attribute name: value), the row changes only if its columns still
        hold those values, and `stale` is raised if it did not; the first `where` given for
        a row stands.
        """
        key = (type(obj), obj.pk)
        update = self._updates.setdefault(key, _Update(obj))
        update.fields.update(dict.fromkeys(fields))
        if where is not None and update.where is None:
            update.where, update.stale = where, stale
        if not self.deferred:
            del self._updates[key]
            self._run_update(update)

    def insert(self, objs: list[Model], *, need_ids: bool = False, ignore_conflicts: bool = False) -> None:
        """INSERT `objs` (one model). Their ids are set by the time `execute` returns, or at
        once with `need_ids`, for rows that other writes of the step refer to."""
        if not objs:
            return
        if not self.deferred:
            objs[0].__class__.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts)
            return
        model = type(objs[0])
        if need_ids:
            self._allocate_ids([obj for obj in objs if obj.pk is None])
        with_pk = objs[0].pk is not None
        unnest = len(objs) > UNNEST_ROWS
        sql, fields = _insert_sql(self.using, model, with_pk, 0 if unnest else len(objs), ignore_conflicts)
        values = [_row_values(fields, obj, self.connection) for obj in objs]
        if unnest:
            params = [list(column) for column in zip(*values)]
        else:
            params = [value for row_values in values for value in row_values]
        if not with_pk and not ignore_conflicts:  # skipped rows return no id, as in bulk_create
            self._returning.append((len(self._statements), objs))
        self._add(sql, params)
        for obj in objs:
            obj._state.adding = False
            obj._state.db = self.using

    def statement(self, sql: str, params: list[Any], *, once: bool = False) -> None:
        """A data-modifying statement of the step's own (one that no RETURNING of it is read
        from), sent with the others; `once`: not again while the same one waits to be sent
        (a statement may change a row only once)."""
        if once and self.deferred and any(pending == sql for pending, _ in self._statements):
            return
        self._add(sql, params)

    def create(self, objs: list[Model]) -> None:
        """Rows that this step creates and goes on changing (a bulk start's processes): their
        ids are set at once, and they are inserted at `execute` with the values they hold
        then, their updates folded in. Where writes are not deferred, they are inserted now
        and updated as usual."""
        if not objs:
            return
        if not self.deferred:
            self.insert(objs)
            return
        self._allocate_ids([obj for obj in objs if obj.pk is None])
        self._late.append(objs)

    def _allocate_ids(self, objs: list[Model]) -> None:
        if not objs:
            return
        opts = objs[0]._meta
        with self.connection.cursor() as cursor:
            cursor.execute(NEXT_IDS, [opts.db_table, opts.pk.column, len(objs)])
            for obj, (pk,) in zip(objs, cursor.fetchall()):
                obj.pk = pk

    def _add(self, sql: str, params: list[Any]) -> None:
        if self.deferred:
            self._statements.append((sql, params))
        else:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)

    # --- sending -----------------------------------------------------------------------

    def execute(self, *, commit: bool = False) -> None:
        """Send what was collected. Raises the `stale` of a guarded update that changed
        nothing; the other writes were sent, and the caller's transaction rolls them back.

        `commit`: these are the transaction's last writes, and nothing after them in the
        block can fail (it would find the transaction committed). Where the transaction is the
        outermost atomic block's own, on PostgreSQL, its COMMIT is sent with them (psycopg's
        pipeline mode) and Django's commit at the block's end finds nothing left to do; the
        block's on-commit hooks run then, as ever. Anywhere else the flag changes nothing."""
        late, self._late = self._late, []
        for objs in late:
            for obj in objs:
                # The row goes in with the values it holds now: an update of it waiting here
                # is moot (and could not see it: the statements of one CTE share a snapshot).
                self._updates.pop((type(obj), obj.pk), None)
            self.insert(objs)
        updates, self._updates = list(self._updates.values()), {}
        guarded = []
        for update in updates:
            sql, params = _update_sql(self.connection, update.obj, update.fields, update.where or {})
            if update.where is not None:
                sql += f" RETURNING {self.connection.ops.quote_name(update.obj._meta.pk.column)}"
                guarded.append((len(self._statements), update))
            self._statements.append((sql, params))
        statements, self._statements = self._statements, []
        returning, self._returning = dict(self._returning), []
        guarded = dict(guarded)
        # One statement, unless the parameters would pass what PostgreSQL takes in one
        # (a bulk start's writes): then as few statements as fit.
        commit = commit and tricks.on("commit_with_writes") and _commits_here(self.connection)
        start = 0
        while start < len(statements):
            end, count = start + 1, len(statements[start][1])
            while end < len(statements) and count + len(statements[end][1]) <= MAX_PARAMS:
                count += len(statements[end][1])
                end += 1
            self._send(statements, start, end, returning, guarded, commit=commit and end == len(statements))
            start = end

    def _send(self, statements, start: int, end: int, returning: dict, guarded: dict, *, commit: bool) -> None:
        ctes, selects, params, waiting = [], [], [], []
        for i in range(start, end):
            sql, statement_params = statements[i]
            ctes.append(f"w{i} AS ({sql})")
            params += statement_params
            if i in returning:
                # Ids come from one sequence in row order, so sorted ids are the rows' order.
                selects.append(f"ARRAY(SELECT * FROM w{i} ORDER BY 1)")
                waiting.append(returning[i])
        for i in range(start, end):
            if i in guarded:
                # `i` is this method's own integer: nothing from outside enters the SQL.
                selects.append(f"CASE WHEN EXISTS(SELECT FROM w{i}) THEN TRUE ELSE gndp_stale('{i}') END")
        sql = f"WITH {', '.join(ctes)} SELECT {', '.join(selects) or 'NULL'}"
        try:
            with self.connection.cursor() as cursor:
                if commit:
                    # COMMIT as a statement of the pipeline, not the driver's commit(), which
                    # waits for its own answer before the pipeline's end waits again: the
                    # writes and the COMMIT in one round trip, not two. Should the connection
                    # drop on the way, the COMMIT may have happened (`gndp.db_faults`).
                    raw = self.connection.connection
                    with _committing(self.connection), self.connection.wrap_database_errors, raw.pipeline():
                        cursor.execute(sql, params)
                        raw.execute("COMMIT", prepare=False)
                else:
                    cursor.execute(sql, params)
                row = cursor.fetchone()
        except DatabaseError as error:
            refused = _refused(error)
            if refused is None:
                raise
            raise guarded[refused].refusal() from None
        for ids, objs in zip(row, waiting):
            for obj, pk in zip(objs, ids):
                obj.pk = pk

    def _run_update(self, update: "_Update") -> None:
        """The plain way (SQLite, or the trick set aside): the ORM's UPDATE, guarded alike."""
        obj = update.obj
        opts = obj._meta
        values = {opts.get_field(name).attname: getattr(obj, opts.get_field(name).attname) for name in update.fields}
        changed = (type(obj)._base_manager.using(self.using).filter(pk=obj.pk, **(update.where or {}))
                   .update(**values))
        if update.where is not None and changed != 1:
            raise update.refusal()


@contextmanager
def pipelined(connection) -> Iterator[None]:
    """On PostgreSQL, the statements sent inside this block travel together (psycopg's
    pipeline mode), and their answers come back as it ends: one round trip for all of them.
    Read the answers after the block: a read inside it asks for them in a round trip of its
    own, and the block's end waits for the server once more.

    Where the block holds the first statements of the outermost atomic block's transaction,
    the transaction is opened here, with them: psycopg, opening it itself inside a pipeline,
    sends its BEGIN alone and waits for it. The driver is told the connection is in
    autocommit (Django's own flag says otherwise) so that it sends no BEGIN of its own until
    the block's atomic ends, which sets the driver's autocommit again as ever; meanwhile
    every statement runs in the transaction opened here, and a rollback or commit by Django
    or by a step's writes ends it as any other."""
    if connection.vendor != "postgresql":
        yield
        return
    raw = connection.connection
    opening = (len(connection.atomic_blocks) == 1 and not connection.needs_rollback and not raw.autocommit
               and raw.info.transaction_status == pq.TransactionStatus.IDLE)
    # The driver's own calls here (and the pipeline's answers, which arrive at its end)
    # raise Django's errors, as every other statement does.
    with connection.wrap_database_errors:
        if opening:
            raw.autocommit = True  # outside the pipeline: inside it, psycopg would sync first
        with raw.pipeline():
            if opening:
                raw.execute("BEGIN", prepare=False)
                rls.open_transaction_scope(connection)
            yield


def _committing(connection):
    """The backend's note that a COMMIT is on its way (`steps.postgresql`)."""
    committing = getattr(connection, "committing", None)
    return committing() if committing is not None else nullcontext()


def _commits_here(connection) -> bool:
    """Whether the open transaction is the outermost atomic block's (no savepoint to roll
    back to) and not already doomed."""
    if connection.vendor != "postgresql" or len(connection.atomic_blocks) != 1 or connection.needs_rollback:
        return False
    # IDLE: the writes are the transaction's first statement too (psycopg sends its BEGIN).
    status = connection.connection.info.transaction_status
    return status in (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


def _refused(error: DatabaseError) -> int | None:
    """The statement index of the guard that raised `error` (its message), if a guard did."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) != STALE_SQLSTATE:
        return None
    return int(cause.diag.message_primary)


class StaleRow(Exception):
    """A guarded update found the row changed since it was read."""


class _Update:
    def __init__(self, obj: Model) -> None:
        self.obj = obj
        self.fields: dict[str, None] = {}  # an ordered set
        self.where: dict[str, Any] | None = None
        self.stale: Exception | None = None

    def refusal(self) -> Exception:
        return self.stale or StaleRow(f"{self.obj._meta.label} {self.obj.pk} was changed meanwhile")


def _update_sql(connection, obj: Model, fields: Iterable[str], where: dict[str, Any]) -> tuple[str, list[Any]]:
    sql, columns, keys = _update_shape(connection.alias, type(obj), tuple(fields), tuple(where))
    values = [getattr(obj, column.attname) for column in columns]
    return sql, _prepared(columns, values, connection) + _prepared(keys, [obj.pk, *where.values()], connection)


def _prepared(columns: list["_Column"], values: list[Any], connection) -> list[Any]:
    return [value if type(value) in column.unchanged else column.prepare(value, connection)
            for column, value in zip(columns, values)]


# The statements' text by their shape, and the fields their values come from: a step writes
# the same few shapes again and again, and composing them (field lookups, quoting) cost more
# than preparing their values.

@lru_cache(maxsize=512)
def _insert_sql(using: str, model: type[Model], with_pk: bool, rows: int, ignore_conflicts: bool) -> tuple[str, list]:
    """INSERT of `rows` rows of VALUES; with 0, of one array a column, unnested: a bulk
    start's thousands of rows in one parameter a column, and a statement that reads the same
    for any number of them (psycopg keeps its parsed form). A step's few rows go faster as
    plain VALUES. Returns it and its columns (`_Column`)."""
    connection = connections[using]
    opts, quote = model._meta, connection.ops.quote_name
    fields = [f for f in opts.concrete_fields if with_pk or not f.primary_key]
    if rows:
        values = "VALUES " + ", ".join(["({})".format(", ".join(["%s"] * len(fields)))] * rows)
    else:
        values = "SELECT * FROM unnest({})".format(", ".join(f"%s::{f.db_type(connection)}[]" for f in fields))
    sql = "INSERT INTO {} ({}) {}{}".format(
        quote(opts.db_table), ", ".join(quote(f.column) for f in fields), values,
        " ON CONFLICT DO NOTHING" if ignore_conflicts else "",
    )
    if not with_pk and not ignore_conflicts:  # skipped rows return no id, as in bulk_create
        sql += f" RETURNING {quote(opts.pk.column)}"
    return sql, [_Column(field) for field in fields]


def _row_values(columns: list["_Column"], obj: Model, connection) -> list[Any]:
    """The values of a row to insert, as the ORM would prepare them (`_Column`)."""
    values = []
    for column in columns:
        value = getattr(obj, column.attname)
        values.append(value if type(value) in column.unchanged else column.prepare(value, connection, obj))
    return values


class _Column:
    """A field of a statement's rows, and how its values are prepared: as the ORM prepares them
    (`get_db_prep_save`, after `pre_save` for an insert), with the answer given at once for
    the values a step writes by the dozen (some seventy of them), which through the fields
    cost more than the statement's text.

    A value of a type the field passes unchanged (`_passes`) is taken as it is. A plain
    integer, an aware datetime, a JSON object or array, of one of Django's own fields of that
    kind, goes straight to the backend's adaptation, the last thing the ORM does with it:
    every step before returns such a value as it is (`pre_save` too, where the field sets
    nothing itself). Anything else takes the ORM's whole way.
    """

    __slots__ = ("field", "attname", "unchanged", "integer", "moment", "document")

    def __init__(self, field) -> None:
        self.field = field
        self.attname = field.attname
        self.unchanged = _passes(field)
        kind = type(field)
        self.integer = field.get_internal_type() if kind in _INTEGERS else None
        self.moment = kind is models.DateTimeField and not (field.auto_now or field.auto_now_add)
        self.document = kind is models.JSONField

    def prepare(self, value: Any, connection, obj: Model | None = None) -> Any:
        """`value` as the field's `get_db_prep_save` gives it; `obj`: the row it is inserted
        with (the ORM asks the field's `pre_save` first)."""
        kind = type(value)
        if kind in self.unchanged:
            return value
        if kind is int and self.integer:
            return connection.ops.adapt_integerfield_value(value, self.integer)
        if kind is datetime and self.moment and value.utcoffset() is not None:
            return connection.ops.adapt_datetimefield_value(value)
        if (kind is dict or kind is list) and self.document:
            return connection.ops.adapt_json_value(value, self.field.encoder)
        if obj is not None:
            value = self.field.pre_save(obj, True)
        return self.field.get_db_prep_save(value, connection)


_AUTO_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)
_INTEGERS = (models.IntegerField, models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
             models.PositiveBigIntegerField, models.PositiveSmallIntegerField)


def _passes(field) -> tuple[type, ...]:
    """The Python types whose values `field` prepares for the database as they are (its
    `get_db_prep_save` returns them unchanged, on PostgreSQL and SQLite): Django's own field
    classes only, since a subclass may prepare its values otherwise. Other integers than
    keys are not among them: the PostgreSQL backend gives them the column's exact type.
    An empty tuple: always prepared."""
    kind = type(field)
    if kind is models.ForeignKey:
        return _passes(field.target_field)
    if kind in (models.CharField, models.TextField):
        return (str, type(None))
    if kind in _AUTO_KEYS:
        return (int, type(None))
    if kind is models.BooleanField:
        return (bool, type(None))
    if kind in _INTEGERS or (kind is models.DateTimeField and not (field.auto_now or field.auto_now_add)):
        return (type(None),)  # a number or an aware datetime is still adapted per backend
    return ()


@lru_cache(maxsize=512)
def _update_shape(using: str, model: type[Model], fields: tuple[str, ...], where: tuple[str, ...]) -> tuple[str, list, list]:
    """UPDATE of `fields` of one row, guarded by the columns `where` names; returns it, the
    columns of its values, and those of its key and guards (`_Column`)."""
    connection = connections[using]
    opts, quote = model._meta, connection.ops.quote_name
    columns = [opts.get_field(name) for name in fields]
    guards = [opts.get_field(name) for name in where]
    # The guard compares null-safely (a column read as NULL must still be NULL), and with an
    # operator no index serves: the row is found by its primary key alone. With `=` the
    # planner may take an index the guard's columns match instead (task_open_atom_idx, of
    # every open task) and filter a scan of every pending task, where statistics are stale.
    same = "IS NOT DISTINCT FROM" if connection.vendor == "postgresql" else "IS"
    sql = "UPDATE {} SET {} WHERE {}".format(
        quote(opts.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in columns),
        " AND ".join([f"{quote(opts.pk.column)} = %s", *(f"{quote(field.column)} {same} %s" for field in guards)]),
    )
    return sql, [_Column(field) for field in columns], [_Column(field) for field in (opts.pk, *guards)]


def cache_step_statement_parsing() -> None:
    """Let psycopg keep the parsed form of a step's statement.

    psycopg parses a statement's `%s` placeholders again at every execution once it is
    longer than 4 KiB or has more than 50 parameters: its cache is sized for ordinary
    statements, against a stream of one-off `IN (...)` lists. A step's single statement is
    both long and wide, and comes in few shapes (by how many tasks and events a step
    writes), so parsing it again cost more than a tenth of a completion. The cache stays
    psycopg's own, bounded at 128 statements.
    """
    try:
        from psycopg import _queries
    except ImportError:  # another driver: nothing to tune
        return
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 64 * 1024)
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 2000)
