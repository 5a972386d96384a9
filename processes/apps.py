from django.apps import AppConfig


class ProcessesConfig(AppConfig):
    name = "processes"
    verbose_name = "Processes"

    def ready(self) -> None:
        from . import checks, handlers, live  # noqa: F401  (checks registers the security checks; live, the tail)
        from .writes import cache_step_statement_parsing

        handlers.load_handler_modules()
        cache_step_statement_parsing()
