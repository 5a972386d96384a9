from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from processes import events

        from . import live, relay  # noqa: F401 - live: the bells other processes ring reach this one

        events.subscribe(relay.on_committed)
