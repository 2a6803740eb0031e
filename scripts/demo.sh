#!/usr/bin/env bash
# Install streetwatch (inference only: no torch) into .venv and run the main job on the built-in defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .

export YOLO_OFFLINE=1
SHARED=${STREETWATCH_SHARED:-$(cd .. && pwd)/shared}
OUT=${STREETWATCH_DEMO_OUT:-var/demo}
mkdir -p "$OUT"
if [ ! -d "$SHARED/data/bicycles-2000/val/images" ]; then
  echo "demo: sample input not found at $SHARED (set STREETWATCH_SHARED)" >&2
  exit 2
fi
# Sample input: twelve real street photos from the bicycles-2000 validation split.
mapfile -t IMAGES < <(ls "$SHARED"/data/bicycles-2000/val/images/*.jpg | head -n 12)
.venv/bin/streetwatch models
.venv/bin/streetwatch detect "${IMAGES[@]}" --model yolox-nano-coco --json --save-annotated "$OUT/annotated" \
  | tee "$OUT/detections.jsonl"
echo "demo: $(wc -l < "$OUT/detections.jsonl") images, annotated copies in $OUT/annotated" >&2
