from __future__ import annotations

import json

from gndp import json_input
from processes import simulation

from ._base import ServiceCommand


def _json_object(text: str | None, option: str) -> dict:
    if not text:
        return {}
    try:
        value = json_input.loads(text, what=option)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option}: invalid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option}: must be a JSON object")
    return value


class Command(ServiceCommand):
    help = "Run a workflow with the engine core and no side effects; print the outcome as JSON."

    def add_arguments(self, parser):
        parser.add_argument("workflow_id")
        parser.add_argument("--context", help="initial context, a JSON object")
        parser.add_argument("--results", help="JSON object: atom id -> that step's result (for a step in a loop, "
                                              "a list: the n-th completion takes the n-th, the last repeats)")

    def handle(self, *args, workflow_id, context, results, **options):
        try:
            ctx = _json_object(context, "--context")
            res = _json_object(results, "--results")
        except ValueError as exc:
            self.fail(str(exc))
        if not all(isinstance(value, dict) or (isinstance(value, list) and value
                       and all(isinstance(item, dict) for item in value)) for value in res.values()):
            self.fail("--results: every value must be a JSON object, or a list of them for a step in a loop")
        outcome = simulation.simulate_workflow(workflow_id, ctx, res)
        self.stdout.write(json.dumps(outcome.as_dict()))
        if not outcome.success:
            raise SystemExit(1)
