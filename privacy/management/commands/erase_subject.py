from __future__ import annotations

import json

from privacy import services

from ._subject import SubjectCommand


class Command(SubjectCommand):
    help = ("Erase a data subject (GDPR Art. 17): pseudonymise the personal data of every process whose "
            "subject key holds --field-value (context, task results, comments; attachments and "
            "notifications deleted), or a user's account (--user). The event log stays as it is and "
            "verifiable; each process gets a privacy.erased event without personal data. Prints the "
            "erasure's reference and counts, never the subject.")

    def handle(self, *args, field_value, user, **options):
        if field_value is not None:
            erasure = services.erase_subject(value=field_value)
        else:
            erasure = services.erase_user(user=self.user(user))
        self.stdout.write(f"erasure {erasure.reference}: {erasure.processes} processes "
                          f"{json.dumps(erasure.counts, sort_keys=True)}")
