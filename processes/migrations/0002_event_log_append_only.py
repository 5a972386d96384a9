"""The event log is the audit trail: the database itself refuses to change or remove it.

A row trigger does not fire on TRUNCATE, so PostgreSQL gets a statement trigger for that.
"""

from django.db import migrations

from ._append_only import PG_FORWARD, PG_REVERSE, SQLITE_FORWARD, SQLITE_REVERSE


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("processes", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
