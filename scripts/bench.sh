#!/usr/bin/env bash
# Benchmarks on a fresh PostgreSQL database; each prints one JSON line. At the end
# bench/check.py compares them with bench/baseline.json and fails on a regression over 25%.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
mkdir -p var/bench
: >var/bench/latest.jsonl
# Each benchmark between two measures of the machine's speed (bench/machine.py), to which
# bench/check.py scales the records: it drifts by the minute on some machines.
yardstick() { .venv/bin/python bench/machine.py >>var/bench/latest.jsonl; }
record() { yardstick; "$@" | tee -a var/bench/latest.jsonl; }
DB=gndp_bench
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
# With Redis, as in service: what follows a commit (live updates, the hand-off of
# notifications to a worker) is a send to Redis, not work done in the request.
redis-cli -n 10 FLUSHDB >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" record .venv/bin/python bench/engine.py
# The same completion counted in instructions under valgrind (its own database, on the same
# server): the figure that the machine's speed does not move. Skipped without valgrind.
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" record .venv/bin/python bench/instructions.py
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" record .venv/bin/python bench/simulation.py
# What a notification worker delivers a second, in the after-commit hand-off's batches.
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" record .venv/bin/python bench/notifications.py

# Two workers completing tasks through the services at once (a team each), 20 s.
DB=gndp_bench_concurrency
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" \
    record .venv/bin/python bench/concurrency.py --workers 2 --seconds 20

DB=gndp_bench_live
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" \
    record .venv/bin/python bench/live.py 2>/dev/null

DB=gndp_bench_graph
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
eval "$(FALKORDB_DIR=var/falkordb-bench scripts/falkordb.sh start)"; export NEO4J_URI NEO4J_USER NEO4J_PASSWORD
redis-cli -n 10 FLUSHDB >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" CELERY_TASK_ALWAYS_EAGER=0 \
    record .venv/bin/python bench/graph.py
FALKORDB_DIR=var/falkordb-bench scripts/falkordb.sh stop; unset NEO4J_URI

# Its own database (gndp_bench_monitoring), seeded at a tenth of the sizes in
# docs/performance.md so that `make bench` stays short; flags raise them.
REDIS_URL="redis://127.0.0.1:6379/10" record .venv/bin/python bench/monitoring.py --active 1000 --events 100000

# bench/api.py drops, recreates and seeds its database itself (owned by a role of the same
# name, limited to 40 connections), bulk-starts 10,000 processes of the demo journey, and runs
# the app under uvicorn.
DB=gndp_bench_api
BENCH_API_DB=$DB DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/14" \
    record .venv/bin/python bench/api.py

# Side by side with Viewflow and SpiffWorkflow on the same journey (bench/peers/). Their
# virtualenvs live under var/peers/ and are installed from PyPI on first use; a peer that
# cannot be installed is reported as skipped in the JSON line, and `make bench` goes on.
record .venv/bin/python bench/peers/run.py

yardstick
.venv/bin/python bench/check.py var/bench/latest.jsonl >&2
