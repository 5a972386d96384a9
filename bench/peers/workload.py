"""The shared workload of the peer comparison: a 12-step loan journey.

Standard library only: every runner imports it, each from its own virtualenv.

    submit -> credit pull (system) -> credit branch:
        score >= 620: automatic credit clearance (system)
        otherwise:    manual credit review (human)
    -> [parallel] appraisal | title search | income verification
    -> [join] underwriting -> approval -> disclosure -> closing -> funding

Twelve steps are defined and each instance runs eleven of them: the credit pull gives
760 to even applicant numbers and 580 to odd ones, so half of the instances take each arm
of the branch. A "task" in the figures is one executed step, human or system, so every
engine is credited with the same 11 tasks per instance whatever it does internally
(gateways, joins and start/end events are not counted).
"""

from __future__ import annotations

import statistics
from typing import Any

THRESHOLD = 620
HIGH_SCORE = 760
LOW_SCORE = 580

# (step, kind, who does it, what completing it supplies). Order is the journey's order.
STEPS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("submit", "human", "officer", {"loan_amount": 250000}),  # plus applicant_no, per instance
    ("credit_pull", "system", "", {}),
    ("auto_clear", "system", "", {}),
    ("manual_review", "human", "underwriter", {"review_decision": "approve"}),
    ("appraisal", "human", "processor", {"appraised_value": 310000}),
    ("title_search", "human", "processor", {"title_clear": True}),
    ("income_verification", "human", "processor", {"income_verified": True}),
    ("underwriting", "human", "underwriter", {"underwriting_ok": True}),
    ("approval", "human", "underwriter", {"approved": True}),
    ("disclosure", "human", "closer", {"disclosure_sent": True}),
    ("closing", "human", "closer", {"closed": True}),
    ("funding", "human", "closer", {"funded": True}),
]
KIND = {step: kind for step, kind, _, _ in STEPS}
PERFORMER = {step: who for step, _, who, _ in STEPS}
HUMAN_STEPS = [step for step, kind, _, _ in STEPS if kind == "human"]
TASKS_PER_INSTANCE = len(STEPS) - 1  # one arm of the credit branch is skipped
USERS = ("officer", "underwriter", "processor", "closer")


def result_for(step: str, applicant_no: int) -> dict[str, Any]:
    """What a person enters to complete `step` of instance `applicant_no`."""
    result = dict(next(result for name, _, _, result in STEPS if name == step))
    if step == "submit":
        result["applicant_no"] = applicant_no
    return result


def credit_score(applicant_no: int) -> int:
    """The credit bureau stub: half of the applicants score above the threshold."""
    return HIGH_SCORE if applicant_no % 2 == 0 else LOW_SCORE


def expected_arm(applicant_no: int) -> str:
    return "auto_clear" if credit_score(applicant_no) >= THRESHOLD else "manual_review"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(*, engine: str, instances: int, seconds: float, wall_seconds: float, cpu_seconds: float,
            latencies_ms: list[float], arms: dict[str, int], **extra: Any) -> dict[str, Any]:
    """The JSON line every runner prints. `cpu_seconds`: the CPU of the thread that made the
    timed calls, during them; the rest of their time it waited (on the database, or on
    another thread of its process)."""
    tasks = instances * TASKS_PER_INSTANCE
    return {
        "engine": engine,
        "instances": instances,
        "tasks": tasks,
        "tasks_per_s": round(tasks / seconds, 1),
        "cpu_ms_per_task": round(cpu_seconds / tasks * 1000, 3),
        "wait_ms_per_task": round((seconds - cpu_seconds) / tasks * 1000, 3),
        "seconds": round(seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        "calls": len(latencies_ms),
        "call_p50_ms": round(statistics.median(latencies_ms), 2),
        "call_p95_ms": round(percentile(latencies_ms, 0.95), 2),
        "call_p99_ms": round(percentile(latencies_ms, 0.99), 2),
        "arms": arms,
        **extra,
    }
