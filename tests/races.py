"""Run an action in many threads released at once: each thread has its own database
connection, so these are real races on the database's locks."""

from __future__ import annotations

import threading
from typing import Callable

from django.db import connection


def race(n: int, action: Callable[[int], object]) -> list[object]:
    """`action(i)` in n threads at once; each outcome is its value or the exception it raised."""
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = action(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test asserts on
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
