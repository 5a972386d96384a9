from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gndp.api.representation import BuiltOnceFields

from . import event_types, sensitive
from .engine import core
from .engine.blueprint import CHOOSE, THEN
from .models import ProcessEvent, ProcessInstance


class ProcessSerializer(BuiltOnceFields, serializers.ModelSerializer):
    """The contract's Process."""

    journey_id = serializers.CharField(source="workflow_id")
    root_journey_id = serializers.CharField(source="journey_id")
    version = serializers.IntegerField(source="version.number")
    current_steps = serializers.SerializerMethodField()
    completed_steps = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    context = serializers.SerializerMethodField()

    class Meta:
        model = ProcessInstance
        fields = [
            "id", "journey_id", "root_journey_id", "version", "status", "business_key", "started_by",
            "started_at", "completed_at", "context", "current_steps", "completed_steps", "progress", "failure",
            "lock_version", "predicted_finish", "at_risk",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_context(self, process) -> dict[str, Any]:
        """The process context, sensitive fields decrypted: whoever gets here may see the process."""
        return sensitive.reveal_for_reader(sensitive.paths_of(process), process.context)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_current_steps(self, process) -> list[str]:
        """The active atoms: none once the process is aborted (they are cancelled)."""
        return process.steps_in(core.ACTIVE)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_completed_steps(self, process) -> list[str]:
        return process.steps_in("completed")

    def get_progress(self, process) -> float:
        """Share of the workflow's atoms that are decided (completed or skipped), 0..1."""
        return process.progress


class StartProcessSerializer(serializers.Serializer):
    journey_id = serializers.RegexField(r"^[a-z0-9][a-z0-9._-]{0,99}$", help_text="A journey, phase or module id.")
    context = serializers.DictField(required=False, default=dict)
    business_key = serializers.CharField(required=False, allow_null=True, max_length=200)


class StartManySerializer(serializers.Serializer):
    journey_id = serializers.RegexField(r"^[a-z0-9][a-z0-9._-]{0,99}$", help_text="A journey, phase or module id.")
    contexts = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=1000,
                                     help_text="One process each, at most 1,000 a request.")
    business_keys = serializers.ListField(child=serializers.CharField(max_length=200, allow_null=True),
                                          required=False, help_text="One for each context, or none.")


class StartedManySerializer(serializers.Serializer):
    started = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField())


class AbortSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class EventSerializer(serializers.ModelSerializer):
    user_id = serializers.SerializerMethodField()

    class Meta:
        model = ProcessEvent
        fields = ["id", "type", "timestamp", "process_id", "user_id", "task_id", "atom_id", "payload"]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # The types declared when asked, not at import: each app declares its own as it loads.
        fields["type"] = serializers.ChoiceField(choices=event_types.values(), read_only=True)
        return fields

    def get_user_id(self, event) -> str | None:
        """The acting user's name (null for the engine itself)."""
        return event.username or None


class GraphNodeSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.ChoiceField(choices=list(core.STATES))
    role = serializers.CharField(allow_null=True)
    choose = serializers.ChoiceField(choices=list(CHOOSE), help_text="first: an exclusive choice (one edge fires)")
    then = serializers.ChoiceField(choices=list(THEN), allow_null=True,
                                   help_text="first_done: the atoms it enables race; the first done wins")
    iteration = serializers.IntegerField(min_value=1, help_text="the run of the rework loop it is in (1 outside loops)")


class VisualizeSerializer(serializers.Serializer):
    nodes = GraphNodeSerializer(many=True)
    edges = serializers.ListField(child=serializers.DictField())


class JourneyImportResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    version = serializers.IntegerField()
    hash = serializers.CharField()
    created = serializers.BooleanField()


class JourneySummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    latest_version = serializers.IntegerField()
    may_start = serializers.BooleanField(help_text="Whether the caller may start the journey itself.")
    startable = serializers.ListField(
        child=serializers.CharField(),
        help_text="The journey, phases and modules the caller may start (POST /api/processes/start), in reading order.",
    )
