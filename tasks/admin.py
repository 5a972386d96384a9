"""The admin for managers: tasks (with the team inbox), people and roles."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from processes.admin import ReadOnlyAdmin, run_service_action

from . import services
from .access import visible_tasks
from .models import OPEN_TASK_STATUSES, Profile, RoleSettings, TaskInstance


class TeamFilter(admin.SimpleListFilter):
    """The manager's team inbox: the open tasks of the people it manages."""

    title = "team"
    parameter_name = "team"

    def lookups(self, request, model_admin):
        return [("mine", "My team's open tasks"), ("me", "My own open tasks")]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(assigned_to__workflow_profile__manager=request.user, status__in=OPEN_TASK_STATUSES)
        if self.value() == "me":
            return queryset.filter(assigned_to=request.user, status__in=OPEN_TASK_STATUSES)
        return queryset


class ReassignForm(ActionForm):
    new_assignee = forms.CharField(required=False, label="Reassign to (user name)")


@admin.register(TaskInstance)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "process", "role", "assigned_to", "status", "priority", "due_date", "escalated"]
    list_filter = [TeamFilter, "status", "priority", "kind", "role", "escalated"]
    search_fields = ["id", "atom_id", "name", "assigned_to__username", "process__id"]
    date_hierarchy = "created_at"
    action_form = ReassignForm
    actions = ["reassign", "escalate", "retry"]
    readonly_fields = [f.name for f in TaskInstance._meta.fields]

    def get_queryset(self, request):
        return visible_tasks(request.user).select_related("assigned_to", "process")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    def has_reassign_permission(self, request) -> bool:
        return request.user.is_staff

    has_escalate_permission = has_retry_permission = has_reassign_permission

    @admin.action(description="Reassign the selected tasks (name the user below)")
    def reassign(self, request, queryset):
        target = request.POST.get("new_assignee", "").strip()
        run_service_action(
            self, request, queryset,
            lambda t, u: services.reassign_task(t.pk, user=u, new_assignee=target), f"Reassigned to {target}:",
        )

    @admin.action(description="Escalate the selected tasks to the manager")
    def escalate(self, request, queryset):
        run_service_action(self, request, queryset, lambda t, u: services.escalate_task(t.pk, user=u), "Escalated")

    @admin.action(description="Retry the selected failed system steps")
    def retry(self, request, queryset):
        run_service_action(self, request, queryset, lambda t, u: services.retry_task(t.pk, user=u), "Retried")


class ProfileInline(admin.StackedInline):
    model = Profile
    fk_name = "user"
    can_delete = False
    fields = ["manager", "capacity", "available", "last_assigned_at"]
    readonly_fields = ["last_assigned_at"]
    autocomplete_fields = ["manager"]


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class PersonAdmin(UserAdmin):
    """People: a user's roles are its groups; the profile holds manager and capacity."""

    inlines = [ProfileInline]
    list_display = ["username", "first_name", "last_name", "is_active", "is_staff", "roles", "manager"]
    list_filter = ["is_active", "is_staff", "groups"]

    @admin.display(description="roles")
    def roles(self, obj) -> str:
        return ", ".join(group.name for group in obj.groups.all())

    @admin.display(description="manager")
    def manager(self, obj):
        profile = getattr(obj, "workflow_profile", None)
        return profile.manager if profile else None

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups").select_related("workflow_profile__manager")


@admin.register(RoleSettings)
class RoleSettingsAdmin(admin.ModelAdmin):
    list_display = ["group", "escalation_manager"]
    autocomplete_fields = ["escalation_manager"]
