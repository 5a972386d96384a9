"""R4b connection_budget: one server under a little concurrency stays within a fixed budget
of database connections and answers every request.

Under ASGI every request runs in a thread of its own, so persistent connections
(`CONN_MAX_AGE > 0`) leave one connection behind per request thread until the garbage
collector happens upon it: eight clients against one uvicorn process held dozens, and a
little more load exhausted PostgreSQL's max_connections with "sorry, too many clients
already", 500s for this app and for everything else on that server. The settings turn
persistent connections off and bound each process with psycopg's pool; this test fails
with `conn_max_age=60` put back.

So that the drill cannot starve other databases on the same PostgreSQL, the server connects
as a role of its own with a CONNECTION LIMIT; the leak then meets that limit instead.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from django.db import connection

from tests.reliability import journeys

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUDGET = 20  # the role's CONNECTION LIMIT
CLIENTS = 8
REQUESTS = 30  # per client


def limited_role(cluster) -> str:
    """A login role with CONNECTION LIMIT BUDGET and the app's rights on the test database;
    returns its DATABASE_URL. Dropped at teardown, after the servers are gone."""
    role = f"gndp_rel_app_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER CONNECTION LIMIT {BUDGET}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")

    def drop() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")

    cluster.cleanups.append(drop)
    return cluster.database_url.replace("postgres://postgres@", f"postgres://{role}@")


def test_r4b_concurrent_clients_stay_within_a_connection_budget(cluster, publish, rel_clerk):
    publish(journeys.FLOW)
    server = cluster.server("r4b", redis=False, eager=True, DATABASE_URL=limited_role(cluster)).wait_ready()
    codes: Counter = Counter()
    peak = [0]
    lock = threading.Lock()

    def client(i: int) -> None:
        for n in range(REQUESTS):
            if n % 3:
                response = rel_clerk.get(server.url, "/api/tasks/inbox")
            else:
                response = rel_clerk.post(server.url, "/api/processes/start", {"journey_id": "rel-flow"})
            with lock:
                codes[response.status_code] += 1

    def watch(stop: threading.Event) -> None:
        from django.db import connection as own

        while not stop.wait(0.05):
            with own.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rel-r4b'")
                peak[0] = max(peak[0], cursor.fetchone()[0])
        own.close()

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    [t.start() for t in clients]
    [t.join() for t in clients]
    stop.set()
    watcher.join()

    assert not [code for code in codes if code >= 500], (codes, f"peak connections {peak[0]}")
    assert peak[0] <= CLIENTS + 2, f"{peak[0]} connections for {CLIENTS} clients"
