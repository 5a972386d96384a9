"""The moves a process's status may make, declared once: every service changes a process's
status by naming one of them (`steps.transaction.Step.move_process`), which refuses a move
the process's status does not allow.

    running ──suspend──▶ suspended ──resume──▶ running
       ├──fail──▶ failed ──retry──▶ running       (an incident; an administrator's retry)
       ├──complete──▶ completed
       └──abort──▶ aborted ◀──abort── pending, suspended, failed
"""

from __future__ import annotations

from typing import Final, Mapping, NamedTuple

from .errors import Conflict
from .models import ProcessStatus

PENDING, RUNNING, SUSPENDED, COMPLETED, FAILED, ABORTED = (
    ProcessStatus.PENDING, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED, ProcessStatus.COMPLETED,
    ProcessStatus.FAILED, ProcessStatus.ABORTED)


class Move(NamedTuple):
    sources: frozenset[str]
    target: str


MOVES: Final[Mapping[str, Move]] = {
    "suspend": Move(frozenset({RUNNING}), SUSPENDED),
    "resume": Move(frozenset({SUSPENDED}), RUNNING),
    "fail": Move(frozenset({RUNNING}), FAILED),
    "retry": Move(frozenset({FAILED}), RUNNING),
    "complete": Move(frozenset({PENDING, RUNNING}), COMPLETED),
    "abort": Move(frozenset({PENDING, RUNNING, SUSPENDED, FAILED}), ABORTED),
}


def target_of(status: str, move: str) -> str:
    """The status `move` leads to from `status`; 409 `invalid_state` where it may not be made."""
    allowed = MOVES[move]
    if status not in allowed.sources:
        raise Conflict(f"cannot {move} a {status} process", details={"status": status}, code="invalid_state")
    return allowed.target
