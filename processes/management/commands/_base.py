from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from gndp import db_faults
from processes.errors import ServiceError


class ServiceCommand(BaseCommand):
    """A command whose refusals are one line each on stderr and exit status 1, never a
    traceback. A database that is gone (or kept aborting the transaction) is one line too,
    exit status 1: nothing about the command was wrong, and run again later it may succeed."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ServiceError as exc:
            problems = exc.details.get("problems") if isinstance(exc.details, dict) else None
            for line in problems or [exc.message]:
                self.stderr.write(str(line))
            sys.exit(1)
        except Exception as exc:
            if not db_faults.is_transient(exc):
                raise
            detail = " ".join(str(exc).split())[:200]
            self.stderr.write(f"{db_faults.error_message(db_faults.error_code(exc))} ({detail})")
            sys.exit(1)

    def fail(self, *lines: str) -> None:
        for line in lines:
            self.stderr.write(line)
        sys.exit(1)
