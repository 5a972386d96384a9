from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("processes", "0002_event_log_append_only")]

    operations = [
        migrations.AddField(
            model_name="processinstance",
            name="predicted_finish",
            field=models.DateTimeField(blank=True, help_text="median predicted completion time", null=True),
        ),
        migrations.AddField(
            model_name="processinstance",
            name="at_risk",
            field=models.BooleanField(default=False, help_text="predicted to finish after the journey's SLA target"),
        ),
        migrations.AddField(
            model_name="processinstance",
            name="predicted_at",
            field=models.DateTimeField(blank=True, help_text="when the prediction was last computed", null=True),
        ),
    ]
