#!/usr/bin/env bash
# Make sure PostgreSQL and Redis on 127.0.0.1 answer; start them when they are installed
# but stopped. Exit non-zero when one cannot be reached.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG || (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if ! redis_up && command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/gndp-redis.log || true
    for _ in $(seq 30); do redis_up && break; sleep 1; done
fi

status=0
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; status=1; }
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; status=1; }
exit $status
