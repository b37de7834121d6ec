#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests, on loopback only.
#   scripts/pg-scratch.sh start DIR PORT   creates the cluster in DIR (must not exist or be empty), starts it on
#                                          127.0.0.1:PORT (its socket in DIR too) and prints the URL of a
#                                          password-authenticated role that may create databases
#   scripts/pg-scratch.sh stop DIR         stops it (immediately: the data is thrown away) and removes DIR
#   scripts/pg-scratch.sh crash DIR        stops it as a crash does (`pg_ctl stop -m immediate`), keeping DIR
#   scripts/pg-scratch.sh restart DIR PORT starts it again on DIR and PORT after a crash (it recovers its WAL)
# PostgreSQL refuses to run as root: as root, DIR is handed to the `postgres` user and every server command
# runs as that user. Debian's binaries are under /usr/lib/postgresql/VERSION/bin, not on PATH.
set -euo pipefail

role=openai_proxy_test
password=openai-proxy-test

usage() { echo "usage: $0 start DIR PORT | stop DIR | crash DIR | restart DIR PORT" >&2; exit 2; }

bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$found" ] && command -v pg_ctl >/dev/null; then found=$(dirname "$(readlink -f "$(command -v pg_ctl)")"); fi
  [ -n "$found" ] || { echo "pg-scratch: no PostgreSQL server found (Debian: apt-get install postgresql)" >&2; exit 1; }
  echo "$found"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

serve() {
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
    -o "-p $1 -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
}

command=${1:-}
dir=${2:-}
[ -n "$command" ] && [ -n "$dir" ] || usage
bin=$(bindir)

case "$command" in
  start)
    port=${3:-}
    [ -n "$port" ] || usage
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || { echo "pg-scratch: $dir is not empty" >&2; exit 1; }
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    superuser=$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U "$superuser" --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # The superuser only through the socket in DIR; everyone else over loopback TCP with a password.
    printf 'local all %s trust\nhost all all 127.0.0.1/32 scram-sha-256\n' "$superuser" >"$dir/data/pg_hba.conf"
    serve "$port" || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/psql" -h "$dir" -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE ROLE $role LOGIN CREATEDB PASSWORD '$password'" >/dev/null \
      || { as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null; exit 1; }
    echo "postgresql://$role:$password@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  crash)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  restart)
    port=${3:-}
    [ -n "$port" ] || usage
    serve "$port" || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  *) usage ;;
esac
