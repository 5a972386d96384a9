#!/usr/bin/env bash
# Start the app (ASGI) and one Celery worker; stop the worker when the app stops.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed_demo
$BIN/python manage.py collectstatic --noinput -v 0

$BIN/celery -A gndp worker --loglevel=INFO --concurrency=2 --beat -s var/celerybeat-schedule >var/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  GNDP Flow is running at http://$HOST:$PORT/
  Demo logins (password demo1234): admin (superuser), manager, olivia and liam (loan officers),
  priya and pablo (processors), uma and ulrich (underwriters), chloe (closer), bob (borrower).
  Admin: http://$HOST:$PORT/admin/   API: http://$HOST:$PORT/api/docs/   Worker log: var/worker.log

MSG
# --no-proxy-headers: the app alone decides whose X-Forwarded-For to believe (GNDP_TRUSTED_PROXIES);
# uvicorn's own default believes it from any client on 127.0.0.1.
$BIN/uvicorn gndp.asgi:application --host "$HOST" --port "$PORT" --log-level warning --no-proxy-headers
