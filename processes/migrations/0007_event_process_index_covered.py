"""The event log's process key loses its own index: (process, id) and (process, seq) lead
with it, and every step inserts several events. SQLite rebuilds the table to do this, which
drops its append-only triggers: they are created again (as in 0005)."""

import django.db.models.deletion
from django.db import migrations, models

from ._append_only import SQLITE_FORWARD, SQLITE_REVERSE


def restore_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REVERSE + SQLITE_FORWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("processes", "0006_chain_head_on_process")]
    operations = [
        migrations.RunPython(migrations.RunPython.noop, restore_triggers),  # undoing: after the rebuild back
        migrations.AlterField(
            model_name="processevent",
            name="process",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                    related_name="events", to="processes.processinstance"),
        ),
        migrations.RunPython(restore_triggers, migrations.RunPython.noop),
    ]
