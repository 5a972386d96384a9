"""SQLite drops a table's triggers when it rebuilds the table (0004 did): create the event
log's append-only triggers again. PostgreSQL altered the table in place and kept them."""

from django.db import migrations

from ._append_only import SQLITE_FORWARD, SQLITE_REVERSE


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REVERSE + SQLITE_FORWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("processes", "0004_event_hash_chain")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
