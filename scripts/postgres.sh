#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print its SQLAlchemy URL on stdout
# (everything else goes to stderr), so callers can do: URL=$(scripts/postgres.sh).
#
# Installs PostgreSQL with apt-get when it is missing. Idempotent: when the cluster is already
# running it only prints the URL. The cluster lives in $LOUPE_PG_DIR (default /tmp/loupe-pg),
# listens on 127.0.0.1 only, trusts every local connection and runs with fsync off: it is for
# tests, never for data you want to keep. As root it runs as the `postgres` OS user (initdb
# refuses root); as anyone else (a CI runner) it runs as that user.
set -euo pipefail

PG_DIR=${LOUPE_PG_DIR:-/tmp/loupe-pg}
PORT=${LOUPE_PG_PORT:-55432}
DB=loupe_test

log() { echo "postgres.sh: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The cluster's owner runs the server; tools like psql connect over TCP as anyone.
as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN=$(find_bin)
if [ -z "$BIN" ]; then
    log "installing PostgreSQL"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
        as_root apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    }
    BIN=$(find_bin)
fi

mkdir -p "$PG_DIR"
if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
# Two test runs starting at once must not both initialise or start the cluster.
exec 9>"$PG_DIR/.lock"
flock 9

DATA=$PG_DIR/data
if as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
    PORT=$(cat "$PG_DIR/port")
else
    if [ ! -f "$DATA/PG_VERSION" ]; then
        log "initialising a cluster in $DATA"
        as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >&2
        cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
    log "starting on 127.0.0.1:$PORT"
    # 9>&-: the server must not inherit (and hold forever) the lock.
    as_owner "$BIN/pg_ctl" start -w -D "$DATA" -l "$PG_DIR/server.log" -o "-p $PORT" >&2 9>&-
    echo "$PORT" >"$PG_DIR/port"
fi

PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
if [ -z "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    "${PSQL[@]}" -c "CREATE DATABASE $DB" >&2
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
