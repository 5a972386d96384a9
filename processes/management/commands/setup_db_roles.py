from __future__ import annotations

import os

from django.db import DEFAULT_DB_ALIAS, connections

from processes import db_roles

from ._base import ServiceCommand


class Command(ServiceCommand):
    help = ("PostgreSQL: create the owner role that runs migrations and the app role that runs the "
            "app, give every table to the owner, and grant the app read and write everywhere but on "
            "the audit table, where it may only append and read. Run as a superuser (DATABASE_URL), "
            "then run the app with DATABASE_URL as the app role and DATABASE_OWNER_URL as the owner. "
            "Passwords, if the server wants them, come from GNDP_DB_OWNER_PASSWORD and "
            "GNDP_DB_APP_PASSWORD. Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="gndp_owner", help="the role that owns the tables (default gndp_owner)")
        parser.add_argument("--app", default="gndp_app", help="the role the app connects as (default gndp_app)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="the connection to run as (a superuser)")

    def handle(self, *args, owner, app, database, **options):
        connection = connections[database]
        try:
            done = db_roles.setup_roles(
                connection, owner=owner, app=app,
                owner_password=os.environ.get("GNDP_DB_OWNER_PASSWORD") or None,
                app_password=os.environ.get("GNDP_DB_APP_PASSWORD") or None,
            )
        except ValueError as exc:
            self.fail(str(exc))
        for line in done:
            self.stdout.write(line)
