"""Sign-in lockout: repeated failed sign-ins for one user name from one address lock that
pair out for a while (ASVS 2.4.1 / 6.3.1, anti-automation at the authentication layer).

The check sits in the authentication backend, so every password sign-in is covered: the
sign-in page, the admin's and any later one that calls `authenticate()`. Failures are
counted per (user name, client address) in the "login" cache, shared by every server
process through Redis when REDIS_URL is set. While Redis is down the lockout is off and
sign-in keeps working (a Redis outage degrades notifications only, never sign-in); the
warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.core.exceptions import PermissionDenied

log = logging.getLogger(__name__)

LOCKED_CODE = "locked_out"


def _cache():
    return caches["login"]


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _key(kind: str, username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().casefold()}\0{address}".encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def locked_for(username: str | None, request) -> int:
    """Seconds left of this user name's lockout from this address; 0 when not locked out."""
    if not username:
        return 0
    try:
        until = _cache().get(_key("lock", username, client_address(request)))
    except Exception:  # noqa: BLE001 - see the module docstring: fail open, loudly
        log.warning("login throttle: cache unavailable, lockout not checked", exc_info=True)
        return 0
    return max(0, int(until - time.time()) + 1) if until else 0


def record_failure(username: str | None, request) -> None:
    if not username:
        return
    address = client_address(request)
    window = settings.GNDP_LOGIN_LOCKOUT_SECONDS
    key = _key("fail", username, address)
    try:
        cache = _cache()
        cache.add(key, 0, timeout=window)
        failures = cache.incr(key)
        if failures >= settings.GNDP_LOGIN_FAILURE_LIMIT:
            cache.set(_key("lock", username, address), time.time() + window, timeout=window)
            cache.delete(key)
            log.warning("sign-in locked out for %s seconds after %s failures (user %r, address %s)",
                        window, failures, username, address)
    except Exception:  # noqa: BLE001
        log.warning("login throttle: cache unavailable, failure not counted", exc_info=True)


def record_success(username: str, request) -> None:
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
        if locked_for(username, request):
            # PermissionDenied stops authenticate() from asking any other backend.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if password is not None:
            if user is None:
                record_failure(username, request)
            else:
                record_success(username, request)
        return user


def lockout_message(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return (f"Too many failed sign-ins for this account from your address. "
            f"Sign-in is locked for {minutes} more minute{'s' if minutes != 1 else ''}.")


class _LockoutCheck:
    lockout_message = ""

    def clean(self):
        seconds = locked_for(self.data.get("username"), self.request)
        if seconds:
            self.lockout_message = lockout_message(seconds)
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
