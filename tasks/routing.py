"""Choosing who gets a new task: the strategy of its role (`tasks.strategies`), over the
role's available people. Nobody available leaves the task unassigned (`unroutable`).

Lock order. Choosing someone stamps their profile (`last_assigned_at`, the tie-breaker and
the rotation), an UPDATE that locks the profile row until the transaction ends. Stamped as
each task was routed, a step routing two branches took two people's rows in the order of
its atoms, and a bulk start took them by user id: two transactions routing to the same two
people in opposite orders deadlocked. So no routing statement locks a profile: on
PostgreSQL the choices of a transaction are noted in a setting of the transaction
(`gndp.route_stamps`), which the transaction's later routing statements read as the
people's newest stamps, and the profiles are stamped once, at the end, with the step's other
writes, by one statement that locks them in user id order (`stamp_assignments`), the order
the bulk path's stamps take too. Every transaction takes its rows in the same global order:
process rows (by id), then task rows, then profile rows (by user id). SQLite runs one writer
at a time and has no lock order to keep: there a choice is stamped at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from steps.rows import maker
from steps.writes import NEXT_IDS, Writes

from .models import OPEN_TASK_STATUSES, Profile, TaskInstance
from .strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class Route:
    assignee: object | None  # a user, or None for the role's queue
    unroutable: bool = False
    task_id: int | None = None  # the new task's id, when the routing statement drew it
    stamp_at: object | None = None  # the assignee's stamp, still to write (`stamp_assignments`)


def candidates(role: str):
    """Active, available members of the role (a user without a profile is available)."""
    User = get_user_model()
    return User.objects.filter(groups__name=role, is_active=True).exclude(workflow_profile__available=False)


def choose(role: str, strategy: str, when, *, closing: int | None = None) -> Route:
    """Pick the assignee of a new task of `role`, and note the assignment, in one statement.
    `closing`: a task that the same transaction is closing, not yet in the database."""
    if not role:
        return Route(None, unroutable=True)
    if STRATEGIES[strategy].queues:
        return Route(None, unroutable=not candidates(role).exists())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            send_pick(cursor, role, strategy, when, closing=closing)
            return read_pick(cursor, when)
    chosen = _pick(role, STRATEGIES[strategy], closing)
    if chosen is None:
        return Route(None, unroutable=True)
    note_assignment(chosen, when)
    return Route(chosen)


def _pick(role: str, strategy: Strategy, closing: int | None):
    """The portable query (SQLite), in the same order as `pick_statement`'s."""
    people = candidates(role)
    if strategy.reads_open_tasks:
        people = _with_open_tasks(people, closing)
    order = [*strategy.query_order(), F("workflow_profile__last_assigned_at").asc(nulls_first=True), "pk"]
    return people.order_by(*order).first()


def _with_open_tasks(people, closing: int | None = None):
    """`people` annotated with their open tasks (`open_tasks`), not counting `closing`."""
    open_tasks = (
        TaskInstance.objects.filter(assigned_to=OuterRef("pk"), status__in=OPEN_TASK_STATUSES)
        .exclude(pk=closing or 0).order_by().values("assigned_to").annotate(n=Count("pk")).values("n")
    )
    return people.annotate(open_tasks=Coalesce(Subquery(open_tasks), 0))


def send_pick(cursor, role: str, strategy: str, when, *, closing: int | None = None) -> None:
    """Send the routing statement of PostgreSQL (of a strategy that picks someone); its
    answer is `read_pick`'s. Apart, so that it can travel in another statement's pipeline.
    A statement that counts no open tasks ignores `closing` (psycopg sends only the named
    parameters a statement uses)."""
    cursor.execute(_PICK_SQL[STRATEGIES[strategy]], {"role": role, "when": when, "closing": closing or 0})


def read_pick(cursor, when) -> Route:
    """The answer of `send_pick`'s statement, sent at `when`: the chosen one's stamp is
    still to be written (`stamp_assignments`)."""
    user_id, username, task_id, _noted = cursor.fetchone()
    chosen = maker(get_user_model()).new(pk=user_id, username=username) if user_id else None
    return Route(chosen, unroutable=chosen is None, task_id=task_id, stamp_at=when if chosen else None)


