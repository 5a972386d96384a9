from __future__ import annotations

import json

from processes.management.commands._base import ServiceCommand
from privacy import services


class Command(ServiceCommand):
    help = ("Remove the data of finished processes past their journey's retention (privacy.retention in "
            "the journey, or a retention policy in the admin). Safe to run again; Celery beat runs it hourly.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="at most this many processes per run")
        parser.add_argument("--dry-run", action="store_true", help="only count what is due")

    def handle(self, *args, limit, dry_run, **options):
        if dry_run:
            self.stdout.write(f"{services.expired_processes().count()} processes past their retention")
            return
        erasure = services.purge_expired(limit=limit)
        if erasure is None:
            self.stdout.write("nothing past its retention")
            return
        self.stdout.write(f"purge {erasure.reference}: {erasure.processes} processes "
                          f"{json.dumps(erasure.counts, sort_keys=True)}")
