#!/usr/bin/env bash
# Start the app (ASGI) and one supervised Celery worker; stop the worker when the app stops.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VAR="${GNDP_VAR_DIR:-var}"

# Redis when one answers (as `make test` uses it), on a database of its own: the broker and
# the live updates then cross processes the way they do in production. Otherwise the
# embedded default: a folder queue (gndp.filequeue) and the in-memory channel layer, whose
# server follows the event log for what the worker commits (processes.tail).
# GNDP_RUN_REDIS_URL names another Redis, or one where nothing listens to run without it.
if [ -z "${REDIS_URL:-}" ]; then
    RUN_REDIS_URL="${GNDP_RUN_REDIS_URL:-redis://127.0.0.1:6379/8}"
    if $BIN/python -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=0.5).ping()' \
        "$RUN_REDIS_URL" 2>/dev/null; then
        export REDIS_URL="$RUN_REDIS_URL"
    fi
fi

$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed_demo
$BIN/python manage.py collectstatic --noinput -v 0

# The supervisor restarts the worker when it dies (with a backoff) and says so here and in
# the worker's log (gndp/supervisor.py).
mkdir -p "$VAR"
$BIN/python -m gndp.supervisor --log "$VAR/worker.log" -- \
    $BIN/celery -A gndp worker --loglevel=INFO --concurrency=2 --beat -s "$VAR/celerybeat-schedule" &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true; wait $WORKER 2>/dev/null || true' EXIT INT TERM

if [ -n "${REDIS_URL:-}" ]; then QUEUE="Redis at $REDIS_URL"; else QUEUE="the folder queue in $VAR/celery-queue (no Redis answered)"; fi
cat <<MSG

  GNDP Flow is running at http://$HOST:$PORT/
  Demo logins (password demo1234): admin (superuser), manager, olivia and liam (loan officers),
  priya and pablo (processors), uma and ulrich (underwriters), chloe (closer), bob (borrower).
  Admin: http://$HOST:$PORT/admin/   API: http://$HOST:$PORT/api/docs/   Worker log: $VAR/worker.log
  Background work: $QUEUE; the worker is restarted when it dies.

MSG
# --no-proxy-headers: the app alone decides whose X-Forwarded-For to believe (GNDP_TRUSTED_PROXIES);
# uvicorn's own default believes it from any client on 127.0.0.1.
$BIN/uvicorn gndp.asgi:application --host "$HOST" --port "$PORT" --log-level warning --no-proxy-headers
