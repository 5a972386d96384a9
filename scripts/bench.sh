#!/usr/bin/env bash
# Benchmarks on a fresh PostgreSQL database; each prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
DB=gndp_bench
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" .venv/bin/python bench/engine.py

DB=gndp_bench_live
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" REDIS_URL="redis://127.0.0.1:6379/10" \
    .venv/bin/python bench/live.py 2>/dev/null

DB=gndp_bench_graph
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
eval "$(FALKORDB_DIR=var/falkordb-bench scripts/falkordb.sh start)"; export NEO4J_URI NEO4J_USER NEO4J_PASSWORD
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" .venv/bin/python bench/graph.py
FALKORDB_DIR=var/falkordb-bench scripts/falkordb.sh stop; unset NEO4J_URI
