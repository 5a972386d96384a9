"""PostgreSQL row-level security on the process, task and event tables (gndp.rls).

Each policy mirrors tasks.access (visible_tasks, visible_processes) and the event history's
rule (a process's events are visible with the process). The helper functions are SECURITY
DEFINER, so that a policy reading another protected table sees it whole instead of through
that table's own policy, and they run as the role that migrated (the owner), which the
policies do not bind. Nothing happens on SQLite, which keeps the application's scoping.
"""

from django.db import migrations

HELPERS = r"""
CREATE OR REPLACE FUNCTION gndp_rls_engine() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('gndp.scope', true), '') = 'engine'
$$;

CREATE OR REPLACE FUNCTION gndp_rls_user() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN coalesce(current_setting('gndp.user_id', true), '') ~ '^[0-9]+$'
                THEN current_setting('gndp.user_id', true)::bigint END
$$;

-- ModelBackend's has_perm: an active superuser, or the permission given to the user or a group.
CREATE OR REPLACE FUNCTION gndp_rls_has_perm(uid bigint, app text, perm text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM auth_user u WHERE u.id = uid AND u.is_active AND (
            u.is_superuser
            OR EXISTS (SELECT 1 FROM auth_user_user_permissions up
                       JOIN auth_permission p ON p.id = up.permission_id
                       JOIN django_content_type ct ON ct.id = p.content_type_id
                       WHERE up.user_id = uid AND ct.app_label = app AND p.codename = perm)
            OR EXISTS (SELECT 1 FROM auth_user_groups ug
                       JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
                       JOIN auth_permission p ON p.id = gp.permission_id
                       JOIN django_content_type ct ON ct.id = p.content_type_id
                       WHERE ug.user_id = uid AND ct.app_label = app AND p.codename = perm)))
$$;

-- tasks.access.visible_tasks
CREATE OR REPLACE FUNCTION gndp_rls_task_visible(task_id bigint, assignee bigint, task_role text, uid bigint)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT uid IS NOT NULL AND (
        assignee = uid
        OR (assignee IS NULL AND task_role IN (SELECT g.name FROM auth_group g
                                               JOIN auth_user_groups ug ON ug.group_id = g.id
                                               WHERE ug.user_id = uid))
        OR assignee IN (SELECT pr.user_id FROM tasks_profile pr WHERE pr.manager_id = uid)
        OR EXISTS (SELECT 1 FROM tasks_taskuserobjectpermission op
                   JOIN auth_permission p ON p.id = op.permission_id
                   JOIN django_content_type ct ON ct.id = p.content_type_id
                   WHERE op.content_object_id = task_id AND op.user_id = uid
                     AND ct.app_label = 'tasks' AND p.codename = 'view_taskinstance')
        OR gndp_rls_has_perm(uid, 'tasks', 'view_all_tasks'))
$$;

-- tasks.access.visible_processes
CREATE OR REPLACE FUNCTION gndp_rls_process_visible(pid bigint, uid bigint)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT uid IS NOT NULL AND (
        EXISTS (SELECT 1 FROM processes_processinstance pi WHERE pi.id = pid AND (
                    pi.started_by_id = uid
                    OR pi.started_by_id IN (SELECT pr.user_id FROM tasks_profile pr WHERE pr.manager_id = uid)))
        OR EXISTS (SELECT 1 FROM tasks_taskinstance t WHERE t.process_id = pid AND (
                       t.assigned_to_id = uid OR t.completed_by_id = uid
                       OR t.assigned_to_id IN (SELECT pr.user_id FROM tasks_profile pr WHERE pr.manager_id = uid)))
        OR EXISTS (SELECT 1 FROM processes_processuserobjectpermission op
                   JOIN auth_permission p ON p.id = op.permission_id
                   JOIN django_content_type ct ON ct.id = p.content_type_id
                   WHERE op.content_object_id = pid AND op.user_id = uid
                     AND ct.app_label = 'processes' AND p.codename = 'view_processinstance')
        OR gndp_rls_has_perm(uid, 'processes', 'view_all_processes'))
$$;
"""

POLICIES = {
    "processes_processinstance": "gndp_rls_process_visible(id, gndp_rls_user())",
    "tasks_taskinstance": "gndp_rls_task_visible(id, assigned_to_id, role, gndp_rls_user())",
    "processes_processevent": "gndp_rls_process_visible(process_id, gndp_rls_user())",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(HELPERS)
    for table, visible in POLICIES.items():
        # Not FORCEd: the owner (migrations, the retention role) and superusers are not bound.
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"DROP POLICY IF EXISTS gndp_visible ON {table}")
        schema_editor.execute(
            f"CREATE POLICY gndp_visible ON {table} USING (gndp_rls_engine() OR {visible}) "
            f"WITH CHECK (gndp_rls_engine() OR {visible})"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in POLICIES:
        schema_editor.execute(f"DROP POLICY IF EXISTS gndp_visible ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for signature in ("gndp_rls_process_visible(bigint, bigint)", "gndp_rls_task_visible(bigint, bigint, text, bigint)",
                      "gndp_rls_has_perm(bigint, text, text)", "gndp_rls_user()", "gndp_rls_engine()"):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature}")


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("processes", "0005_event_log_append_only_again"),
        ("tasks", "0003_task_queue_open_idx"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forward, backward)]
