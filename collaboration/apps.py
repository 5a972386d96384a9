from django.apps import AppConfig


class CollaborationConfig(AppConfig):
    name = "collaboration"
    verbose_name = "Comments and attachments"

    def ready(self) -> None:
        from . import live  # noqa: F401 - the discussions other processes commit reach this one's sockets
