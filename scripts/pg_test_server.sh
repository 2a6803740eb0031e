#!/usr/bin/env bash
# A throw-away PostgreSQL server for the test suite (the store tests run on SQLite and on PostgreSQL).
#
#   eval "$(bash scripts/pg_test_server.sh start)"   # exports STREETWATCH_TEST_PG_URL and STREETWATCH_TEST_PG_DIR
#   bash scripts/pg_test_server.sh stop "$STREETWATCH_TEST_PG_DIR"
#   bash scripts/pg_test_server.sh run -- .venv/bin/python -m pytest tests/service/test_db.py   # start, run, stop
#
# `start` runs initdb into a new temporary folder, starts the server listening only on a unix socket in that
# folder (no TCP port, so no port clashes and nothing reachable from outside), with trust authentication, and
# creates the database `streetwatch_test` owned by the superuser `streetwatch`. Only the `export` lines go to
# stdout; progress and errors go to stderr. The URL looks like
#   postgresql+psycopg://streetwatch@/streetwatch_test?host=/tmp/streetwatch-pg.AbC123
# `stop` stops that server and removes the folder (only a folder `start` made: it checks for its marker).
#
# initdb and postgres refuse to run as root: as root the server runs as the `postgres` system user (created
# by Debian's postgresql package), or as a system user `streetwatch-pg` created on first use when there is no
# `postgres` user. As any other user it runs as that user.
# Binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/*/bin (Debian/Ubuntu), else initdb on PATH.
# scripts/install_system_deps.sh installs the `postgresql` package.
set -euo pipefail

MARKER=streetwatch-pg-test-cluster
DB_NAME=streetwatch_test
DB_USER=streetwatch

die() { echo "pg_test_server: $*" >&2; exit 1; }
say() { echo "pg_test_server: $*" >&2; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
    echo "$PG_BINDIR"
    return 0
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
    return 0
  fi
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  die "no PostgreSQL server binaries (initdb, postgres, pg_ctl): install Debian's postgresql package" \
      "(bash scripts/install_system_deps.sh) or set PG_BINDIR"
}

# The user the server runs as: ourselves, or an unprivileged system user when we are root.
server_user() {
  if [ "$(id -u)" -ne 0 ]; then
    id -un
  elif id -u postgres >/dev/null 2>&1; then
    echo postgres
  else
    if ! id -u streetwatch-pg >/dev/null 2>&1; then
      say "creating system user streetwatch-pg (initdb and postgres refuse to run as root)"
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin streetwatch-pg >&2 \
        || die "could not create the system user streetwatch-pg"
    fi
    echo streetwatch-pg
  fi
}

# Run a command as the server user (from / so that an unreadable working directory does not matter).
as_server_user() {
  local user=$1
  shift
  if [ "$(id -u)" -ne 0 ]; then
    (cd / && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$user" -- "$@")
  else
    (cd / && su -s /bin/sh "$user" -c "$(printf '%q ' "$@")")
  fi
}

start() {
  local bindir user base dir
  bindir=$(find_bindir)
  user=$(server_user)
  base=${STREETWATCH_PG_TMPDIR:-${TMPDIR:-/tmp}}
  dir=$(mktemp -d "$base/streetwatch-pg.XXXXXX") || die "cannot make a folder under $base"
  touch "$dir/$MARKER"
  # Any failure from here on removes the half-made cluster.
  HALF_MADE=$dir
  trap 'status=$?; if [ $status -ne 0 ]; then stop_dir "$HALF_MADE" quiet || true; fi' EXIT
  if [ "$(id -u)" -eq 0 ]; then
    chown "$user" "$dir"
    as_server_user "$user" test -w "$dir" \
      || die "$dir is not writable by $user (a parent folder is not searchable?): set STREETWATCH_PG_TMPDIR"
  fi
  chmod 755 "$dir"  # the socket lives here; the data folder itself is 0700

  say "initdb ($bindir) as $user in $dir"
  if ! as_server_user "$user" "$bindir/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust --no-locale \
      -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi
  # Test settings: durability off (the cluster is thrown away), no TCP, socket in $dir.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
unix_socket_permissions = 0777
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
  if ! as_server_user "$user" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
    cat "$dir/server.log" >&2 || true
    die "the server did not start"
  fi
  if ! as_server_user "$user" "$bindir/createdb" -h "$dir" -U "$DB_USER" "$DB_NAME" >&2; then
    cat "$dir/server.log" >&2 || true
    die "createdb $DB_NAME failed"
  fi
  trap - EXIT
  local url="postgresql+psycopg://$DB_USER@/$DB_NAME?host=$dir"
  say "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready: $url (psql -h $dir -U $DB_USER $DB_NAME)"
  printf 'export STREETWATCH_TEST_PG_URL=%q\n' "$url"
  printf 'export STREETWATCH_TEST_PG_DIR=%q\n' "$dir"
}

stop_dir() {
  local dir=$1 quiet=${2:-}
  [ -n "$dir" ] && [ -d "$dir" ] || { [ -n "$quiet" ] || say "no cluster folder ${dir:-(empty)}"; return 0; }
  [ -f "$dir/$MARKER" ] || die "$dir was not made by pg_test_server.sh start: not touching it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    local bindir user
    bindir=$(find_bindir)
    user=$(stat -c %U "$dir/data")
    as_server_user "$user" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || as_server_user "$user" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2 \
      || say "could not stop the server in $dir (see $dir/server.log)"
  fi
  rm -rf "$dir"
  [ -n "$quiet" ] || say "stopped and removed $dir"
}

run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "run: no command"
  local env_lines
  env_lines=$(start)
  eval "$env_lines"
  trap 'stop_dir "$STREETWATCH_TEST_PG_DIR"' EXIT
  local rc=0
  "$@" || rc=$?
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop_dir "${2:-${STREETWATCH_TEST_PG_DIR:-}}" ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 start | stop DIR | run -- COMMAND..." ;;
esac
