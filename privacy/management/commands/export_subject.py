from __future__ import annotations

import json

from privacy import services

from ._subject import SubjectCommand


class Command(SubjectCommand):
    help = ("Export everything held about a data subject as one JSON bundle (GDPR Art. 15 and 20): the "
            "processes whose subject key holds --field-value, with their context, task results, comments, "
            "attachments (with their content), notifications and history; or a user's account and activity "
            "(--user). Writes to --output, else to standard output.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--output", help="a file to write the bundle to")

    def handle(self, *args, field_value, user, output, **options):
        bundle = services.export_subject(field_value) if field_value is not None else services.export_user(self.user(user))
        text = json.dumps(bundle, indent=2, ensure_ascii=False, default=str)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            self.stderr.write(f"wrote {output}")
        else:
            self.stdout.write(text)
