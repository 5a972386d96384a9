"""Background threads that use the database in a process that may fork.

A fork copies the forking thread only, with every lock as it was: a child forked while
another thread was inside a database driver inherits that driver's mutex locked, and waits
for ever on its first connection. The Celery worker's main process forks its pool
processes (at start, and whenever one dies or reaches its task limit) while its heartbeat
thread runs there; a server preloaded before its processes are forked does the same with
its watchdog. Such threads hold `database_use()` while they are in the driver, and every
fork of the process waits for it (an at-fork hook), so no child starts mid-query.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_in_database = threading.Lock()
os.register_at_fork(before=_in_database.acquire, after_in_parent=_in_database.release,
                    after_in_child=_in_database.release)


@contextmanager
def database_use() -> Iterator[None]:
    """Around a background thread's database work (and the closing of its connection)."""
    with _in_database:
        yield
