from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from .models import Anomaly, AnomalyKind
from .selectors import STATUSES


class AnomalySerializer(serializers.ModelSerializer):
    process_id = serializers.IntegerField()
    process_url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=["open", "acknowledged", "resolved"], read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    details = serializers.DictField()

    class Meta:
        model = Anomaly
        fields = ["id", "kind", "status", "process_id", "process_url", "journey_id", "workflow_id", "atom_id",
                  "task_id", "reason", "details", "score", "detected_at", "last_seen_at", "resolved_at",
                  "acknowledged_at", "acknowledged_by", "note"]
        read_only_fields = fields

    def get_process_url(self, anomaly) -> str:
        """The process page."""
        return reverse("process-page", args=[anomaly.process_id])


class AnomalyQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUSES, required=False, default="open")
    kind = serializers.ChoiceField(choices=AnomalyKind.values, required=False)
    journey_id = serializers.CharField(required=False, max_length=100, help_text="A journey, phase or module id.")
    process_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
