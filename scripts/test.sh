#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run it. Used by CI (.ci/run) and by developers.
# Exits non-zero when installation or any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# GStreamer RTSP server (real RTSP in tests) and ffmpeg: Debian packages, installed once.
bash scripts/install_system_deps.sh
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# [cluster] is Ray (the multi-node tests start a real local cluster). [train] pulls ultralytics and a CUDA build of torch (~6 GB; it runs on CPU): the training tests need it.
.venv/bin/python -m pip install --quiet -e '.[dev,train,cluster]'

export YOLO_OFFLINE=1

# Lint first (configuration in pyproject.toml, [tool.ruff]): a finding fails the run before the slow tests start.
.venv/bin/ruff check .

# The store tests run on SQLite and on PostgreSQL: unless STREETWATCH_TEST_PG_URL names a server already,
# start a throw-away cluster (scripts/pg_test_server.sh) and remove it when the tests end, however they end.
# A cluster that cannot start fails the run: the PostgreSQL tests must not quietly skip.
if [ -z "${STREETWATCH_TEST_PG_URL:-}" ]; then
  pg_env=$(bash scripts/pg_test_server.sh start) || {
    echo "test.sh: could not start the PostgreSQL test server (see above); to use another server set" \
         "STREETWATCH_TEST_PG_URL=postgresql+psycopg://..." >&2
    exit 1
  }
  eval "$pg_env"
  stop_pg() {
    local status=$?
    bash scripts/pg_test_server.sh stop "$STREETWATCH_TEST_PG_DIR" || true
    exit "$status"
  }
  trap stop_pg EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi

# Tests that need ../shared (real models, photos, footage) skip with a reason when it is absent.
status=0
.venv/bin/python -m pytest "$@" || status=$?
exit "$status"
