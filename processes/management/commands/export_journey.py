from __future__ import annotations

from processes.errors import NotFound
from processes.journey import dump
from processes.versions import latest_version

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Print a journey's latest published version as a journey file (loads back to the same hash)."

    def add_arguments(self, parser):
        parser.add_argument("journey_id")
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args, journey_id, format, **options):
        version = latest_version(journey_id)
        if version is None:
            raise NotFound(f"no journey named {journey_id!r}")
        self.stdout.write(dump(version.definition, format), ending="" )
