"""The monitoring API's query parameters, and its response shapes (for the OpenAPI schema:
the views return the selectors' dicts as they are)."""

from __future__ import annotations

import re
from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gndp.api.pagination import MAX_OFFSET
from processes.engine.durations import parse_duration

from .selectors import DASHBOARD_PARTS, HEALTH_STATES

MAX_WINDOW = timedelta(days=366)
MIN_WINDOW = timedelta(minutes=1)
_SHORT_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([hdw])$")
_SHORT_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_window(text: str) -> timedelta:
    """`7d`, `24h`, `2w`, or an ISO 8601 duration (`P7D`, `PT12H`)."""
    short = _SHORT_WINDOW.match(text.strip().lower())
    if short:
        window = int(short.group(1)) * _SHORT_UNITS[short.group(2)]
    else:
        try:
            window = parse_duration(text.strip())
        except ValueError as exc:
            raise serializers.ValidationError(f"{exc}; or a short form such as 24h, 7d, 2w") from None
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise serializers.ValidationError("must be between 1 minute and 366 days")
    return window


@extend_schema_field(OpenApiTypes.STR)
class WindowField(serializers.Field):
    def to_internal_value(self, data) -> timedelta:
        if not isinstance(data, str) or not data or len(data) > 64:
            raise serializers.ValidationError("a duration of at most 64 characters is required")
        return parse_window(data)

    def to_representation(self, value) -> str:
        return str(value)


class MonitoringQuerySerializer(serializers.Serializer):
    journey_id = serializers.RegexField(r"^[a-z0-9][a-z0-9._-]{0,99}$", required=False,
                                        help_text="A journey, phase or module id.")
    window = WindowField(required=False,
                         help_text="How far back to look: 24h, 7d, 2w or an ISO 8601 duration (P30D). Default 7d.")


class ActiveProcessesQuerySerializer(MonitoringQuerySerializer):
    status = serializers.ChoiceField(choices=HEALTH_STATES, required=False)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class BottlenecksQuerySerializer(MonitoringQuerySerializer):
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=200)


class DashboardQuerySerializer(MonitoringQuerySerializer):
    """The dashboard page's query: the filters, the table's status, the process whose
    timeline is shown, and (for a live refresh) the parts to render."""

    status = serializers.ChoiceField(choices=HEALTH_STATES, required=False)
    process = serializers.IntegerField(required=False, min_value=1)
    parts = serializers.CharField(required=False, max_length=200)

    def validate_parts(self, value: str) -> list[str]:
        parts = [part for part in value.split(",") if part]
        unknown = sorted(set(parts) - set(DASHBOARD_PARTS))
        if unknown:
            raise serializers.ValidationError(f"unknown parts: {', '.join(unknown)}")
        return parts


# --- responses -----------------------------------------------------------------------------------

class ActiveProcessSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    journey_id = serializers.CharField(help_text="The journey, phase or module the process runs.")
    root_journey_id = serializers.CharField()
    business_key = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=HEALTH_STATES)
    process_status = serializers.CharField()
    percent_complete = serializers.FloatField()
    current_steps = serializers.ListField(child=serializers.CharField())
    current_step_names = serializers.ListField(child=serializers.CharField())
    overdue_tasks = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    started_by = serializers.CharField(allow_null=True)
    age_seconds = serializers.FloatField()
    paused_seconds = serializers.FloatField()
    target_at = serializers.DateTimeField(allow_null=True)
    predicted_finish = serializers.DateTimeField(allow_null=True, help_text="from the periodic prediction")
    at_risk = serializers.BooleanField(help_text="past the journey's target, or predicted to finish after it")


class ThroughputDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    started = serializers.IntegerField()
    completed = serializers.IntegerField()


class CycleTimeSerializer(serializers.Serializer):
    completed = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class TaskCompletionSerializer(serializers.Serializer):
    completed = serializers.IntegerField(help_text="Human tasks completed in the window.")
    open = serializers.IntegerField(help_text="Human tasks open now.")
    completed_per_day = serializers.FloatField()
    completion_rate = serializers.FloatField(allow_null=True, help_text="completed / (completed + open)")
    on_time_rate = serializers.FloatField(allow_null=True, help_text="Share of completions within their due date.")


class ErrorRateSerializer(serializers.Serializer):
    failed = serializers.IntegerField()
    finished = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)


class RoleQueueSerializer(serializers.Serializer):
    role = serializers.CharField()
    open = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    overdue = serializers.IntegerField()
    oldest_wait_seconds = serializers.FloatField(allow_null=True)


class HealthCountsSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    on_track = serializers.IntegerField()
    delayed = serializers.IntegerField()
    blocked = serializers.IntegerField()


class MetricsSerializer(serializers.Serializer):
    window_seconds = serializers.FloatField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    throughput = ThroughputDaySerializer(many=True)
    cycle_time = CycleTimeSerializer()
    task_completion = TaskCompletionSerializer()
    errors = ErrorRateSerializer()
    queue_depth = RoleQueueSerializer(many=True)
    active = HealthCountsSerializer()


class AtomComplianceSerializer(serializers.Serializer):
    journey_id = serializers.CharField()
    atom_id = serializers.CharField()
    name = serializers.CharField()
    target_seconds = serializers.FloatField(allow_null=True)
    completed = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)
    within_target = serializers.IntegerField()
    percent_within_target = serializers.FloatField(allow_null=True)
    warned = serializers.IntegerField()
    breached = serializers.IntegerField()
    overdue_now = serializers.IntegerField()


class ComplianceDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    completed = serializers.IntegerField()
    within_target = serializers.IntegerField()
    percent_within_target = serializers.FloatField(allow_null=True)


class SlaComplianceSerializer(serializers.Serializer):
    window_seconds = serializers.FloatField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    atoms = AtomComplianceSerializer(many=True)
    series = ComplianceDaySerializer(many=True)


class BottleneckSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    journey_id = serializers.CharField()
    atom_id = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    queue_depth = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    overdue = serializers.IntegerField()
    total_wait_seconds = serializers.FloatField()
    avg_wait_seconds = serializers.FloatField(allow_null=True)
    max_wait_seconds = serializers.FloatField(allow_null=True)
    completed = serializers.IntegerField()
    avg_pickup_seconds = serializers.FloatField(allow_null=True)
    avg_handling_seconds = serializers.FloatField(allow_null=True)
    avg_time_in_step_seconds = serializers.FloatField(allow_null=True)
    target_seconds = serializers.FloatField(allow_null=True)
    avg_wait_vs_target = serializers.FloatField(allow_null=True)
    avg_time_vs_target = serializers.FloatField(allow_null=True)


class BottlenecksSerializer(serializers.Serializer):
    window_seconds = serializers.FloatField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    atoms = BottleneckSerializer(many=True)
