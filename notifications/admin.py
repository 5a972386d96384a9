from django.contrib import admin
from django.db import models

from gndp.json_input import BoundedJSONFormField

from processes.admin import ReadOnlyAdmin

from .models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "recipient", "kind", "title", "created_at", "read_at", "email_status"]
    list_filter = ["kind", "email_status", "in_app"]
    search_fields = ["recipient__username", "title", "process__id"]
    date_hierarchy = "created_at"


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "timezone", "quiet_start", "quiet_end", "updated_at"]
    search_fields = ["user__username"]
    formfield_overrides = {models.JSONField: {"form_class": BoundedJSONFormField}}
