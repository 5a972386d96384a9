from django.apps import AppConfig


class ProcessesConfig(AppConfig):
    name = "processes"
    verbose_name = "Processes"

    def ready(self) -> None:
        from . import checks, handlers, live_access  # noqa: F401  (checks registers the security checks)
        from .writes import cache_step_statement_parsing

        handlers.load_handler_modules()
        cache_step_statement_parsing()
        live_access.connect_signals()  # open WebSockets hear of sign-outs and account changes
