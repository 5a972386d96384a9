from __future__ import annotations

from django.contrib.auth import get_user_model

from processes.management.commands._base import ServiceCommand


class SubjectCommand(ServiceCommand):
    """A command about one data subject: a borrower by the value of their journey's subject
    key, or a user of the app by user name or id."""

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--field-value", help="the value of the journeys' subject key (e.g. the borrower's email)")
        group.add_argument("--user", help="a user name or id")

    def user(self, name_or_id: str):
        users = get_user_model().objects
        found = users.filter(username=name_or_id).first()
        if found is None and name_or_id.isdigit():
            found = users.filter(pk=int(name_or_id)).first()
        if found is None:
            self.fail(f"no user {name_or_id!r}")
        return found
