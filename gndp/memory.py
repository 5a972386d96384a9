"""The server process's garbage collector: what startup built is kept out of its passes.

A full collection walks every object the process holds. After startup that is mostly
Django, DRF, the URLconf and the app's code, hundreds of thousands of objects that live as
long as the process; walking them took 90-135 ms on the API benchmark, a stall of every
request the process was working on, a few times a minute (most of the complete p99).
`gc.freeze()` moves what exists at the end of startup into a permanent generation that no
collection walks; what requests create is collected as ever. A frozen object is still
freed once nothing refers to it; only a reference cycle of frozen objects dropped later
waits for the process to end, and what startup builds lives that long anyway (its leftover
garbage is collected just before the freeze).
"""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Load what the first request would load (the URLconf, and the views and serializers it
    imports), collect what loading left over, and freeze the rest."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # imports every app's URLs and views
    gc.collect()
    gc.freeze()
