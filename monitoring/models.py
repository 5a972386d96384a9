from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class AtomSLAOverride(models.Model):
    """An administrator's SLA for one atom of a journey, in place of the journey file's.

    Left empty, a field keeps the journey's value. Saving or deleting one re-times the open
    tasks of that atom (`monitoring.sla.retime_atom`), and every sweep re-times tasks created
    since with the journey's value before it fires anything.
    """

    journey_id = models.CharField(max_length=100, help_text="The root journey id (not a phase or module).")
    atom_id = models.CharField(max_length=100)
    target = models.DurationField(null=True, blank=True,
                                  help_text="Time to complete (e.g. 4:00:00); empty keeps the journey's.")
    escalation = models.DurationField(null=True, blank=True,
                                      help_text="Time after which the task escalates; empty keeps the journey's.")
    note = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey_id", "atom_id"], name="sla_override_unique_atom")]
        ordering = ["journey_id", "atom_id"]
        verbose_name = "SLA override"

    def __str__(self) -> str:
        return f"SLA of {self.journey_id}/{self.atom_id}"

    def clean(self) -> None:
        for name in ("target", "escalation"):
            value = getattr(self, name)
            if value is not None and value.total_seconds() <= 0:
                raise ValidationError({name: "must be a positive duration"})


class WorkerHeartbeat(models.Model):
    """A Celery worker process's sign of life, written by that process itself every
    `GNDP_WORKER_HEARTBEAT_SECONDS` (monitoring.heartbeat): one row per process start, so a
    worker that died and came back is two rows, the first of which stopped beating."""

    node = models.CharField(max_length=200, help_text="the Celery node name, e.g. celery@host")
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="set by a clean shutdown only")

    class Meta:
        indexes = [models.Index(fields=["-last_seen_at"], name="worker_heartbeat_seen_idx")]
        ordering = ["-last_seen_at", "-id"]

    def __str__(self) -> str:
        return f"{self.node} (pid {self.pid})"
