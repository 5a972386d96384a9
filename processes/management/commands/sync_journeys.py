from __future__ import annotations

from processes.sync import sync_journeys

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Publish the journeys the graph store holds (Neo4j when NEO4J_URI is set): each is "
            "validated as a file is, and a new workflow version is published for each that changed. "
            "One line per journey; exit 1 when any is rejected.")

    def handle(self, *args, **options):
        report = sync_journeys()
        for item in report.journeys:
            self.stdout.write(item.line)
        self.stdout.write(report.summary)
        if report.rejected:
            self.fail(f"{len(report.rejected)} journey(s) rejected")
