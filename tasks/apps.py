from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


def ensure_profile(sender, instance, created, raw=False, **kwargs):
    """Every user has a profile: routing stamps it on each assignment."""
    if created and not raw:
        from .models import Profile

        Profile.objects.get_or_create(user=instance)


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks and people"

    def ready(self) -> None:
        post_save.connect(ensure_profile, sender=settings.AUTH_USER_MODEL, dispatch_uid="tasks.ensure_profile")
