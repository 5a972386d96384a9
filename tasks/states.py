"""The moves a task's status may make, declared once: every service changes a task's status
by naming one of them to the one writer (`steps.changes.change_task(task, move=...)`),
which refuses a move the task's status does not allow.

    pending ──claim──▶ in_progress ──complete──▶ completed
       │  └──────────────complete──────────────▶ (the implicit claim of a completion)
       ├──fail──▶ failed ──retry──▶ pending        (a system step out of retries; its retry)
       │            └──release──▶ completed         (a completion a loop's limit held; its retry)
       └──cancel─▶ cancelled ◀──cancel── in_progress, failed   (abort)
"""

from __future__ import annotations

from typing import Final, Mapping, NamedTuple

from processes.errors import Conflict

from .models import TaskStatus

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = (
    TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Move(NamedTuple):
    sources: frozenset[str]
    target: str


MOVES: Final[Mapping[str, Move]] = {
    "claim": Move(frozenset({PENDING}), IN_PROGRESS),
    "complete": Move(frozenset({PENDING, IN_PROGRESS}), COMPLETED),
    "fail": Move(frozenset({PENDING, IN_PROGRESS}), FAILED),
    "retry": Move(frozenset({FAILED}), PENDING),
    "cancel": Move(frozenset({PENDING, IN_PROGRESS, FAILED}), CANCELLED),
    # A completion held by a rework loop's `loop_limit` incident, let through by a retry.
    "release": Move(frozenset({FAILED}), COMPLETED),
}


def target_of(status: str, move: str, *, task_id: int | None = None) -> str:
    """The status `move` leads to from `status`; 409 `invalid_state` where it may not be made."""
    allowed = MOVES[move]
    if status not in allowed.sources:
        raise Conflict(f"task {task_id} is {status}", details={"status": status}, code="invalid_state")
    return allowed.target
