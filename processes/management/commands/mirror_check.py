from __future__ import annotations

from processes.graph.mirror import mirror_store, reconcile

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Compare every process in the database with the runtime mirror in Neo4j and report the "
            "difference: exit 1 when there is one. With --repair, make the graph match the database.")

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="report only, exit 1 on any difference (the default)")
        mode.add_argument("--repair", action="store_true", help="repair what differs; exit 0 once repaired")

    def handle(self, *args, repair, **options):
        store = mirror_store()
        if store is None:
            self.fail("the runtime mirror needs the Neo4j graph store: set NEO4J_URI")
        report = reconcile(store, repair=repair)
        self.stdout.write(f"processes compared: {report.processes}")
        self.stdout.write(f"process nodes missing: {report.missing_nodes}")
        self.stdout.write(f"process status differing: {report.status_differences}")
        self.stdout.write(f"relationships missing: {report.missing_relationships}")
        self.stdout.write(f"relationships extra: {report.extra_relationships}")
        self.stdout.write(f"process nodes without a process: {report.orphan_nodes}")
        if report.unmirrorable:
            self.stdout.write(f"relationships left out, their atom is not in the graph: {report.unmirrorable}")
        repaired = " (repaired)" if report.repaired and report.differences else ""
        self.stdout.write(f"differences: {report.differences}{repaired}")
        if not repair and report.differences:
            self.fail(f"the graph differs from the database in {report.differences} places; "
                      "mirror_check --repair repairs it")
