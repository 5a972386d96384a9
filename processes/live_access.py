"""Who may keep listening on a WebSocket, and the messages that make open sockets check it.

A socket is authenticated once, at its handshake, by its session. Everything that can end
that session or narrow what its user may see afterwards tells the user's open sockets (the
group `user.{id}` every socket of the user joins) to check again, right after its commit:

- the session ends: a sign-out (`user_logged_out`), or its row deleted (a flush, the admin)
  before it expired; only the sockets of that session close;
- the account changes: made inactive, a new password (which invalidates the other sessions),
  superuser or staff status, permissions of its own or of its groups, its roles (the
  inbox's role groups follow them);
- a manager changes: the old and the new manager re-check (their team and what they see);
- a process's object permission is taken away.

These are Django's own signals on Django's own models (auth, sessions, guardian), which the
admin changes without going through our services: the only place to hear of it. Changes
the engine makes (a task moved or claimed) travel with their events instead (the `recheck`
mark of `processes.live.messages_for`), and a socket re-checks at least every
`GNDP_SOCKET_RECHECK_SECONDS` while it delivers, and when its session's expiry passes, for
what none of these hear (a row deleted by hand, a cache-backed session engine).
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import import_module
from typing import Iterable

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from tasks.models import Profile

from .background import Drain
from .live import listened_groups, run_for_listeners, user_group
from .models import ProcessUserObjectPermission

log = logging.getLogger(__name__)

RECHECK = "access.recheck"
# The account fields whose change can end a session or narrow what it may see.
ACCOUNT_FIELDS = frozenset({"password", "is_active", "is_superuser", "is_staff"})


# --- the check ---------------------------------------------------------------------------

def signed_in_user(session_key: str | None):
    """(the user the session still signs in, fresh from the database, or None; when the
    session expires, as a timestamp, where the session engine keeps it in the database).

    Django's own rules (`django.contrib.auth.get_user`): the session exists and has not
    expired, names a configured backend, that backend still returns the user (an inactive
    one it does not), and the session's hash of the password still matches. Unlike
    `get_user` it never writes: a socket's check must not flush or re-key the browser's
    session."""
    if not session_key:
        return None, None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    expires_at = None
    read_row = getattr(store, "_get_session_from_db", None)  # the db and cached_db engines
    if read_row is not None:
        row = read_row()  # None when deleted or expired
        if row is None:
            return None, None
        data = store.decode(row.session_data)
        expires_at = row.expire_date.timestamp()
    else:
        data = store.load()
    try:
        user_id = get_user_model()._meta.pk.to_python(data[SESSION_KEY])
        backend_path = data[BACKEND_SESSION_KEY]
    except (KeyError, ValueError):
        return None, None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None, None
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return None, None
    if hasattr(user, "get_session_auth_hash"):
        session_hash = data.get(HASH_SESSION_KEY) or ""
        hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
        if not session_hash or not any(constant_time_compare(session_hash, known) for known in hashes):
            return None, None
    return user, expires_at


# --- telling open sockets ----------------------------------------------------------------

def tell(user_ids: Iterable[int | None], **message) -> None:
    """After the commit: the open sockets of these users re-check (`message` may narrow it
    to one session, `session_key`, or end that session outright, `ended`). With Redis the
    message leaves from a background thread, in order, as events do (`processes.live`)."""
    ids = sorted({user_id for user_id in user_ids if user_id})
    if ids:
        transaction.on_commit(partial(_send, ids, {"type": RECHECK, **message}), robust=True)


def _send(user_ids: list[int], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        _deliver([(user_ids, message)])  # one process: its listeners' loop (processes.live)
    else:
        _teller.put([(user_ids, message)])  # never holds up the commit on a round trip to Redis


def _deliver(items: list[tuple[list[int], dict]]) -> None:
    """Send each message to the groups of its users that somebody listens to."""
    layer = get_channel_layer()
    try:
        heard = listened_groups(layer, {user_group(user_id) for user_ids, _ in items for user_id in user_ids})
        pairs = [(user_group(user_id), message) for user_ids, message in items for user_id in user_ids
                 if user_group(user_id) in heard]
        if pairs:
            run_for_listeners(layer, _send_all, layer, pairs)
    except Exception:  # noqa: BLE001 - with the layer down no socket hears anything either
        log.warning("could not tell %d users' sockets to re-check their access", len(items), exc_info=True)


async def _send_all(layer, pairs: list[tuple[str, dict]]) -> None:
    for group, message in pairs:  # in order: a session's end before anything after it
        await layer.group_send(group, message)


_teller = Drain("access", _deliver)


# --- what tells them ---------------------------------------------------------------------

def _signed_out(sender, request, user, **kwargs) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        tell([user.pk], session_key=session_key, ended=True)


def _session_deleted(sender, instance, **kwargs) -> None:
    # An expired session's sockets close at its expiry on their own (and clearing expired
    # sessions deletes many at once): only a live session's deletion needs telling.
    if instance.expire_date <= timezone.now():
        return
    try:
        user_id = instance.get_decoded().get(SESSION_KEY)
    except Exception:  # noqa: BLE001 - an undecodable session signs nobody in
        return
    if user_id:
        tell([int(user_id)], session_key=instance.session_key, ended=True)


def _account_saved(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    if created or raw:
        return
    if update_fields is not None and not ACCOUNT_FIELDS & set(update_fields):
        return  # e.g. last_login, stamped at every sign-in
    tell([instance.pk])


def _account_relations_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user's roles or permissions, changed from either side of the relation
    (`user.groups.add(group)` or `group.user_set.add(user)`)."""
    if action == "pre_clear" and reverse:  # who is in it, before it is emptied
        instance._access_cleared = list(instance.user_set.values_list("pk", flat=True))
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        tell([instance.pk])
    elif action == "post_clear":
        tell(getattr(instance, "_access_cleared", []))
    else:
        tell(pk_set or [])


