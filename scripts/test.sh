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
# [train] pulls ultralytics and a CUDA build of torch (~6 GB; it runs on CPU): the training tests need it.
.venv/bin/python -m pip install --quiet -e '.[dev,train]'

export YOLO_OFFLINE=1
# Tests that need ../shared (real models, photos, footage) skip with a reason when it is absent.
exec .venv/bin/python -m pytest "$@"
