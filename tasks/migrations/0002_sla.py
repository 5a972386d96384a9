# SLA clocks on tasks: the sweep's fire-once stamps, the paused clock, and their indexes.

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='taskinstance',
            name='sla_breached_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='taskinstance',
            name='sla_paused_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='taskinstance',
            name='sla_paused_for',
            field=models.DurationField(default=datetime.timedelta(0)),
        ),
        migrations.AddField(
            model_name='taskinstance',
            name='sla_warned_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(condition=models.Q(('kind', 'human'), ('sla_paused_at__isnull', True), ('status__in', ['pending', 'in_progress']), ('due_date__isnull', False), ('sla_warned_at__isnull', True)), fields=['due_date'], name='task_sla_warn_idx'),
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(condition=models.Q(('kind', 'human'), ('sla_paused_at__isnull', True), ('status__in', ['pending', 'in_progress']), ('escalate_at__isnull', False), ('sla_breached_at__isnull', True)), fields=['escalate_at'], name='task_sla_breach_idx'),
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(models.Case(models.When(status__in=['pending', 'in_progress'], then=models.F('due_date')), output_field=models.DateTimeField()), name='task_open_due_idx'),
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'in_progress'])), fields=['atom_id'], name='task_open_atom_idx'),
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(condition=models.Q(('status', 'completed')), fields=['completed_at', 'atom_id'], name='task_completed_idx'),
        ),
    ]
