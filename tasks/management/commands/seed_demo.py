from __future__ import annotations

from django.conf import settings
from django.db import transaction

from processes.journey import parse_text
from processes.management.commands._base import ServiceCommand
from processes.versions import publish_journey
from tasks.people import save_workflow_user

DEMO_JOURNEY = settings.BASE_DIR / "journeys" / "fha-purchase.yaml"
DEMO_PASSWORD = "demo1234"

# (user name, roles, manager, staff)
DEMO_USERS = [
    ("manager", [], None, True),
    ("olivia", ["role-loan-officer"], "manager", False),
    ("liam", ["role-loan-officer"], "manager", False),
    ("priya", ["role-processor"], "manager", False),
    ("pablo", ["role-processor"], "manager", False),
    ("uma", ["role-underwriter"], "manager", False),
    ("ulrich", ["role-underwriter"], "manager", False),
    ("chloe", ["role-closer"], "manager", False),
    ("bob", ["role-borrower"], None, False),
]


def grant_manager_admin(username: str) -> None:
    """The demo manager works its team in the admin: it may view and act on tasks and
    processes there, and sees only its team's (no `view_all_*` permission)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    codenames = ["view_taskinstance", "change_taskinstance", "view_processinstance", "change_processinstance",
                 "view_processevent", "view_workflowversion"]
    user = get_user_model().objects.get(username=username)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


class Command(ServiceCommand):
    help = "Load the demo journey and the demo users (safe to run again)."

    def handle(self, *args, **options):
        with transaction.atomic():
            published = publish_journey(parse_text(DEMO_JOURNEY.read_text(encoding="utf-8"), str(DEMO_JOURNEY)))
            version = published.version
            self.stdout.write(f"{version.journey_id} version {version.number} {version.hash}")
            for username, roles, manager, staff in DEMO_USERS:
                save_workflow_user(username, roles=roles, manager=manager, password=DEMO_PASSWORD, staff=staff)
            save_workflow_user("admin", roles=[], password=DEMO_PASSWORD, superuser=True)
            grant_manager_admin("manager")
        names = ", ".join(["admin"] + [user[0] for user in DEMO_USERS])
        self.stdout.write(f"demo users (password {DEMO_PASSWORD}): {names}")
