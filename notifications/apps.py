from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from processes import events

        from . import relay

        events.subscribe(relay.on_committed)
