"""The SECRET_KEY of a machine that sets none: generated once into the var folder, kept.

Django signs sessions, CSRF tokens and password-reset links with SECRET_KEY, and
GNDP_FIELD_KEYS falls back to a key derived from it. A default written in the source is
public, so anyone could forge a session for it. Unset, a random key is made on first use
and stored (mode 0600) next to the embedded database, so `make run` works and stays signed
in across restarts; every process of one machine (server and worker) reads the same file.
A deployment with more than one machine must set SECRET_KEY itself: `check --deploy` says
so (gndp.W002).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

FILE_NAME = "secret_key"


def generated_secret_key(var_dir: Path) -> str:
    """The key stored in `var_dir`, made now if there is none.

    Written to a temporary file and linked into place, so a process that starts at the
    same moment (the worker beside the server) either sees no file or the whole key,
    and of two that race to make one, both end up with the one that was linked first.
    """
    path = var_dir / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    temporary = var_dir / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(64) + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink()
    return _read(path)


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"{path} holds no usable secret key: delete it to have a new one made")
    return key
