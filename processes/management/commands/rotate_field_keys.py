from __future__ import annotations

from processes import sensitive
from processes.key_rotation import rotate_stored_values

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("Re-encrypt every stored sensitive value (process contexts, task results, stored idempotent "
            "responses) that an older key of GNDP_FIELD_KEYS wrote, with the first key. Put the new key "
            "first, keep the old ones, run this, then drop the old keys. Safe to run again.")

    def handle(self, *args, **options):
        try:
            report = rotate_stored_values()
        except sensitive.UndecryptableField as exc:
            self.fail(f"cannot rotate: {exc}; put the key that wrote it back into GNDP_FIELD_KEYS")
        self.stdout.write(
            f"rotated {report.values} values: {report.processes} process contexts, {report.tasks} task results, "
            f"{report.responses} stored responses; every sensitive value is now under key {sensitive.keyring().primary_kid}"
        )
