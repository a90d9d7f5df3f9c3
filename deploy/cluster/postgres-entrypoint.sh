#!/bin/sh
# PostgreSQL's start (deploy/cluster/postgres.Dockerfile): as root, hand the data directory to the postgres user and
# drop to it; on an empty data directory, create the cluster, the role and the database from POSTGRES_USER,
# POSTGRES_DB and POSTGRES_PASSWORD; then run the server, listening on every address (the stack's internal network),
# with the command's settings.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is empty: set it (the app's DATABASE_URL carries the same)" >&2
    exit 78
fi
if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    # The socket and lock file's directory, a tmpfs that comes owned by root.
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    # Clients come over the network, with the password.
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        pg_ctl --wait --options="-c listen_addresses=''" start >/dev/null
        createdb --username="$user" --owner="$user" "$db"
        pg_ctl --wait --mode=fast stop >/dev/null
    fi
    echo "postgres-entrypoint: created database $db for $user"
fi
# The command's settings follow, as the official image takes them (compose.yaml: `postgres -c name=value ...`).
if [ "${1:-}" = postgres ]; then
    shift
fi
exec postgres -c listen_addresses='*' "$@"
