"""Token authentication with the token's user read in one hand-written statement.

Every API request authenticates, so DRF's `Token.objects.select_related("user").get(key=...)`
was compiled by the ORM on every request, and the compiling cost several times the query.
The statement here is written once, prepared by the connection after its first runs, and
its row becomes the same `User` instance the ORM would have built. The rules are DRF's: an
unknown key and an inactive user are both refused with 401.
"""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from processes.rows import Columns


@lru_cache(maxsize=None)
def _user_columns() -> Columns:
    return Columns(get_user_model(), "u")


@lru_cache(maxsize=None)
def _token_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    user = _user_columns()
    token_user = Token._meta.get_field("user").column
    return (
        f"SELECT {user.sql(quote)} FROM {quote(Token._meta.db_table)} t"
        f" JOIN {quote(user.model._meta.db_table)} u ON u.{quote(user.model._meta.pk.column)} = t.{quote(token_user)}"
        f" WHERE t.{quote(Token._meta.pk.column)} = %s"
    )


def user_for_token(key: str):
    """The user holding the API token `key`, or None."""
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(connection.vendor), [key])
        row = cursor.fetchone()
    return None if row is None else _user_columns().read(row, connection.alias)


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, one prepared statement a request."""

    def authenticate_credentials(self, key):
        user = user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # request.auth is the Token, as with DRF's own class (its `created` is not read).
        return user, Token(key=key, user=user)