def _group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A role's permissions: every member re-checks."""
    if action not in ("post_add", "post_remove", "post_clear") or (reverse and action == "post_clear"):
        return
    group_ids = list(pk_set or []) if reverse else [instance.pk]
    tell(get_user_model().objects.filter(groups__pk__in=group_ids).values_list("pk", flat=True))


def _profile_saving(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    instance._access_old_manager = (type(instance).objects.filter(pk=instance.pk)
                                    .values_list("manager_id", flat=True).first())


def _profile_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    old = getattr(instance, "_access_old_manager", None)
    if created or old != instance.manager_id:
        tell([old, instance.manager_id])


def _process_permission_deleted(sender, instance, **kwargs) -> None:
    tell([instance.user_id])


def connect_signals() -> None:
    """Called once, from `ProcessesConfig.ready`."""
    User = get_user_model()
    user_logged_out.connect(_signed_out, dispatch_uid="live_access.signed_out")
    post_delete.connect(_session_deleted, sender=Session, dispatch_uid="live_access.session_deleted")
    post_save.connect(_account_saved, sender=User, dispatch_uid="live_access.account_saved")
    m2m_changed.connect(_account_relations_changed, sender=User.groups.through,
                        dispatch_uid="live_access.groups_changed")
    m2m_changed.connect(_account_relations_changed, sender=User.user_permissions.through,
                        dispatch_uid="live_access.user_permissions_changed")
    m2m_changed.connect(_group_permissions_changed, sender=Group.permissions.through,
                        dispatch_uid="live_access.group_permissions_changed")
    pre_save.connect(_profile_saving, sender=Profile, dispatch_uid="live_access.profile_saving")
    post_save.connect(_profile_saved, sender=Profile, dispatch_uid="live_access.profile_saved")
    post_delete.connect(_process_permission_deleted, sender=ProcessUserObjectPermission,
                        dispatch_uid="live_access.process_permission_deleted")
