"""REST endpoints under /api/simulation/: dry runs, validation, coverage, prediction.

Views parse, call a function of processes.simulation / validation / prediction, and
return its dict; the serializers below describe those dicts for the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gndp.api.validation import validated

from . import prediction, selectors, simulation, validation
from .engine.rules import json_problems
from .errors import InvalidInput

ID_REGEX = r"^[a-z0-9][a-z0-9._-]{0,99}$"
TAGS = ["simulation"]


def _edge_ref(name: str, **extra: serializers.Field) -> type[serializers.Serializer]:
    # `from` is a Python keyword, so these serializers are built from a dict of fields.
    fields = {"from": serializers.CharField(), "to": serializers.CharField(), **extra}
    return type(name, (serializers.Serializer,), {**fields, "__module__": __name__})


# --- requests ------------------------------------------------------------------------------------


class AtomResultField(serializers.JSONField):
    """A step's result: an object, or for a step in a rework loop a list of them (the n-th
    completion takes the n-th, the last repeats)."""

    def to_internal_value(self, data):
        if isinstance(data, dict) or (isinstance(data, list) and data and all(isinstance(item, dict) for item in data)):
            return data
        raise serializers.ValidationError("must be a JSON object, or a non-empty list of JSON objects")


class TestJourneyRequestSerializer(serializers.Serializer):
    __test__ = False  # not a pytest test class, whatever its name

    journey_id = serializers.RegexField(ID_REGEX, help_text="A journey, phase or module id.")
    context = serializers.DictField(required=False, default=dict, help_text="The initial process context.")
    results = serializers.DictField(
        child=AtomResultField(), required=False, default=dict,
        help_text="Atom id -> the result that step returns (a system atom's handler result comes first); "
                  "for a step in a rework loop, a list: the n-th completion takes the n-th, the last repeats.",
    )


class CoverageCaseSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    context = serializers.DictField(required=False, default=dict)
    results = serializers.DictField(child=AtomResultField(), required=False, default=dict)


class CoverageRequestSerializer(serializers.Serializer):
    journey_id = serializers.RegexField(ID_REGEX, help_text="A journey, phase or module id.")
    cases = CoverageCaseSerializer(many=True, min_length=1, max_length=simulation.MAX_COVERAGE_CASES)


class PredictQuerySerializer(serializers.Serializer):
    journey_id = serializers.RegexField(ID_REGEX, required=False)
    process_id = serializers.IntegerField(required=False, min_value=1)
    runs = serializers.IntegerField(required=False, min_value=1, max_value=prediction.MAX_RUNS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("journey_id" in attrs) == ("process_id" in attrs):
            raise serializers.ValidationError({"journey_id": "give journey_id or process_id (one of them)"})
        return attrs


# --- responses (documentation) ------------------------------------------------------------------


FiredEdgeSerializer = _edge_ref("SimulationFiredEdge")


class RuleExplanationSerializer(serializers.Serializer):
    rule_id = serializers.CharField(allow_null=True, help_text="null for an inline condition")
    held = serializers.BooleanField()
    field = serializers.CharField(required=False, help_text="a leaf: the context path it reads")
    operator = serializers.CharField(required=False)
    expected = serializers.JSONField(required=False)
    actual = serializers.JSONField(required=False, help_text="'[redacted]' for a sensitive field")
    present = serializers.BooleanField(required=False)
    all = serializers.ListField(child=serializers.DictField(), required=False, help_text="a group: its children")
    any = serializers.ListField(child=serializers.DictField(), required=False)
    # `not` is a keyword too; a group {"not": {...}, "held"} is described in the docs.


DecisionSerializer = _edge_ref(
    "SimulationDecision",
    atom=serializers.CharField(help_text="the completed atom whose edges were decided"),
    edge=serializers.CharField(help_text="its place in the journey file, e.g. edges[5]"),
    kind=serializers.ChoiceField(choices=["conditional", "default", "unconditional"]),
    fired=serializers.BooleanField(),
    reason=serializers.CharField(),
    rules=RuleExplanationSerializer(many=True, required=False, help_text="conditional edges: each rule, explained"),
)


class TestJourneyResponseSerializer(serializers.Serializer):
    __test__ = False

    journey_id = serializers.CharField()
    version = serializers.IntegerField()
    success = serializers.BooleanField()
    visited_atoms = serializers.ListField(child=serializers.CharField(), help_text="in completion order")
    skipped_atoms = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(child=serializers.CharField())
    predicted_duration = serializers.CharField(allow_null=True, help_text="ISO 8601 critical path of this path")
    decisions = DecisionSerializer(many=True)
    fired_edges = FiredEdgeSerializer(many=True)


class ValidationReportSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField()


class AtomShareSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    covered = serializers.ListField(child=serializers.CharField())
    uncovered = serializers.ListField(child=serializers.CharField())
    ratio = serializers.FloatField()


class EdgeShareSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    covered = FiredEdgeSerializer(many=True)
    uncovered = FiredEdgeSerializer(many=True)
    ratio = serializers.FloatField()


BranchSerializer = _edge_ref(
    "CoverageBranch",
    edge=serializers.CharField(),
    kind=serializers.ChoiceField(choices=["conditional", "default"]),
    fired=serializers.IntegerField(help_text="cases in which it fired"),
    not_fired=serializers.IntegerField(help_text="cases in which its source completed and it did not fire"),
    complete=serializers.BooleanField(help_text="both outcomes seen"),
)


class CoverageCaseResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    success = serializers.BooleanField()
    visited_atoms = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(child=serializers.CharField())


class CoverageResponseSerializer(serializers.Serializer):
    journey_id = serializers.CharField()
    version = serializers.IntegerField()
    atoms = AtomShareSerializer()
    edges = EdgeShareSerializer()
    branches = BranchSerializer(many=True)
    cases = CoverageCaseResultSerializer(many=True)


class MonteCarloSerializer(serializers.Serializer):
    runs = serializers.IntegerField()
    p50 = serializers.CharField(help_text="ISO 8601")
    p90 = serializers.CharField()
    mean = serializers.CharField()
    p50_seconds = serializers.FloatField()
    p90_seconds = serializers.FloatField()
    mean_seconds = serializers.FloatField()
    source = serializers.ChoiceField(choices=["history", "sla", "mixed"], help_text="where durations came from")
    sla_target = serializers.CharField(allow_null=True, help_text="the journey's target")
    within_target = serializers.FloatField(allow_null=True, help_text="share of runs within the target")
    visit_probability = serializers.DictField(child=serializers.FloatField())
    atoms = serializers.DictField(child=serializers.DictField())


class WorkflowPredictionSerializer(MonteCarloSerializer):
    journey_id = serializers.CharField()
    version = serializers.IntegerField()


class ProcessPredictionSerializer(serializers.Serializer):
    process_id = serializers.IntegerField()
    journey_id = serializers.CharField()
    status = serializers.CharField()
    deadline = serializers.DateTimeField(allow_null=True, help_text="start + the journey's SLA target")
    predicted_finish = serializers.DateTimeField(allow_null=True, help_text="median")
    predicted_finish_p90 = serializers.DateTimeField(allow_null=True)
    at_risk = serializers.BooleanField()
    prediction = MonteCarloSerializer(allow_null=True, help_text="whole durations, elapsed time included")


# --- views ---------------------------------------------------------------------------------------


def _bounded(value: Any, place: str) -> Any:
    """Contexts and results are user JSON: refuse what is too deep or too large to reason about."""
    problems = json_problems(value, place)
    if problems:
        raise InvalidInput("invalid input", details={place: problems[:5]})
    return value


class TestJourneyView(APIView):
    __test__ = False

    @extend_schema(
        operation_id="simulation_test_journey", tags=TAGS, request=TestJourneyRequestSerializer,
        responses=TestJourneyResponseSerializer,
        summary="Dry-run a workflow: no tasks, no events; the path, every decision and why, the duration",
    )
    def post(self, request):
        data = validated(TestJourneyRequestSerializer, request.data)
        report = simulation.dry_run(
            data["journey_id"], _bounded(data["context"], "context"), _bounded(data["results"], "results")
        )
        return Response(report)


class ValidateWorkflowView(APIView):
    @extend_schema(
        operation_id="simulation_validate_workflow", tags=TAGS, responses=ValidationReportSerializer,
        parameters=[OpenApiParameter("journey_id", str, required=True, description="A journey, phase or module id.")],
        summary="Errors and warnings of the latest version of a workflow",
    )
    def get(self, request):
        journey_id = request.query_params.get("journey_id")
        if not journey_id:
            raise InvalidInput("journey_id is required", details={"journey_id": "required"})
        return Response(validation.validate_workflow(journey_id))


class CoverageView(APIView):
    @extend_schema(
        operation_id="simulation_coverage", tags=TAGS, request=CoverageRequestSerializer,
        responses=CoverageResponseSerializer,
        summary="Which atoms, edges and branches a set of test cases exercises",
    )
    def post(self, request):
        data = validated(CoverageRequestSerializer, request.data)
        cases = [_bounded(case, f"cases[{i}]") for i, case in enumerate(data["cases"])]
        return Response(simulation.coverage_of(data["journey_id"], cases))


class PredictView(APIView):
    @extend_schema(
        operation_id="simulation_predict", tags=TAGS,
        parameters=[
            OpenApiParameter("journey_id", str, description="Predict a new process of this workflow."),
            OpenApiParameter("process_id", int, description="Predict a process you can see, from where it is."),
            OpenApiParameter("runs", int, description=f"Monte Carlo runs (1 to {prediction.MAX_RUNS})."),
        ],
        responses=PolymorphicProxySerializer(
            component_name="Prediction", serializers=[WorkflowPredictionSerializer, ProcessPredictionSerializer],
            resource_type_field_name=None,
        ),
        summary="Monte Carlo cycle time (p50 / p90) of a workflow, or the predicted finish of a process",
    )
    def get(self, request):
        query = validated(PredictQuerySerializer, request.query_params)
        if "process_id" in query:
            process = selectors.process_for(request.user, query["process_id"])
            return Response(prediction.predict_process(process, runs=query.get("runs")))
        return Response(prediction.predict_workflow(query["journey_id"], runs=query.get("runs")))
