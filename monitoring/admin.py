from django.contrib import admin

from . import sla
from .models import AtomSLAOverride


@admin.register(AtomSLAOverride)
class AtomSLAOverrideAdmin(admin.ModelAdmin):
    list_display = ("journey_id", "atom_id", "target", "escalation", "note", "updated_at")
    list_filter = ("journey_id",)
    search_fields = ("journey_id", "atom_id", "note")

    def save_model(self, request, obj, form, change):
        previous = AtomSLAOverride.objects.filter(pk=obj.pk).values_list("journey_id", "atom_id").first()
        super().save_model(request, obj, form, change)
        # Open tasks take the new times now, not at the next sweep; an override moved to
        # another atom gives the old one its journey times back.
        if previous and previous != (obj.journey_id, obj.atom_id):
            sla.retime_atom(*previous)
        moved = sla.retime_atom(obj.journey_id, obj.atom_id)
        self.message_user(request, f"{moved} open task deadline(s) re-timed.")

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        sla.retime_atom(obj.journey_id, obj.atom_id)

    def delete_queryset(self, request, queryset):
        pairs = list(queryset.values_list("journey_id", "atom_id"))
        super().delete_queryset(request, queryset)
        for journey_id, atom_id in pairs:
            sla.retime_atom(journey_id, atom_id)
