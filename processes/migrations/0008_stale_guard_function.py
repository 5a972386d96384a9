"""The guard of a step's conditional updates raises in SQL (`steps.writes`): a step's
writes can then travel with their transaction's COMMIT, which must not happen after a guard
that refused. PostgreSQL only: other databases run a step's writes one by one and check
each update's row count."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION gndp_stale(what text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'GN409', MESSAGE = what;
END $$
"""
REVERSE = "DROP FUNCTION IF EXISTS gndp_stale(text)"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE)


class Migration(migrations.Migration):
    dependencies = [("processes", "0007_event_process_index_covered")]
    operations = [migrations.RunPython(forward, reverse)]
