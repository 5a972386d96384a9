#!/usr/bin/env bash
# The whole suite. With CI=true it runs against PostgreSQL and Redis on 127.0.0.1 (started
# here if needed) and fails when they are missing. Elsewhere it uses them when they answer
# and falls back to the embedded defaults (SQLite, in-memory layers) when they do not.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# The browser tests drive Debian's Chromium (never a downloaded browser build): installed
# here where it is missing and this may install it; elsewhere they say what they need.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "could not install Debian's chromium: the browser tests will say so" >&2
fi
if [ "${CI:-}" = "true" ]; then
    scripts/services.sh
    export GNDP_REQUIRE_SERVICES=1
fi
if [ -z "${DATABASE_URL:-}" ] && scripts/services.sh >/dev/null 2>&1; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/gndp"
    psql -q -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'gndp'" | grep -q 1 \
        || psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE gndp" >/dev/null
    export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/9}"
fi
echo "database: ${DATABASE_URL:-embedded SQLite}; redis: ${REDIS_URL:-none (in-memory layers)}"

$BIN/python manage.py makemigrations --check --dry-run
$BIN/python -m pytest "$@"
