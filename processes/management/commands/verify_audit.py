from __future__ import annotations

from pathlib import Path

from processes import audit

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Check the event log's hash chain: exit 0 and OK when every process's history is whole, "
            "else exit 1 with the first broken link (a changed, removed or unchained event) on one line. "
            "--heads FILE writes each process's newest (seq, hash) for keeping outside the database; "
            "--against FILE checks, later, that the log still holds every head recorded there.")

    def add_arguments(self, parser):
        parser.add_argument("--process", type=int, help="check only this process")
        parser.add_argument("--heads", type=Path, help="write the chain heads to this file after a good check")
        parser.add_argument("--against", type=Path, help="also check the heads recorded in this file")

    def handle(self, *args, process, heads, against, **options):
        report = audit.verify(process_id=process)
        if report.broken:
            self.fail(f"BROKEN: {report.broken}")
        if against is not None:
            recorded = [(int(pid), int(seq), row_hash) for pid, seq, row_hash in
                        (line.split() for line in against.read_text().splitlines() if line.strip())]
            if process is not None:
                recorded = [head for head in recorded if head[0] == process]
            missing = audit.check_heads(recorded)
            if missing:
                self.fail(f"BROKEN: {missing}")
        if heads is not None:
            heads.write_text("".join(f"{pid} {seq} {row_hash}\n" for pid, seq, row_hash in audit.heads()))
        legacy = f"; {report.unchained} earlier events predate the chain" if report.unchained else ""
        anchored = f"; all {len(recorded)} recorded heads present" if against is not None else ""
        self.stdout.write(f"OK: {report.events} events of {report.processes} processes, hash chain intact{legacy}{anchored}")
