"""The admin for managers: processes, versions and the event log. Actions call the services;
nothing here changes a model directly."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from tasks.access import visible_processes

from . import services
from .errors import ServiceError
from .journey import dump
from .models import ProcessEvent, ProcessInstance, WorkflowVersion
from .sync import PUBLISHED, REJECTED, sync_journeys


def run_service_action(modeladmin, request, objects, service, verb: str) -> None:
    """Apply a service to each object; report successes and refusals without a 500."""
    done = 0
    for obj in objects:
        try:
            service(obj, request.user)
            done += 1
        except ServiceError as exc:
            modeladmin.message_user(request, f"#{obj.pk}: {exc.message}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} item(s).", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProcessInstance)
class ProcessAdmin(ReadOnlyAdmin):
    list_display = ["id", "workflow_id", "status", "progress_percent", "started_by", "started_at", "completed_at"]
    list_filter = ["status", "journey_id", "workflow_id"]
    search_fields = ["id", "business_key", "workflow_id", "started_by__username"]
    date_hierarchy = "started_at"
    actions = ["suspend", "resume", "abort"]
    readonly_fields = [f.name for f in ProcessInstance._meta.fields]

    def get_queryset(self, request):
        # Managers see their team's processes only; administrators see all.
        return visible_processes(request.user).select_related("started_by", "version")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    @admin.display(description="progress")
    def progress_percent(self, obj) -> str:
        return f"{obj.progress:.0%}"

    @admin.action(description="Suspend the selected processes")
    def suspend(self, request, queryset):
        run_service_action(self, request, queryset, lambda p, u: services.suspend_process(p.pk, user=u), "Suspended")

    @admin.action(description="Resume the selected processes")
    def resume(self, request, queryset):
        run_service_action(self, request, queryset, lambda p, u: services.resume_process(p.pk, user=u), "Resumed")

    @admin.action(description="Abort the selected processes")
    def abort(self, request, queryset):
        run_service_action(
            self, request, queryset,
            lambda p, u: services.abort_process(p.pk, user=u, reason="aborted in the admin"), "Aborted",
        )

    def has_suspend_permission(self, request) -> bool:
        return request.user.is_staff

    has_resume_permission = has_abort_permission = has_suspend_permission


@admin.register(ProcessEvent)
class ProcessEventAdmin(ReadOnlyAdmin):
    """The audit trail: readable, never editable (the database refuses it anyway)."""

    list_display = ["id", "timestamp", "type", "process", "atom_id", "username"]
    list_filter = ["type"]
    search_fields = ["process__id", "atom_id", "username"]
    date_hierarchy = "timestamp"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(process__in=visible_processes(request.user))

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff


SYNC_ACTION = "sync_from_graph_store"


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ["journey_id", "number", "name", "hash", "created_at"]
    list_filter = ["journey_id"]
    search_fields = ["journey_id", "name", "hash"]
    exclude = ["definition"]
    readonly_fields = ["journey_id", "number", "name", "hash", "created_at", "definition_pretty"]
    actions = [SYNC_ACTION]
    # The admin shows actions only above a list it counts as non-empty; without counting, the
    # sync is offered before the first version exists too.
    show_full_result_count = False

    @admin.action(description="Sync journeys from the graph store", permissions=["sync"])
    def sync_from_graph_store(self, request, queryset=None):
        """Publish every journey of the graph store that changed (processes.sync): the
        selection plays no part. One message per journey."""
        try:
            report = sync_journeys()
        except ServiceError as exc:  # the graph store is unreachable or refused us
            self.message_user(request, exc.message, messages.ERROR)
            return
        level = {PUBLISHED: messages.SUCCESS, REJECTED: messages.ERROR}
        for item in report.journeys:
            self.message_user(request, item.line, level.get(item.outcome, messages.INFO))
        self.message_user(request, report.summary, messages.WARNING if report.rejected else messages.INFO)

    def has_sync_permission(self, request) -> bool:
        # Who may import journey files through the API may publish what the graph holds.
        return request.user.is_superuser or request.user.has_perm("processes.add_workflowversion")

    def changelist_view(self, request, extra_context=None):
        # The sync reads the graph store, not the selected rows: it runs with no row
        # selected too (the admin otherwise refuses an action without a selection).
        if (request.method == "POST" and "index" in request.POST
                and request.POST.get("action") == SYNC_ACTION and self.has_sync_permission(request)):
            self.sync_from_graph_store(request)
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    @admin.display(description="definition")
    def definition_pretty(self, obj) -> str:
        return format_html("<pre>{}</pre>", dump(obj.definition, "yaml"))
