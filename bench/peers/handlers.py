"""The system handler of the peer comparison's credit pull (a credit bureau stub).

Registered when this module is listed in GNDP_HANDLER_MODULES, which bench/peers/run_ours.py
sets before Django starts.
"""

from __future__ import annotations

from typing import Any, Mapping

from processes.handlers import register

from .workload import credit_score


@register("loan_credit_pull")
def loan_credit_pull(context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    return {"credit_score": credit_score(int(context["applicant_no"]))}
