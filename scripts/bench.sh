#!/usr/bin/env bash
# Benchmarks on a fresh PostgreSQL database; each prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
DB=gndp_bench
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" .venv/bin/python bench/engine.py
