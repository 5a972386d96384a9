"""Processes aborted before abort cancelled their atoms kept the active ones `active`: their
pages and `visualize` drew them as current steps. Each such atom becomes `cancelled`, what
abort makes of it now. In batches, and safe to run again (an aborted process with no
active atom is left alone). The reverse leaves the rows as they are: `cancelled` is what
abort writes either way."""

from django.db import migrations

BATCH = 500


def cancel_active_atoms(apps, schema_editor):
    ProcessInstance = apps.get_model("processes", "ProcessInstance")
    last = 0
    while True:
        rows = list(ProcessInstance.objects.filter(status="aborted", pk__gt=last).order_by("pk")
                    .values_list("pk", "atom_states")[:BATCH])
        if not rows:
            return
        for pk, states in rows:
            if states and "active" in states.values():
                ProcessInstance.objects.filter(pk=pk).update(
                    atom_states={atom_id: "cancelled" if state == "active" else state
                                 for atom_id, state in states.items()})
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("processes", "0010_event_type_task_cancelled")]

    operations = [migrations.RunPython(cancel_active_atoms, migrations.RunPython.noop)]
