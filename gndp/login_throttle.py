"""Sign-in lockout (ASVS 2.4.1 / 6.3.1, anti-automation at the authentication layer), two
locks:

- repeated failed sign-ins for one user name from one client address lock that pair out
  (`GNDP_LOGIN_FAILURE_LIMIT` in `GNDP_LOGIN_LOCKOUT_SECONDS`);
- repeated failures for one user name from any addresses lock the account
  (`GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT` in `GNDP_LOGIN_ACCOUNT_LOCKOUT_SECONDS`), so that an
  attacker with many addresses still gets a bounded number of guesses. The trade-off: anyone
  can lock a victim out for that long by failing on purpose, and while locked even the right
  password is refused (a sign-in that succeeded from the locked state would tell the
  attacker the guess was right).

Both count names whether or not an account has them, so a lockout tells nothing about who
exists. The client address is `gndp.addresses.client_address` (X-Forwarded-For only from
trusted proxies). The check sits in the authentication backend, so every password sign-in is
covered: the sign-in page, the admin's and any later one that calls `authenticate()`.
Failures are counted in the "login" cache, shared by every server process through Redis when
REDIS_URL is set. While Redis is down the lockout is off and sign-in keeps working (a Redis
outage degrades notifications only, never sign-in); the warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.core.exceptions import PermissionDenied

from .addresses import client_address

log = logging.getLogger(__name__)

LOCKED_CODE = "locked_out"
ACCOUNT = ""  # the "address" of the account-wide counters: every address


def _cache():
    return caches["login"]


def _key(kind: str, username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().casefold()}\0{address}".encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


@dataclass(frozen=True)
class Lockout:
    seconds: int  # left
    account: bool  # the whole account, not only from this address


def lockout_of(username: str | None, request) -> Lockout | None:
    """The lockout this sign-in meets, if any: the account's, else the one of its address."""
    if not username:
        return None
    keys = {False: _key("lock", username, client_address(request)), True: _key("lock", username, ACCOUNT)}
    try:
        found = _cache().get_many(list(keys.values()))
    except Exception:  # noqa: BLE001 - see the module docstring: fail open, loudly
        log.warning("login throttle: cache unavailable, lockout not checked", exc_info=True)
        return None
    for account in (True, False):
        until = found.get(keys[account])
        if until and until > time.time():
            return Lockout(max(1, int(until - time.time()) + 1), account)
    return None


def record_failure(username: str | None, request) -> None:
    if not username:
        return
    address = client_address(request)
    try:
        _count(username, address, settings.GNDP_LOGIN_FAILURE_LIMIT, settings.GNDP_LOGIN_LOCKOUT_SECONDS)
        _count(username, ACCOUNT, settings.GNDP_LOGIN_ACCOUNT_FAILURE_LIMIT,
               settings.GNDP_LOGIN_ACCOUNT_LOCKOUT_SECONDS, address=address)
    except Exception:  # noqa: BLE001
        log.warning("login throttle: cache unavailable, failure not counted", exc_info=True)


def _count(username: str, scope: str, limit: int, window: int, *, address: str = "") -> None:
    """One more failure of `username` in `scope` (an address, or ACCOUNT); at `limit` within
    `window` seconds, lock it for `window` seconds."""
    cache = _cache()
    key = _key("fail", username, scope)
    cache.add(key, 0, timeout=window)
    failures = cache.incr(key)
    if failures >= limit:
        cache.set(_key("lock", username, scope), time.time() + window, timeout=window)
        cache.delete(key)
        log.warning("sign-in locked out for %s seconds after %s failures (user %r, %s)", window, failures,
                    username, f"address {scope}" if scope != ACCOUNT else f"every address; the last {address}")


def record_success(username: str, request) -> None:
    """A success forgets the failures from its own address. Those of the account, from
    anywhere, stay counted: they are someone else's guesses as likely as the user's typos."""
    try:
        _cache().delete(_key("fail", username, client_address(request)))
    except Exception:  # noqa: BLE001
        log.warning("login throttle: cache unavailable", exc_info=True)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend, refusing a locked-out (user name, address) pair before the
    password is even checked, and counting its failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            from django.contrib.auth import get_user_model

            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if lockout_of(username, request):
            # PermissionDenied stops authenticate() from asking any other backend.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if password is not None:
            if user is None:
                record_failure(username, request)
            else:
                record_success(username, request)
        return user


def lockout_message(seconds: int, *, account: bool = False) -> str:
    minutes = max(1, -(-seconds // 60))
    whom = "for this account" if account else "for this account from your address"
    return (f"Too many failed sign-ins {whom}. "
            f"Sign-in is locked for {minutes} more minute{'s' if minutes != 1 else ''}.")


class _LockoutCheck:
    lockout_message = ""

    def clean(self):
        lockout = lockout_of(self.data.get("username"), self.request)
        if lockout:
            self.lockout_message = lockout_message(lockout.seconds, account=lockout.account)
            raise forms.ValidationError(self.lockout_message, code=LOCKED_CODE)
        return super().clean()


class ThrottledAuthenticationForm(_LockoutCheck, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(_LockoutCheck, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """The sign-in page: a locked-out attempt gets the lockout message and status 429."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", code=LOCKED_CODE):
            response.status_code = 429
        return response
