from django.apps import AppConfig


class ProcessesConfig(AppConfig):
    name = "processes"
    verbose_name = "Processes"

    def ready(self) -> None:
        # checks registers the security checks; live_access, the sockets' re-checks; live, the tail
        from . import checks, handlers, live, live_access  # noqa: F401
        from steps import tricks
        from steps.writes import cache_step_statement_parsing

        handlers.load_handler_modules()
        if tricks.on("statement_cache"):
            cache_step_statement_parsing()
        live_access.connect_signals()  # open WebSockets hear of sign-outs and account changes
