from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AnomalyKind(models.TextChoices):
    STUCK = "stuck", "Stuck"
    UNUSUAL_PATH = "unusual_path", "Unusual path"
    UNUSUAL_DURATION = "unusual_duration", "Unusual duration"
    SYSTEM_STEP_WAITING = "system_step_waiting", "System step not run"


# Kinds that describe the present: the next run that no longer finds one resolves it.
TRANSIENT_KINDS = (AnomalyKind.STUCK, AnomalyKind.SYSTEM_STEP_WAITING)


class Anomaly(models.Model):
    """Something the detector found odd about one process, and why.

    One row per (process, kind, key) (key: the task concerned, or the path), refreshed by
    every detection run. A stuck process that moves on, or a system step that a worker
    finally ran, is resolved by the next run; a path or a duration stays, being a fact of
    history, until someone acknowledges it.
    """

    kind = models.CharField(max_length=20, choices=AnomalyKind.choices)
    process = models.ForeignKey("processes.ProcessInstance", on_delete=models.CASCADE, related_name="anomalies")
    key = models.CharField(max_length=100, help_text="what in the process: task:<id>, or path")
    journey_id = models.CharField(max_length=100)
    workflow_id = models.CharField(max_length=100)
    atom_id = models.CharField(max_length=100, blank=True, default="")
    task_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(help_text="why, in a sentence a manager can act on")
    details = models.JSONField(default=dict, help_text="the numbers behind the reason")
    score = models.FloatField(help_text="how far out: observed over the learned limit, or 1 / share of history")
    detected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    note = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["process", "kind", "key"], name="anomaly_unique_key"),
            models.CheckConstraint(condition=Q(kind__in=AnomalyKind.values), name="anomaly_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["-detected_at"], name="anomaly_open_idx",
                         condition=Q(resolved_at__isnull=True, acknowledged_at__isnull=True)),
            models.Index(fields=["kind", "resolved_at"], name="anomaly_kind_idx"),
        ]
        ordering = ["-detected_at", "-id"]
        verbose_name_plural = "anomalies"

    def __str__(self) -> str:
        return f"{self.kind} in process {self.process_id}"

    @property
    def status(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "open"
