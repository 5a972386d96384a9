"""Who the database is talking to: the scope PostgreSQL's row-level security policies read.

Row-level security (policies created by privacy/migrations/0002_row_level_security.py) is a
second wall behind the application's own scoping (tasks.access.visible_tasks and
visible_processes): a query that forgets its filter still cannot read another person's
process, task or event. The policies read two settings of the database session:

- `gndp.scope`: `engine` sees every row; `user` (or nothing at all) sees only the rows of
  `gndp.user_id`, by the same rules as tasks.access. A session that sets neither, such as
  a `psql` session as the app role, sees nothing: fail closed.
- `gndp.user_id`: the user whose rows are visible in the `user` scope.

Where each scope comes from (`install`, a wrapper on every PostgreSQL connection):

- A request runs in its user's scope (`RowLevelSecurityMiddleware`), from the user that
  signed in or, for the API, the user DRF authenticated. The reads of views, selectors and
  templates run outside transactions (ATOMIC_REQUESTS stays off), as session settings.
- Every transaction is the engine's (`SET LOCAL gndp.scope = 'engine'` at its first
  statement): services own one transaction each, and they must lock, route and join over
  rows the caller cannot see (least-busy routing counts everybody's open tasks). Access to
  what a service acts on is checked by the application before it is called (404 on a
  foreign id). When the transaction ends, the request's user scope is back.
- The API token's lookup reads only tables without policies: it runs in whatever scope the
  session holds (`no_policy_tables`), before the request's user is known.
- Everything outside a request (Celery jobs, the SLA sweep, management commands, the
  shell) is the engine. Celery jobs say so explicitly (`task_prerun`), since an eager job
  may run inside a request.

The policies apply to the app role only: superusers (the test suite) and the owner role
that migrates (it owns the tables, which are not FORCEd) are not subject to them. The app
role can itself set `gndp.scope`; the wall is against mistakes in queries, not against SQL
injection (which parameterised queries keep out). SQLite has no row-level security: there
the application's scoping is the only wall.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterator

from django.conf import settings

ENGINE = "engine"
USER = "user"

# None: no scope was set (outside requests): the engine. Else a request, whose user is
# read at each statement (DRF authenticates a token inside the view, after the middleware).
_scope: contextvars.ContextVar[Any] = contextvars.ContextVar("gndp_rls_scope", default=None)


def _wanted() -> tuple[str, str]:
    """(scope, user id) the current code runs under, as the session settings spell them."""
    current = _scope.get()
    if current is None or current == ENGINE:
        return ENGINE, ""
    user = getattr(current, "user", None)  # an HttpRequest
    if user is None or not user.is_authenticated:
        return USER, ""
    return USER, str(user.pk)


@contextmanager
def _holding(variable: contextvars.ContextVar, value: Any) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def engine_scope():
    """The engine's view of every row (jobs, sweeps, commands)."""
    return _holding(_scope, ENGINE)


# Set while a read-only transaction (a report) runs: it keeps the caller's scope.
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("gndp_rls_reading", default=False)


def read_transaction():
    """Transactions opened in this block only read: they keep the caller's scope instead of
    taking the engine's."""
    return _holding(_reading, True)


# Set while statements run that read no table under a policy (the API token's lookup, before
# the request's user is known): whatever scope the session holds serves them, and setting
# the one they would otherwise be given (an anonymous user's) would cost a round trip.
_unscoped: contextvars.ContextVar[bool] = contextvars.ContextVar("gndp_rls_unscoped", default=False)


def no_policy_tables():
    """The statements of this block read only tables without row-level security."""
    return _holding(_unscoped, True)


class RowLevelSecurityMiddleware:
    """Runs each request in its user's database scope. After AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Load the session's user now: resolving it later, inside a statement's wrapper,
        # would run queries from within the wrapper.
        getattr(request, "user", None) and request.user.is_authenticated
        token = _scope.set(request)
        try:
            return self.get_response(request)
        finally:
            _scope.reset(token)


# --- the connection wrapper --------------------------------------------------------------------

_SET_SESSION = "SELECT set_config('gndp.scope', %s, false), set_config('gndp.user_id', %s, false)"
_SET_LOCAL = "SELECT set_config('gndp.scope', %s, true), set_config('gndp.user_id', %s, true)"


def _apply(execute, sql, params, many, context):
    connection = context["connection"]
    raw = connection.connection
    wanted = _wanted()
    session = getattr(connection, "_gndp_rls_session", None)
    if connection.in_atomic_block:
        from psycopg import pq

        # The first statement of a transaction: the engine's scope (a report's: the caller's),
        # for this transaction only.
        if raw.info.transaction_status == pq.TransactionStatus.IDLE:
            _set_transaction_scope(connection)
    elif session != wanted and not _unscoped.get():
        with raw.cursor() as cursor:
            cursor.execute(_SET_SESSION, list(wanted))
        connection._gndp_rls_session = wanted
    return execute(sql, params, many, context)


def open_transaction_scope(connection) -> None:
    """For a transaction opened by hand (`steps.writes.pipelined`): send the scope that
    `_apply` sends with a transaction's first statement, where it would."""
    if _apply in connection.execute_wrappers:
        _set_transaction_scope(connection)


def _set_transaction_scope(connection) -> None:
    target = _wanted() if _reading.get() else (ENGINE, "")
    if getattr(connection, "_gndp_rls_session", None) != target:
        with connection.connection.cursor() as cursor:
            cursor.execute(_SET_LOCAL, list(target))


def _on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql" or not settings.GNDP_RLS:
        return
    # A connection from the pool may carry the last borrower's settings: set them again.
    connection._gndp_rls_session = None
    if _apply not in connection.execute_wrappers:
        connection.execute_wrappers.append(_apply)


def install() -> None:
    from celery.signals import task_postrun, task_prerun
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="gndp.rls")
    task_prerun.connect(_job_started, dispatch_uid="gndp.rls.prerun", weak=False)
    task_postrun.connect(_job_finished, dispatch_uid="gndp.rls.postrun", weak=False)


_job_tokens: dict[str, list[contextvars.Token]] = {}


def _job_started(task_id=None, **kwargs) -> None:
    _job_tokens.setdefault(task_id or "", []).append(_scope.set(ENGINE))


def _job_finished(task_id=None, **kwargs) -> None:
    tokens = _job_tokens.get(task_id or "")
    if tokens:
        token = tokens.pop()
        if not tokens:
            _job_tokens.pop(task_id or "", None)
        try:
            _scope.reset(token)
        except ValueError:  # reset in another context than it was set: leave it
            pass
