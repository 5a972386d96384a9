from __future__ import annotations

from django.conf import settings
from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone

from . import event_types, hashchain
from .event_types import DiscussionEventType, EventType  # noqa: F401  (where the apps import them from)


class GraphNode(models.Model):
    """One node of the embedded graph store: the same property graph as in Neo4j."""

    journey_id = models.CharField(max_length=100)
    label = models.CharField(max_length=20)  # Journey | Phase | Module | Atom | Rule
    key = models.CharField(max_length=100)  # the node's id (rule_id for rules)
    position = models.PositiveIntegerField(default=0)
    props = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey_id", "key"], name="graph_node_unique_key")]
        indexes = [models.Index(fields=["key"], name="graph_node_key_idx")]

    def __str__(self) -> str:
        return f"({self.label} {self.key})"


class GraphRelationship(models.Model):
    journey_id = models.CharField(max_length=100)
    type = models.CharField(max_length=20)  # HAS_PHASE HAS_MODULE CONTAINS ENABLES DEPENDS_ON PERFORMED_BY
    source = models.ForeignKey(GraphNode, on_delete=models.CASCADE, related_name="outgoing")
    target = models.ForeignKey(GraphNode, on_delete=models.CASCADE, related_name="incoming")
    position = models.PositiveIntegerField(default=0)
    props = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["journey_id", "type"], name="graph_rel_journey_type_idx")]

    def __str__(self) -> str:
        return f"({self.source.key})-[:{self.type}]->({self.target.key})"


class WorkflowVersion(models.Model):
    """A journey definition as published: immutable, content-hashed, numbered per journey."""

    journey_id = models.CharField(max_length=100)
    number = models.PositiveIntegerField()
    hash = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey_id", "number"], name="version_unique_number"),
            models.UniqueConstraint(fields=["journey_id", "hash"], name="version_unique_hash"),
        ]
        ordering = ["journey_id", "-number"]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class ProcessStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


OPEN_PROCESS_STATUSES = [ProcessStatus.PENDING, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED, ProcessStatus.FAILED]


CHAIN_HEAD = ("event_seq", "event_head")


class ProcessInstance(models.Model):
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="processes")
    journey_id = models.CharField(max_length=100)
    workflow_id = models.CharField(max_length=100, help_text="The journey, phase or module it runs.")
    status = models.CharField(max_length=12, choices=ProcessStatus.choices, default=ProcessStatus.PENDING)
    context = models.JSONField(default=dict)
    business_key = models.CharField(max_length=200, null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every state change: what optimistic readers (If-Match) compare against.
    lock_version = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True, default="")
    # The per-atom state of the engine core, kept on the process row: every step locks and
    # writes this row anyway, so the state costs no extra statement to read or to save.
    atom_states = models.JSONField(default=dict, help_text="atom id -> waiting|active|completed|skipped|cancelled")
    fired_edges = models.JSONField(default=dict, help_text="decided atom id -> targets of its fired ENABLES edges")
    loops = models.JSONField(default=dict, db_default=models.Value({}, output_field=models.JSONField()), blank=True,
                             help_text="back edge 'X>Y' -> {iteration, extra}: the run its loop is in, and the runs "
                                       "an administrator allowed beyond its max_iterations")
    # Written only by the prediction job (processes.prediction), never by a state change,
    # so the job updates these columns alone and takes no part in the process lock.
    predicted_finish = models.DateTimeField(null=True, blank=True, help_text="median predicted completion time")
    at_risk = models.BooleanField(default=False, help_text="predicted to finish after the journey's SLA target")
    predicted_at = models.DateTimeField(null=True, blank=True, help_text="when the prediction was last computed")
    # The head of the process's event hash chain (processes.hashchain): kept on the row that
    # every append locks, so that appending never has to read the event log first.
    # Written only by the chain (CHAIN_HEAD), never by a plain save().
    event_seq = models.PositiveIntegerField(default=0, db_default=0, help_text="seq of the newest chained event")
    event_head = models.CharField(max_length=64, blank=True, default="", db_default="",
                                  help_text="row_hash of the newest chained event")

    class Meta:
        permissions = [
            ("view_all_processes", "Can see every process, not only the team's"),
            # processes.start_rights: past every journey's `start` rule.
            ("start_any_journey", "Can start any journey, phase or module"),
        ]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="process_status_idx"),
            models.Index(fields=["workflow_id", "status"], name="process_workflow_idx"),
        ]
        constraints = [
            # A business key names one open process at a time (like a workflow id elsewhere).
            models.UniqueConstraint(
                fields=["business_key"],
                condition=Q(business_key__isnull=False) & Q(status__in=OPEN_PROCESS_STATUSES),
                name="process_open_business_key",
            )
        ]

    def __str__(self) -> str:
        return f"process {self.pk} ({self.workflow_id}, {self.status})"

    def save(self, *args, **kwargs) -> None:
        # A full save of a row read before events were appended would move the chain head
        # back; only the chain writes it.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [field.name for field in self._meta.concrete_fields
                                       if not field.primary_key and field.name not in CHAIN_HEAD]
        super().save(*args, **kwargs)

    @property
    def is_final(self) -> bool:
        return self.status in {ProcessStatus.COMPLETED, ProcessStatus.ABORTED}

    def steps_in(self, state: str) -> list[str]:
        return [atom_id for atom_id, value in self.atom_states.items() if value == state]

    @property
    def progress(self) -> float:
        """Share of the workflow's atoms that are decided (completed or skipped), 0..1."""
        if not self.atom_states:
            return 0.0
        decided = sum(1 for value in self.atom_states.values() if value in ("completed", "skipped"))
        return round(decided / len(self.atom_states), 4)


class ProcessEventQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Insert events, hash-chained (processes.hashchain) in the same transaction."""
        objs = list(objs)
        with transaction.atomic(using=self.db, savepoint=False):
            chain_events(objs)
            return super().bulk_create(objs, *args, **kwargs)


def chain_events(events, *, processes=None) -> None:
    """Give unsaved events their `seq` and `row_hash`, continuing each process's hash chain
    (processes.hashchain), and move the chain heads forward; when the chain is on.

    Runs inside the inserting transaction. `processes`: the events' process rows, which
    this transaction locked and then read (the services): the heads are read from them and
    moved forward in them, and the caller saves them with the rest of its writes (see
    `steps.events.EventLog`). Otherwise the rows are locked here, so a writer that did
    not lock them first still appends in turn instead of forking the chain, and their heads
    are written back here.
    """
    if not settings.GNDP_AUDIT_HASH_CHAIN:
        return
    events = [event for event in events if event.seq is None]
    if not events:
        return
    if processes is not None:
        heads = {pid: (process.event_seq, process.event_head) for pid, process in processes.items()}
        for pid in hashchain.link_events(events, heads):
            processes[pid].event_seq, processes[pid].event_head = heads[pid]
        return
    # Lock the rows and read their heads in one statement: the heads live on the locked
    # rows, so a statement that waited for a lock reads the heads that the transaction it
    # waited for wrote.
    rows = (ProcessInstance.objects.filter(pk__in=sorted({event.process_id for event in events})).order_by("pk")
            .select_for_update().values_list("pk", *CHAIN_HEAD))
    heads = {pid: (seq, head) for pid, seq, head in rows}
    moved = hashchain.link_events(events, heads)
    ProcessInstance.objects.bulk_update(
        [ProcessInstance(pk=pid, event_seq=heads[pid][0], event_head=heads[pid][1]) for pid in sorted(moved)],
        CHAIN_HEAD,
    )


class ProcessEvent(models.Model):
    """The audit trail and the outbox. Append-only: a database trigger refuses changes, and
    where the database roles are separated (processes.db_roles) the app's role has no right
    to UPDATE, DELETE or TRUNCATE the table either.

    Tamper evidence (processes.hashchain, verified by processes.audit): each event carries
    its position in its process's history (`seq`, 1, 2, ...) and `row_hash`, a SHA-256 over
    the previous event's hash and this event's content, so `manage.py verify_audit` finds a
    changed or removed row. Both are empty on events written while `GNDP_AUDIT_HASH_CHAIN`
    was off.

    The user is kept as plain columns, not a foreign key, so that deleting a user never
    has to touch (and could never be allowed to touch) the audit rows.
    """

    # Indexed by (process, id) and (process, seq) below: no index of its own.
    process = models.ForeignKey(ProcessInstance, on_delete=models.DO_NOTHING, related_name="events", db_index=False)
    # Read from the registry when asked: an app's types are declared as its models load.
    type = models.CharField(max_length=event_types.MAX_LENGTH, choices=event_types.choices)
    # Set when the event is built, not at INSERT time, because the hash covers it.
    timestamp = models.DateTimeField(default=timezone.now)
    user_id = models.BigIntegerField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True, default="")
    task_id = models.BigIntegerField(null=True, blank=True)
    atom_id = models.CharField(max_length=100, blank=True, default="")
    payload = models.JSONField(default=dict)
    seq = models.PositiveIntegerField(null=True, blank=True, help_text="position in the process's hash chain")
    row_hash = models.CharField(max_length=64, blank=True, default="", help_text="SHA-256 of the previous hash and this event")

    objects = ProcessEventQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["process", "id"], name="event_process_idx")]
        constraints = [
            # Two writers that both read the same chain head (a writer that forgot the process
            # row lock) get an IntegrityError instead of forking the chain.
            models.UniqueConstraint(fields=["process", "seq"], name="event_process_seq_unique"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            super().save(*args, **kwargs)  # the database refuses it: append-only
            return
        with transaction.atomic(using=kwargs.get("using") or router.db_for_write(ProcessEvent, instance=self),
                                savepoint=False):
            chain_events([self])
            super().save(*args, **kwargs)

    def as_message(self) -> dict:
        """The Event of the API contract, also what WebSocket clients receive."""
        return {
            "id": self.pk,
            "type": self.type,
            "timestamp": self.timestamp.isoformat(),
            "process_id": self.process_id,
            "user_id": self.username or None,
            "task_id": self.task_id,
            "atom_id": self.atom_id or None,
            "payload": self.payload,
        }


from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase  # noqa: E402


class ProcessUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(ProcessInstance, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class ProcessGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(ProcessInstance, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class IdempotencyRecord(models.Model):
    """The first response to a write that carried an `Idempotency-Key`, per caller."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key")]
