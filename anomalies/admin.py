from django.contrib import admin

from processes.admin import ReadOnlyAdmin

from .models import Anomaly


@admin.register(Anomaly)
class AnomalyAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "process", "atom_id", "score", "detected_at", "resolved_at", "acknowledged_at"]
    list_filter = ["kind"]
    search_fields = ["process__id", "atom_id", "reason"]
    date_hierarchy = "detected_at"
