from __future__ import annotations

from datetime import time

from rest_framework import serializers

from .kinds import CHANNELS, Kind
from .models import Notification, NotificationPreference


class NotificationSerializer(serializers.ModelSerializer):
    process_id = serializers.IntegerField()
    event_id = serializers.IntegerField()
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "process_id", "task_id", "event_id", "actor",
                  "created_at", "read", "read_at"]
        read_only_fields = fields

    def get_read(self, notification) -> bool:
        return notification.read_at is not None


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


class UnreadQuerySerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="Only the unread ones.")


ChannelList = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS))


# A time of day in the person's time zone, "HH:MM" (no offset: the zone is `timezone`).
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def clock(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


class PreferencesSerializer(serializers.Serializer):
    """Every kind with its channels (the defaults where the person chose nothing)."""

    channels = serializers.DictField(child=serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS)))
    quiet_start = serializers.RegexField(CLOCK, allow_null=True, help_text="HH:MM in `timezone`; null: none")
    quiet_end = serializers.RegexField(CLOCK, allow_null=True, help_text="HH:MM in `timezone`; null: none")
    timezone = serializers.CharField()

    def to_representation(self, preference: NotificationPreference):
        return {
            "channels": {kind: list(preference.channels_for(kind)) for kind in Kind.values},
            "quiet_start": clock(preference.quiet_start),
            "quiet_end": clock(preference.quiet_end),
            "timezone": preference.timezone,
        }


class PreferencesUpdateSerializer(serializers.Serializer):
    channels = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS), max_length=len(CHANNELS)),
        required=False, help_text="kind -> channels; an empty list turns the kind off.")
    quiet_start = serializers.RegexField(CLOCK, required=False, allow_null=True, help_text="HH:MM, or null")
    quiet_end = serializers.RegexField(CLOCK, required=False, allow_null=True, help_text="HH:MM, or null")
    timezone = serializers.CharField(required=False, max_length=64)

    def validate_quiet_start(self, value):
        return time.fromisoformat(value) if value else None

    def validate_quiet_end(self, value):
        return time.fromisoformat(value) if value else None

    def validate_channels(self, value):
        unknown = sorted(set(value) - set(Kind.values))
        if unknown:
            raise serializers.ValidationError(f"unknown kinds: {', '.join(unknown)}")
        return value

    def validate(self, data):
        if ("quiet_start" in data) != ("quiet_end" in data):
            raise serializers.ValidationError({"quiet_end": "give quiet_start and quiet_end together"})
        return data
