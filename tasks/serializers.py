from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gndp.api.representation import BuiltOnceFields
from processes import sensitive, versions

from .models import TaskInstance


class TaskSerializer(BuiltOnceFields, serializers.ModelSerializer):
    process_instance_id = serializers.IntegerField(source="process_id")
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True)
    overdue = serializers.SerializerMethodField()
    form = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = TaskInstance
        fields = [
            "id", "process_instance_id", "atom_id", "name", "kind", "role", "assigned_to", "status", "priority",
            "due_date", "created_at", "started_at", "completed_at", "data", "result", "escalated", "overdue",
            "attempts", "last_error", "form", "iteration",
        ]
        read_only_fields = fields

    def get_overdue(self, task) -> bool:
        return task.is_overdue

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_result(self, task) -> dict | None:
        """The result, sensitive fields decrypted: whoever gets here may see the task."""
        return sensitive.reveal_for_reader(sensitive.paths_of(task.process), task.result)

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_form(self, task) -> list[dict]:
        """The fields completing this task must supply (from the atom's `form`)."""
        process = task.process
        atom = versions.get_blueprint(process.version_id, process.workflow_id).atoms.get(task.atom_id)
        if atom is None:
            return []
        return [
            {"name": f.name, "type": f.type, "required": f.required, "choices": list(f.choices),
             "label": f.label or f.name.replace("_", " ").capitalize(), "sensitive": f.sensitive}
            for f in atom.form
        ]


class CompleteSerializer(serializers.Serializer):
    result = serializers.DictField(required=False, default=dict)


class ReassignSerializer(serializers.Serializer):
    new_assignee = serializers.CharField(max_length=150)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class StatsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    completed = serializers.IntegerField()
    overdue = serializers.IntegerField()
    queued = serializers.IntegerField()
