from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .kinds import CHANNELS, DEFAULT_CHANNELS, Channel, Kind


class EmailStatus(models.TextChoices):
    NONE = "none", "Not by email"
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"


class Notification(models.Model):
    """One event told to one person. Unique per (event, recipient): a relay that hands the
    same event over twice cannot notify anyone twice."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    event = models.ForeignKey("processes.ProcessEvent", on_delete=models.DO_NOTHING, related_name="+")
    process = models.ForeignKey("processes.ProcessInstance", on_delete=models.CASCADE, related_name="+")
    task_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="", help_text="who caused it; empty: the engine")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    in_app = models.BooleanField(default=True, help_text="shown in the bell and the notifications page")
    email_status = models.CharField(max_length=8, choices=EmailStatus.choices, default=EmailStatus.NONE)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "recipient"], name="notification_once_per_event"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="notification_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_recipient_idx"),
            models.Index(fields=["recipient"], name="notification_unread_idx",
                         condition=Q(read_at__isnull=True, in_app=True)),
            models.Index(fields=["recipient", "id"], name="notification_email_idx",
                         condition=Q(email_status="pending")),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class DeliveredEvent(models.Model):
    """An event whose notifications exist: written in the same transaction, so delivery
    happens once whoever (the after-commit hand-off, the relay) gets to the event first."""

    event_id = models.BigIntegerField(primary_key=True)
    delivered_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"event {self.event_id} delivered"


class RelayCursor(models.Model):
    """How far the relay has read the event log: every event at or below it was delivered."""

    name = models.CharField(max_length=50, primary_key=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_event_id}"


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"unknown time zone {value!r}")


def validate_channels(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("a mapping of kind to channels")
    for kind, channels in value.items():
        if kind not in Kind.values:
            raise ValidationError(f"unknown kind {kind!r}")
        if not isinstance(channels, list) or not set(channels) <= set(CHANNELS):
            raise ValidationError(f"{kind}: a list of {', '.join(CHANNELS)}")


class NotificationPreference(models.Model):
    """A person's choices: the channels of each kind (no channel: not notified at all), and
    quiet hours in their time zone, during which emails wait and then go as a digest."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notification_preference")
    channels = models.JSONField(default=dict, blank=True, validators=[validate_channels],
                                help_text="kind -> channels; a kind left out keeps its default")
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notification preferences of {self.user_id}"

    def channels_for(self, kind: str) -> tuple[str, ...]:
        if kind in self.channels:
            return tuple(channel for channel in CHANNELS if channel in self.channels[kind])
        return tuple(DEFAULT_CHANNELS.get(kind, (Channel.IN_APP,)))

    def is_quiet(self, moment) -> bool:
        """Whether `moment` falls in the quiet hours (which may span midnight)."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return False
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone)).time()
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end
