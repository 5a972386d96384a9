from __future__ import annotations

from django.contrib import admin, messages

from processes.admin import ReadOnlyAdmin

from . import services
from .models import Erasure, RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("journey_id", "retention", "updated_at")
    search_fields = ("journey_id",)
    actions = ["purge_now"]

    @admin.action(description="Purge finished processes past their retention now")
    def purge_now(self, request, queryset):
        erasure = services.purge_expired(requested_by=request.user)
        count = erasure.processes if erasure else 0
        self.message_user(request, f"Purged the data of {count} processes past their retention.", messages.SUCCESS)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ("reference", "kind", "processes", "requested_by", "created_at")
    list_filter = ("kind",)
    readonly_fields = ("reference", "kind", "processes", "counts", "requested_by", "created_at")
