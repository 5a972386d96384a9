"""The tasks table loses its (status, due_date) index: every task insert and completion wrote
it, and no query needs it. Open tasks are read through the partial indexes of open tasks
(by assignee, atom, queue, SLA timer) and the open due date, completed ones through
task_completed_idx (tests/processes/test_query_plans.py)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0005_permission_key_indexes_covered'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='taskinstance',
            name='task_status_due_idx',
        ),
    ]
