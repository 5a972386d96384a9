from __future__ import annotations

from processes.graph.mirror import mirror_store, reconcile

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Compare every process in the database with the runtime mirror in Neo4j and repair "
            "what differs. With --check, repair nothing and exit 1 when anything differs.")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="report only; exit 1 on any difference")

    def handle(self, *args, check, **options):
        store = mirror_store()
        if store is None:
            self.fail("the runtime mirror needs the Neo4j graph store: set NEO4J_URI")
        report = reconcile(store, repair=not check)
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
        if check and report.differences:
            self.fail(f"the graph differs from the database in {report.differences} places")
