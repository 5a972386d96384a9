"""Token authentication with the token's user read in one hand-written statement.

Every API request authenticates, so DRF's `Token.objects.select_related("user").get(key=...)`
was compiled by the ORM on every request, and the compiling cost several times the query.
The statement here is written once, prepared by the connection after its first runs, and
its row becomes the same `User` instance the ORM would have built. The same statement reads
the user's roles (group names), which nearly every request needs (the inbox, the task
checks) and `tasks.access.roles_of` would otherwise read in a statement of its own. The
rules are DRF's: an unknown key and an inactive user are both refused with 401. The tables
it reads have no row-level security, so it runs in whatever database scope the session holds
(`gndp.rls.no_policy_tables`): setting an anonymous caller's first would cost a round trip.
"""

from __future__ import annotations

import json
from functools import lru_cache

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from gndp import rls
from steps import tricks
from steps.rows import Columns


@lru_cache(maxsize=None)
def _user_columns() -> Columns:
    return Columns(get_user_model(), "u")


@lru_cache(maxsize=None)
def _token_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    user = _user_columns()
    model = user.model
    token_user = Token._meta.get_field("user").column
    groups = model._meta.get_field("groups")
    through = groups.remote_field.through._meta
    group = groups.related_model._meta
    role_names = (
        f"SELECT g.{quote(group.get_field('name').column)} FROM {quote(through.db_table)} ug"
        f" JOIN {quote(group.db_table)} g ON g.{quote(group.pk.column)} = ug.{quote(groups.m2m_reverse_name())}"
        f" WHERE ug.{quote(groups.m2m_column_name())} = u.{quote(model._meta.pk.column)}"
    )
    # An array where the database has them, else a JSON list.
    roles = f"ARRAY({role_names})" if vendor == "postgresql" else f"(SELECT json_group_array(name) FROM ({role_names}))"
    return (
        f"SELECT {user.sql(quote)}, {roles} FROM {quote(Token._meta.db_table)} t"
        f" JOIN {quote(model._meta.db_table)} u ON u.{quote(model._meta.pk.column)} = t.{quote(token_user)}"
        f" WHERE t.{quote(Token._meta.pk.column)} = %s"
    )


def user_for_token(key: str):
    """The user holding the API token `key`, with its roles read, or None."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up again
    with rls.no_policy_tables(), db.cursor() as cursor:
        cursor.execute(_token_sql(db.vendor), [key])
        row = cursor.fetchone()
    if row is None:
        return None
    *columns, roles = row
    user = _user_columns().read(columns, db)
    user._workflow_roles = sorted(roles if isinstance(roles, list) else json.loads(roles))
    return user


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, one prepared statement a request."""

    def authenticate_credentials(self, key):
        if not tricks.on("token_auth"):
            return super().authenticate_credentials(key)
        user = user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # request.auth is the Token, as with DRF's own class (its `created` is not read).
        return user, Token(key=key, user=user)
