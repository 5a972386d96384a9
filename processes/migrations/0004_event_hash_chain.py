"""The event log's hash chain: each event's place in its process's history and its hash.

The timestamp is set when the event is built (not at INSERT) because the hash covers it.
SQLite rebuilds the table for these changes, which drops its triggers: 0005 puts them back.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('processes', '0003_prediction'),
    ]

    operations = [
        migrations.AddField(
            model_name='processevent',
            name='row_hash',
            field=models.CharField(blank=True, default='', help_text='SHA-256 of the previous hash and this event', max_length=64),
        ),
        migrations.AddField(
            model_name='processevent',
            name='seq',
            field=models.PositiveIntegerField(blank=True, help_text="position in the process's hash chain", null=True),
        ),
        migrations.AlterField(
            model_name='processevent',
            name='timestamp',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddConstraint(
            model_name='processevent',
            constraint=models.UniqueConstraint(fields=('process', 'seq'), name='event_process_seq_unique'),
        ),
    ]
