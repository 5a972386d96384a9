from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from processes.errors import ServiceError


class ServiceCommand(BaseCommand):
    """A command whose refusals are one line each on stderr and exit status 1, never a
    traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ServiceError as exc:
            problems = exc.details.get("problems") if isinstance(exc.details, dict) else None
            for line in problems or [exc.message]:
                self.stderr.write(str(line))
            sys.exit(1)

    def fail(self, *lines: str) -> None:
        for line in lines:
            self.stderr.write(line)
        sys.exit(1)
