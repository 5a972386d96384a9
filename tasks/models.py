from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import models


class TaskStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_TASK_STATUSES = [TaskStatus.PENDING, TaskStatus.IN_PROGRESS]


class Priority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}

# Open human tasks whose SLA timers have not fired yet and whose clock runs.
_SLA_TIMER_OPEN = models.Q(status__in=["pending", "in_progress"], kind="human", sla_paused_at__isnull=True)
SLA_WARN_PENDING = _SLA_TIMER_OPEN & models.Q(due_date__isnull=False, sla_warned_at__isnull=True)
SLA_BREACH_PENDING = _SLA_TIMER_OPEN & models.Q(escalate_at__isnull=False, sla_breached_at__isnull=True)
# The due date of an open task, NULL once it is closed: `alias(open_due=OPEN_DUE_DATE)`
# and filter `open_due__lt=now` for what is overdue (indexed as task_open_due_idx).
OPEN_DUE_DATE = models.Case(models.When(status__in=["pending", "in_progress"], then=models.F("due_date")),
                            output_field=models.DateTimeField())


class TaskInstance(models.Model):
    """The work one atom asks for: a person's task (human) or a worker's job (system)."""

    # Neither foreign key gets an index of its own: task_process_idx and task_inbox_idx lead
    # with them, and task_open_assignee_idx serves routing.
    process = models.ForeignKey("processes.ProcessInstance", on_delete=models.CASCADE, related_name="tasks",
                                db_index=False)
    atom_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, default="human")
    role = models.CharField(max_length=100, blank=True, default="")
    # PROTECT: a person who held or completed a task is never deleted (who did what is the
    # history's), only deactivated; and a task changes through its one writer alone
    # (`steps.changes`), never by a deletion's SET NULL.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks",
        db_index=False,
    )
    status = models.CharField(max_length=12, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.MEDIUM)
    # 0 = high: an integer sorts the inbox in the index, where the text would not.
    priority_rank = models.PositiveSmallIntegerField(default=1)
    due_date = models.DateTimeField(null=True, blank=True)
    escalate_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The run of the innermost rework loop its atom is in: 1, then 2, 3, ... as the loop repeats.
    iteration = models.PositiveIntegerField(default=1, db_default=1)
    last_error = models.TextField(blank=True, default="")
    escalated = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=0)
    # SLA clock (monitoring.sla). Each timer fires at most once: the sweep sets the stamp
    # with a conditional UPDATE (`... WHERE sla_warned_at IS NULL`) in the firing transaction.
    sla_warned_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    # Set while the process is suspended (the clock stands still); on resume due_date and
    # escalate_at move forward by the pause, which is added to sla_paused_for, so that
    # due_date == created_at + sla_paused_for + target always holds.
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_paused_for = models.DurationField(default=timedelta(0))

    class Meta:
        permissions = [("view_all_tasks", "Can see every task, not only the team's")]
        indexes = [
            models.Index(fields=["assigned_to", "status", "priority_rank", "due_date"], name="task_inbox_idx"),
            models.Index(fields=["role", "status", "priority_rank", "due_date"], name="task_queue_idx"),
            # A role's open queue in inbox order: partial, so it holds only what can be claimed
            # and the inbox reads it in order without sorting.
            models.Index(fields=["role", "priority_rank", "due_date", "created_at"], name="task_queue_open_idx",
                         condition=models.Q(assigned_to__isnull=True, kind="human",
                                            status__in=["pending", "in_progress"])),
            # How many open tasks a person has: least-busy routing asks it at every step. Partial,
            # so the count never walks the person's closed tasks, nine in ten of them or more.
            models.Index(fields=["assigned_to"], name="task_open_assignee_idx",
                         condition=models.Q(status__in=["pending", "in_progress"])),
            models.Index(fields=["process", "atom_id"], name="task_process_idx"),
            # The SLA sweep's two timer queues: partial, so a row leaves the index once its
            # timer fired or its task closed, and each sweep reads only what is due.
            models.Index(fields=["due_date"], name="task_sla_warn_idx", condition=SLA_WARN_PENDING),
            models.Index(fields=["escalate_at"], name="task_sla_breach_idx", condition=SLA_BREACH_PENDING),
            # What is overdue now (monitoring). An expression index, not a partial one: its
            # statistics tell the planner that few open tasks are past due, where the
            # due_date column's (mostly closed tasks, long past due) say most are.
            models.Index(OPEN_DUE_DATE, name="task_open_due_idx"),
            # The open tasks of one atom: an SLA override re-times them at every sweep.
            models.Index(fields=["atom_id"], name="task_open_atom_idx",
                         condition=models.Q(status__in=["pending", "in_progress"])),
            # Open system steps by age: the ones no worker has run for too long (monitoring.workers,
            # the dashboard's health, the anomaly watchdog) and the sweep that re-sends them.
            models.Index(fields=["created_at"], name="task_open_system_idx",
                         condition=models.Q(kind="system", status__in=["pending", "in_progress"])),
            # What was completed since a given time, per atom.
            models.Index(fields=["completed_at", "atom_id"], name="task_completed_idx",
                         condition=models.Q(status="completed")),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} {self.atom_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES

    @property
    def is_overdue(self) -> bool:
        from django.utils import timezone

        return bool(self.is_open and self.due_date and self.due_date < timezone.now())


class Profile(models.Model):
    """What the router needs to know of a person beyond their roles."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_profile")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    capacity = models.PositiveIntegerField(default=20)
    available = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


# Object permissions (django-guardian) with direct foreign keys: the generic tables key
# objects by a text column, which cannot join an inbox query on an index.
from guardian.models import UserObjectPermissionBase  # noqa: E402


# Every task routed to someone inserts its two permission rows: the foreign keys' own indexes
# are left out, as the unique (user, permission, object) index leads with the one that is
# looked up, and the object's index stays. A queued task has none: its role's members see it
# through their roles (tasks.access.visible_tasks).
class TaskUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(TaskInstance, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False)
    permission = models.ForeignKey(Permission, on_delete=models.CASCADE, db_index=False)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class RoleSettings(models.Model):
    """Per-role settings an administrator keeps: who takes escalated unassigned work."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="role_settings")
    escalation_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "role settings"

    def __str__(self) -> str:
        return f"settings of {self.group}"
