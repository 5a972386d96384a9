#!/usr/bin/env bash
# The whole suite. With CI=true it runs against PostgreSQL and Redis on 127.0.0.1 (started
# here if needed) and fails when they are missing. Elsewhere it uses them when they answer
# and falls back to the embedded defaults (SQLite, in-memory layers) when they do not.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

if [ "${CI:-}" = "true" ]; then
    scripts/services.sh
    export GNDP_REQUIRE_SERVICES=1
fi
if [ -z "${DATABASE_URL:-}" ] && scripts/services.sh >/dev/null 2>&1; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/gndp"
    export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/9}"
fi
echo "database: ${DATABASE_URL:-embedded SQLite}; redis: ${REDIS_URL:-none (in-memory layers)}"

$BIN/python manage.py makemigrations --check --dry-run
$BIN/python -m pytest "$@"
