#!/usr/bin/env bash
# Install streetwatch (inference only: no torch) into .venv and run the main job on the built-in defaults:
# `streetwatch demo` (the service with one scenario camera, cases and the review page). Arguments are passed
# on, e.g. `bash scripts/demo.sh --port 8001 --scenario mixed_demo --speed 4`. Ctrl-C stops it.
# Each run starts without cases, so `--exit-after-cases N` works again on a second run; `--keep` keeps the
# earlier cases (a stall found again joins its case, and counts as this run's).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .

export YOLO_OFFLINE=1
exec .venv/bin/streetwatch demo "$@"