def note_assignment(user, when) -> None:
    """Remember when a person last got a task: the tie-breaker and the rotation."""
    updated = Profile.objects.filter(user=user).update(last_assigned_at=when)
    if not updated:
        Profile.objects.get_or_create(user=user, defaults={"last_assigned_at": when})


def stamp_assignments(stamps: dict[int, object], writes: Writes) -> None:
    """Stamp these people's profiles (user id: when they got a task): on PostgreSQL with the
    step's other `writes`, in one statement that locks the rows in user id order, the one
    order every transaction takes them in (see the module's docstring); elsewhere at once."""
    if not stamps:
        return
    if writes.connection.vendor != "postgresql":
        for user_id in sorted(stamps):
            note_assignment(maker(get_user_model()).new(pk=user_id), stamps[user_id])
        return
    ids = sorted(stamps)
    writes.statement(_STAMP_SQL, [ids, [stamps[user_id] for user_id in ids], ids])


def stamp_routed(writes: Writes) -> None:
    """Stamp the people this transaction's routing statements chose (`gndp.route_stamps`),
    with the step's other `writes`, as `stamp_assignments` does: once a transaction, and with
    no parameters to send (the choices are on the server already). PostgreSQL only."""
    writes.statement(_STAMP_ROUTED_SQL, [], once=True)


def pick_statement(name: str) -> str:
    """The routing statement of the strategy of this name, on PostgreSQL."""
    return _PICK_SQL[STRATEGIES[name]]


def _pick_sql(strategy: Strategy) -> str:
    """The routing query on PostgreSQL: the hot path of every step, so one statement that
    chooses among the role's active, available members and draws the new task's id, which
    the step's other writes refer to (`steps.writes`). It locks no profile: the people
    this transaction chose already count as stamped at the time they were chosen (read from
    `gndp.route_stamps`), and it adds its own choice there for the next."""
    order_by = [term.format(open_tasks=_OPEN_COUNT) for term in strategy.statement_order()]
    User = get_user_model()
    user_table = User._meta.db_table
    groups_table = User.groups.through._meta.db_table
    stamped = "COALESCE((s.stamps ->> u.id::text)::timestamptz, p.last_assigned_at) ASC NULLS FIRST"
    return f"""
        WITH chosen AS (
            SELECT u.id, u.{User.USERNAME_FIELD} AS username, s.stamps
            FROM {user_table} u
            JOIN {groups_table} ug ON ug.user_id = u.id
            JOIN auth_group g ON g.id = ug.group_id
            LEFT JOIN {Profile._meta.db_table} p ON p.user_id = u.id
            CROSS JOIN (SELECT COALESCE(NULLIF(current_setting('{ROUTE_STAMPS}', true), '')::jsonb, '{{}}'::jsonb)
                        AS stamps) s
            WHERE g.name = %(role)s AND u.is_active AND COALESCE(p.available, TRUE)
            ORDER BY {", ".join([*order_by, stamped, "u.id"])}
            LIMIT 1
        )
        SELECT (SELECT id FROM chosen), (SELECT username FROM chosen),
               nextval(pg_get_serial_sequence('{TaskInstance._meta.db_table}', 'id')),
               (SELECT set_config('{ROUTE_STAMPS}', (c.stamps || jsonb_build_object(c.id::text, %(when)s::timestamptz))::text,
                                  true) IS NOT NULL
                FROM chosen c)
    """


# The transaction's choices so far (user id: when), for its later routing statements.
ROUTE_STAMPS = "gndp.route_stamps"
# Locks the profiles in user id order (the sub-select's sort comes before its row locks),
# then stamps them.
_STAMP_SQL = (
    f"UPDATE {Profile._meta.db_table} p SET last_assigned_at = s.stamp_at"
    " FROM unnest(%s::bigint[], %s::timestamptz[]) AS s(user_id, stamp_at)"
    f" WHERE p.user_id = s.user_id AND p.user_id IN (SELECT user_id FROM {Profile._meta.db_table}"
    " WHERE user_id = ANY(%s::bigint[]) ORDER BY user_id FOR UPDATE)"
)
_ROUTED = f"jsonb_each_text(COALESCE(NULLIF(current_setting('{ROUTE_STAMPS}', true), ''), '{{}}')::jsonb)"
_STAMP_ROUTED_SQL = (
    f"UPDATE {Profile._meta.db_table} p SET last_assigned_at = s.value::timestamptz FROM {_ROUTED} AS s"
    f" WHERE p.user_id = s.key::bigint AND p.user_id IN (SELECT user_id FROM {Profile._meta.db_table}"
    f" WHERE user_id IN (SELECT key::bigint FROM {_ROUTED}) ORDER BY user_id FOR UPDATE)"
)


