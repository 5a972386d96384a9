from __future__ import annotations

from processes.management.commands._base import ServiceCommand
from tasks.people import save_workflow_user


class Command(ServiceCommand):
    help = "Create or update a workflow user with its roles and manager; prints its API token last."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--roles", default="", help="comma-separated role ids (auth groups)")
        parser.add_argument("--manager", help="user name of the manager")
        parser.add_argument("--password")
        parser.add_argument("--email", default="")
        parser.add_argument("--staff", action="store_true")
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--capacity", type=int)
        availability = parser.add_mutually_exclusive_group()
        availability.add_argument("--available", dest="available", action="store_true", default=None)
        availability.add_argument("--unavailable", dest="available", action="store_false")

    def handle(self, *args, username, roles, manager, password, email, staff, superuser, capacity, available,
               **options):
        result = save_workflow_user(
            username,
            roles=[role.strip() for role in roles.split(",") if role.strip()],
            manager=manager,
            password=password,
            staff=staff,
            superuser=superuser,
            capacity=capacity,
            available=available,
            email=email,
        )
        verb = "created" if result.created else "updated"
        groups = ", ".join(sorted(result.user.groups.values_list("name", flat=True))) or "no roles"
        self.stdout.write(f"{verb} {username} ({groups})")
        self.stdout.write(result.token)
