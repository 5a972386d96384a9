"""`migrate`, run as the owner role when DATABASE_OWNER_URL is set (processes.db_roles)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections

from processes import db_roles


class Command(DjangoMigrate):
    help = (DjangoMigrate.help + " With DATABASE_OWNER_URL set, connects as that owner role and then "
            "grants the app role (DATABASE_URL) its rights on what it created.")

    def handle(self, *args, **options):
        if options["database"] == DEFAULT_DB_ALIAS and self._owner_migrates():
            options["database"] = db_roles.OWNER_ALIAS
            super().handle(*args, **options)
            owner, app = (settings.DATABASES[alias]["USER"] for alias in (db_roles.OWNER_ALIAS, DEFAULT_DB_ALIAS))
            for line in db_roles.grant_app_rights(connections[db_roles.OWNER_ALIAS], owner=owner, app=app):
                if options["verbosity"] >= 1:
                    self.stdout.write(line)
            return
        super().handle(*args, **options)

    @staticmethod
    def _owner_migrates() -> bool:
        """Only for the same database under another role: a test database made for the
        default connection alone (NAME changed by the test runner) migrates as that one."""
        if db_roles.OWNER_ALIAS not in settings.DATABASES:
            return False
        owner, default = connections[db_roles.OWNER_ALIAS].settings_dict, connections[DEFAULT_DB_ALIAS].settings_dict
        return (owner["NAME"], owner.get("HOST"), owner.get("PORT")) == (default["NAME"], default.get("HOST"), default.get("PORT"))
