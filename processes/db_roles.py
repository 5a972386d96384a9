"""Separate database roles on PostgreSQL: an owner that migrates, an app role that runs.

The owner role owns every table (and so could alter or drop the audit table's triggers);
the app role owns nothing, may read and write the other tables, and may only INSERT and
SELECT the audit table: UPDATE, DELETE and TRUNCATE are refused by privilege, whatever
becomes of the triggers. `manage.py setup_db_roles` creates the roles and hands existing
objects to the owner; with `DATABASE_OWNER_URL` set, `manage.py migrate` connects as the
owner and grants the app role its rights again afterwards. Without either, everything runs
as the one role of DATABASE_URL (SQLite, development).
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

OWNER_ALIAS = "owner"
# Tables the app role may only append to and read.
APPEND_ONLY_TABLES = ("processes_processevent",)
SCHEMA = "public"


def _q(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def _require_postgresql(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor != "postgresql":
        raise ValueError(f"database roles need PostgreSQL, not {connection.vendor}")


def setup_roles(connection: BaseDatabaseWrapper, *, owner: str, app: str,
                owner_password: str | None = None, app_password: str | None = None) -> list[str]:
    """Create (or update) both roles in the connection's database, give every object of the
    schema to the owner, and grant the app its rights. Run as a superuser; safe to repeat.
    Returns what was done, one line per step."""
    _require_postgresql(connection)
    if owner == app:
        raise ValueError("the owner and the app role must differ")
    done: list[str] = []
    with connection.cursor() as cursor:
        for role, password in ((owner, owner_password), (app, app_password)):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # No inheritance and no special powers: the app role must never act as the owner.
            statement = f"{verb} ROLE {_q(connection, role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
            if password:
                # A utility statement takes no bound parameters: quote the literal client-side.
                statement += " PASSWORD " + sql.Literal(password).as_string(connection.connection)
            cursor.execute(statement)
            done.append(f"{'created' if verb == 'CREATE' else 'updated'} role {role}")
        cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app, owner])
        if cursor.fetchone()[0]:
            raise ValueError(f"role {app} is a member of {owner}: it would act as the owner")
        cursor.execute("SELECT current_database()")
        database = cursor.fetchone()[0]
        q_owner, q_app, q_db = _q(connection, owner), _q(connection, app), _q(connection, database)
        cursor.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {q_db} TO {q_owner}, {q_app}")
        cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO {q_owner}")
        cursor.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {q_app}")
        cursor.execute(f"REVOKE CREATE ON SCHEMA {SCHEMA} FROM {q_app}, PUBLIC")
        moved = _give_objects_to(cursor, connection, owner)
        done.append(f"gave {moved} objects of schema {SCHEMA} to {owner}")
    done.extend(grant_app_rights(connection, owner=owner, app=app))
    return done


def _give_objects_to(cursor, connection: BaseDatabaseWrapper, owner: str) -> int:
    cursor.execute(
        """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
             AND pg_get_userbyid(c.relowner) <> %s
             AND NOT (c.relkind = 'S' AND EXISTS (  -- a column's sequence follows its table
                 SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))""",
        [SCHEMA, owner],
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    relations = cursor.fetchall()
    for name, kind in relations:
        cursor.execute(f"ALTER {kinds[kind]} {SCHEMA}.{_q(connection, name)} OWNER TO {_q(connection, owner)}")
    cursor.execute(
        """SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s""",
        [SCHEMA, owner],
    )
    functions = [row[0] for row in cursor.fetchall()]
    for signature in functions:
        cursor.execute(f"ALTER FUNCTION {signature} OWNER TO {_q(connection, owner)}")
    return len(relations) + len(functions)


def grant_app_rights(connection: BaseDatabaseWrapper, *, owner: str, app: str) -> list[str]:
    """The app role's rights: read and write every table but the append-only ones, which it
    may only read and append to. Also for the tables later migrations create."""
    _require_postgresql(connection)
    q_owner, q_app = _q(connection, owner), _q(connection, app)
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {q_app}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {q_app}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {q_owner} IN SCHEMA {SCHEMA} "
                       f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {q_app}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {q_owner} IN SCHEMA {SCHEMA} "
                       f"GRANT USAGE, SELECT ON SEQUENCES TO {q_app}")
        for table in APPEND_ONLY_TABLES:
            cursor.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.{table}"])
            if cursor.fetchone()[0] is None:
                continue  # not migrated yet: `migrate` grants again when it is
            q_table = f"{SCHEMA}.{_q(connection, table)}"
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {q_table} FROM {q_app}, PUBLIC")
            cursor.execute(f"GRANT SELECT, INSERT ON {q_table} TO {q_app}")
    return [f"granted {app} read and write on {SCHEMA}, append and read only on {', '.join(APPEND_ONLY_TABLES)}"]
