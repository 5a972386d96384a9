"""Data protection records: retention overrides set in the admin, and the erasures done.

Neither holds personal data: an erasure is kept by its reference, what it covered and how
much it changed, never by the value or the person it was asked for.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from processes import event_types


@event_types.register
class PrivacyEventType(models.TextChoices):
    """What erasing does to a process, in its history: some personal data erased, or all
    of it purged at the end of its retention."""

    ERASED = "privacy.erased"
    PURGED = "privacy.purged"


class RetentionPolicy(models.Model):
    """How long a journey's finished processes keep their personal data. Overrides the
    journey's own `privacy.retention`."""

    journey_id = models.CharField(max_length=100, unique=True)
    retention = models.DurationField(help_text="after completion; e.g. 365 days")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["journey_id"]

    def __str__(self) -> str:
        return f"{self.journey_id}: {self.retention.days} days"


class ErasureKind(models.TextChoices):
    SUBJECT = "subject", "Data subject (context field)"
    USER = "user", "User account"
    RETENTION = "retention", "Retention purge"


class Erasure(models.Model):
    """One erasure or retention purge, as a fact without personal data."""

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=ErasureKind.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    processes = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="what was erased, by kind")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} erasure {self.reference}"
