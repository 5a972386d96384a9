from __future__ import annotations

from processes import validation

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = "Check a published journey, phase or module: errors (exit 1) and warnings."

    def add_arguments(self, parser):
        parser.add_argument("workflow_id")

    def handle(self, *args, workflow_id, **options):
        report = validation.validate_workflow(workflow_id)
        for error in report["errors"]:
            self.stdout.write(f"error: {error}")
        for warning in report["warnings"]:
            self.stdout.write(f"warning: {warning}")
        if report["errors"]:
            self.fail(f"{workflow_id}: {len(report['errors'])} error(s)")
        self.stdout.write(f"{workflow_id}: valid, {len(report['warnings'])} warning(s)")