# The statuses are written out, not passed: the planner matches a condition against the
# predicate of the partial index task_open_assignee_idx only when it can read it.
_OPEN_COUNT = (
    f"(SELECT COUNT(*) FROM {TaskInstance._meta.db_table} t WHERE t.assigned_to_id = u.id"
    f" AND t.status IN ({', '.join(repr(str(status)) for status in OPEN_TASK_STATUSES)})"
    " AND t.id <> %(closing)s)"
)


class _Statements(dict):
    """Each strategy's routing statement, written the first time it routes. Keyed by the
    strategy itself, not its name: a name registered again gets its own statement."""

    def __missing__(self, strategy: Strategy) -> str:
        statement = self[strategy] = _pick_sql(strategy)
        return statement


_PICK_SQL = _Statements()


class BatchRouter:
    """Routing for many new tasks in one transaction (a bulk start), decided in memory.

    The per-task statement counts open tasks in the database, where the tasks created
    earlier in the same batch are not yet (a step's writes go out together), so it would
    hand the whole batch to one person. Here each role's members are read once, with their
    open tasks and when they last got one, and every choice updates those counts: the
    strategies rank them by their `memory_rank`, the tie-breaks are `choose`'s. `stamp`
    writes the profiles' last assignment at the end; new tasks' ids are drawn in blocks
    (`task_id`).
    """

    ID_BLOCK = 500

    def __init__(self) -> None:
        self._members: dict[str, list[list]] = {}  # role -> [open tasks, last assigned, id, user]
        self._stamps: dict[int, object] = {}
        self._ids: list[int] = []

    def choose(self, role: str, strategy: str, when, *, closing: int | None = None) -> Route:
        if not role:
            return Route(None, unroutable=True)
        members = self._members_of(role)
        rank = STRATEGIES[strategy]
        if rank.queues or not members:
            return Route(None, unroutable=not members)
        never = when.replace(year=1)  # before anyone's last assignment: NULLS FIRST
        chosen = min(members, key=lambda m: (*rank.memory_rank(m[0], m[3]), m[1] or never, m[2]))
        # Later choices of this batch come after this one, in the order they are made.
        stamp = max([when, *(m[1] for m in members if m[1] is not None)]) + timedelta(microseconds=1)
        for member in self._all_entries(chosen[2]):
            member[0] += 1
            member[1] = stamp
        self._stamps[chosen[2]] = stamp
        return Route(chosen[3], task_id=self.task_id())

    def task_id(self) -> int | None:
        """A new task's id, from a block drawn in one statement on PostgreSQL (elsewhere
        the insert draws them)."""
        if connection.vendor != "postgresql":
            return None
        if not self._ids:
            with connection.cursor() as cursor:
                cursor.execute(NEXT_IDS, [TaskInstance._meta.db_table, TaskInstance._meta.pk.column, self.ID_BLOCK])
                self._ids = [row[0] for row in cursor.fetchall()][::-1]
        return self._ids.pop()

    def stamp(self) -> None:
        """Write when each chosen person last got a task (the tie-breaker, the rotation): one
        statement, its rows in user id order, so that it locks them in the order every
        transaction takes profile rows in (see the module's docstring)."""
        Profile.objects.bulk_create(
            [Profile(user_id=user_id, last_assigned_at=when) for user_id, when in sorted(self._stamps.items())],
            update_conflicts=True, unique_fields=["user"], update_fields=["last_assigned_at"],
        )
        self._stamps.clear()

    def _members_of(self, role: str) -> list[list]:
        if role not in self._members:
            rows = _with_open_tasks(candidates(role)).annotate(last=F("workflow_profile__last_assigned_at"))
            self._members[role] = [[user.open_tasks, user.last, user.pk, user] for user in rows]
        return self._members[role]

    def _all_entries(self, user_id: int) -> list[list]:
        # A person in several roles has an entry in each: their counts move together.
        return [m for members in self._members.values() for m in members if m[2] == user_id]
