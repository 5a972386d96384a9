"""Fields a journey marks sensitive are encrypted in the application, before they are stored.

What is sensitive: the journey's `sensitive` context paths (`borrower.ssn`) and every form
field declared with `sensitive: true` (a top-level context key, and the same key of the task
result). Their values are stored as an envelope `{"enc": "fernet", "kid": ..., "ct": ...}`
in the process context, the task results and the stored idempotent responses; the events
and the Celery messages carry ids and key names, never these values. Plaintext exists only
in memory: the engine core (rules) and system handlers get the revealed context, and the
API reveals it to the users who may see the process.

Keys come from `GNDP_FIELD_KEYS` (Fernet keys, newest first): the first encrypts, any of
them decrypts (MultiFernet), and `manage.py rotate_field_keys` re-encrypts what an older
key wrote. `kid` names the key (a fingerprint, not the key), so the rotation knows what to
re-encrypt without decrypting.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .versions import get_blueprint

SCHEME = "fernet"
SEALED_BODY = "$sealed"  # a stored response encrypted whole (gndp.api.idempotency)


class UndecryptableField(Exception):
    """A sensitive value none of the configured keys can decrypt (its key was removed)."""


# --- keys ---------------------------------------------------------------------------------------

def kid_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def derived_development_key(secret_key: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(b"gndp field key\0" + secret_key.encode()).digest()).decode()


@dataclass(frozen=True)
class Keyring:
    primary_kid: str
    by_kid: Mapping[str, Fernet]
    multi: MultiFernet

    def encrypt(self, plaintext: bytes) -> dict[str, str]:
        return {"enc": SCHEME, "kid": self.primary_kid, "ct": self.by_kid[self.primary_kid].encrypt(plaintext).decode()}

    def decrypt(self, envelope: Mapping[str, str]) -> bytes:
        token = envelope["ct"].encode()
        fernet = self.by_kid.get(envelope["kid"])
        try:
            return fernet.decrypt(token) if fernet is not None else self.multi.decrypt(token)
        except InvalidToken:
            try:
                return self.multi.decrypt(token)
            except InvalidToken:
                raise UndecryptableField(f"no configured key decrypts a value of key {envelope['kid']}") from None

    def rotate(self, envelope: Mapping[str, str]) -> dict[str, str]:
        return self.encrypt(self.decrypt(envelope))


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> Keyring:
    by_kid: dict[str, Fernet] = {}
    for position, key in enumerate(keys):
        try:
            by_kid[kid_of(key)] = Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"GNDP_FIELD_KEYS[{position}] is not a Fernet key (32 url-safe base64-encoded bytes)") from None
    return Keyring(primary_kid=kid_of(keys[0]), by_kid=by_kid, multi=MultiFernet(list(by_kid.values())))


def keyring() -> Keyring:
    keys = tuple(settings.GNDP_FIELD_KEYS) or (derived_development_key(settings.SECRET_KEY),)
    return _keyring(keys)


# --- values -------------------------------------------------------------------------------------

def is_envelope(value: Any) -> bool:
    return (isinstance(value, dict) and value.keys() == {"enc", "kid", "ct"} and value["enc"] == SCHEME
            and isinstance(value["kid"], str) and isinstance(value["ct"], str))


def encrypt_value(value: Any) -> dict[str, str]:
    return keyring().encrypt(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def decrypt_value(envelope: Mapping[str, str]) -> Any:
    return json.loads(keyring().decrypt(envelope))


# Set while a response is built when it revealed plaintext, so the idempotency record of
# that response is stored encrypted too.
_revealed: contextvars.ContextVar[bool] = contextvars.ContextVar("gndp_sensitive_revealed", default=False)


def watch_reveals() -> contextvars.Token:
    return _revealed.set(False)


def revealed_since(token: contextvars.Token) -> bool:
    value = _revealed.get()
    _revealed.reset(token)
    return value


# --- paths --------------------------------------------------------------------------------------

def paths_of_version(version_id: int, journey_id: str) -> tuple[str, ...]:
    """Encrypted paths of every process of a version: those of the whole journey, not only
    of the phase or module a process runs, so a key is sensitive wherever it is written."""
    return get_blueprint(version_id, journey_id).encrypted_paths


def paths_of(process) -> tuple[str, ...]:
    return paths_of_version(process.version_id, process.journey_id)


def _transform(paths: tuple[str, ...], data: Any, change) -> Any:
    if not paths or not isinstance(data, dict):
        return data
    data = copy.copy(data)
    for path in paths:
        *parents, leaf = path.split(".")
        node = data
        for segment in parents:
            child = node.get(segment)
            if not isinstance(child, dict):
                node = None
                break
            node[segment] = child = copy.copy(child)  # copy on write: the caller's dict is left alone
            node = child
        if node is not None and leaf in node:
            node[leaf] = change(node[leaf])
    return data


def seal(paths: tuple[str, ...], data: Any) -> Any:
    """`data` with the value at every path encrypted. The input is always plaintext: a value
    that looks like an envelope is encrypted as it is, never trusted as ciphertext."""
    return _transform(paths, data, encrypt_value)


def reveal(paths: tuple[str, ...], data: Any) -> Any:
    """`data` with every envelope at the paths decrypted, for the engine and the handlers.
    A value no configured key decrypts raises UndecryptableField: the engine fails closed."""
    def change(value: Any) -> Any:
        return decrypt_value(value) if is_envelope(value) else value  # else: written before it was sensitive

    return _transform(paths, data, change)


def reveal_for_reader(paths: tuple[str, ...], data: Any) -> Any:
    """`reveal` for a response to someone allowed to see the process. A value no configured
    key decrypts stays ciphertext; a response that revealed anything is noted, so that its
    idempotency record is stored encrypted (`watch_reveals`)."""
    def change(value: Any) -> Any:
        if not is_envelope(value):
            return value
        try:
            plain = decrypt_value(value)
        except UndecryptableField:
            return value
        _revealed.set(True)
        return plain

    return _transform(paths, data, change)


def rotate(paths: tuple[str, ...], data: Any) -> tuple[Any, int]:
    """`data` with every envelope at the paths that an older key wrote re-encrypted with the
    first key, and how many were."""
    ring = keyring()
    count = 0

    def change(value: Any) -> Any:
        nonlocal count
        if not is_envelope(value) or value["kid"] == ring.primary_kid:
            return value
        count += 1
        return ring.rotate(value)

    return _transform(paths, data, change), count


# --- whole bodies (stored responses) ------------------------------------------------------------

def seal_body(body: Any) -> dict[str, Any]:
    return {SEALED_BODY: encrypt_value(body)}


def is_sealed_body(body: Any) -> bool:
    return isinstance(body, dict) and body.keys() == {SEALED_BODY} and is_envelope(body[SEALED_BODY])


def reveal_body(body: Any) -> Any:
    return decrypt_value(body[SEALED_BODY]) if is_sealed_body(body) else body


def rotate_body(body: Any) -> tuple[Any, int]:
    ring = keyring()
    if not is_sealed_body(body) or body[SEALED_BODY]["kid"] == ring.primary_kid:
        return body, 0
    return {SEALED_BODY: ring.rotate(body[SEALED_BODY])}, 1
