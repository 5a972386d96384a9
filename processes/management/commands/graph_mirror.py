from __future__ import annotations

from processes.graph.mirror import mirror_events, mirror_store

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Mirror process state into Neo4j for the events after the graph's cursor "
            "(what the periodic job does), then print how far it got.")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="events read per batch")
        parser.add_argument("--max-events", type=int, default=None, help="stop after about this many events")

    def handle(self, *args, batch_size, max_events, **options):
        store = mirror_store()
        if store is None:
            self.fail("the runtime mirror needs the Neo4j graph store: set NEO4J_URI")
        run = mirror_events(store, batch_size=batch_size, max_events=max_events)
        self.stdout.write(
            f"mirrored {run.events} events of {run.processes} processes ({run.changed} changed); "
            f"cursor at event {run.cursor}"
        )
