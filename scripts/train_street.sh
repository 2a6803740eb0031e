#!/usr/bin/env bash
# Reproduce the shipped street-camera model: synthetic street scenes + real bicycles-2000 photos,
# YOLOv8n trained by ultralytics (the [train] extra), exported to ONNX with a card. Hours on a CPU.
#
#   bash scripts/train_street.sh                      # from scratch (bicycle pretraining, then street)
#   INIT=models/street/street.pt bash scripts/train_street.sh   # continue from the shipped checkpoint
#
# Everything is deterministic given the seeds; data goes to $WORK (default var/train), never into git.
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1
SW=${SW:-.venv/bin/streetwatch}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-var/train}
SHARED=${STREETWATCH_SHARED:-$(cd .. && pwd)/shared}
EPOCHS=${EPOCHS:-30}
IMGSZ=${IMGSZ:-416}
# Further ultralytics arguments, e.g. HYP="warmup_epochs=1 close_mosaic=3" when continuing a trained checkpoint.
HYP=${HYP:-}
mkdir -p "$WORK"

# 1. Synthetic street scenes (seed 1; seeds >= 100 are reserved for synthetic holdouts).
[ -f "$WORK/synth-street-s1/data.yaml" ] || \
  $SW dataset synth --kind street --out "$WORK/synth-street-s1" --n 2000 --seed 1 --shared "$SHARED"

# 2. Small objects: a 1280x720 scene trained at 416 px shrinks 3x, so a 40 px bicycle is learnt at 13 px. Scenes
#    of another seed (3) cut into native-resolution 640 px tiles (the detect_tiled grid, at most 2 labelled tiles
#    per scene) show it at 26 px, the size `model.input_wh: [832, 480]` or tiled inference gives it.
[ -f "$WORK/synth-street-s3/data.yaml" ] || \
  $SW dataset synth --kind street --out "$WORK/synth-street-s3" --n 800 --seed 3 --shared "$SHARED"
[ -f "$WORK/synth-street-s3-tiles640/data.yaml" ] || \
  $SW dataset tile "$WORK/synth-street-s3/data.yaml" --out "$WORK/synth-street-s3-tiles640" --tile-px 640 \
    --max-per-image 2 --keep-empty 0.05 --seed 3

#    v3 adds 416 px tiles of the same scenes (another tile seed), which show far bikes at their native size.
[ -f "$WORK/synth-street-s3-tiles416/data.yaml" ] || \
  $SW dataset tile "$WORK/synth-street-s3/data.yaml" --out "$WORK/synth-street-s3-tiles416" --tile-px 416 \
    --max-per-image 2 --keep-empty 0.05 --seed 4

# 3. Merge with the real photos (bicycles-2000 train/val; its test split stays a holdout).
[ -f "$WORK/street-v3/data.yaml" ] || \
  $SW dataset merge "$SHARED/data/bicycles-2000/data.yaml" "$WORK/synth-street-s1/data.yaml" \
    "$WORK/synth-street-s3-tiles640/data.yaml" "$WORK/synth-street-s3-tiles416/data.yaml" --out "$WORK/street-v3" \
    --classes bicycle stall ebike

# 4. Initial weights: the shipped checkpoint, or a bicycle pretraining from scratch (320 px).
INIT=${INIT:-}
if [ -z "$INIT" ]; then
  $SW train --data "$SHARED/data/bicycles-2000/data.yaml" --name bike320 --model yolov8n.yaml \
    --imgsz 320 --epochs 60 --runs-dir "$WORK/runs"
  INIT="$WORK/runs/bike320/weights/best.pt"
fi

# 5. Street model, exported and carded into models/street.
$SW train --data "$WORK/street-v3/data.yaml" --name street-v3 --model "$INIT" --imgsz "$IMGSZ" \
  --epochs "$EPOCHS" --runs-dir "$WORK/runs" --release street ${HYP:+--hyp $HYP} \
  --training-data "bicycles-2000 train split (1,406 real photos, CC BY 4.0, Roboflow Universe user thesis-2-eoeid, project bicycle-3ln52) + 2,000 synthetic street scenes (streetwatch datasets/synth, seed 1) + 1,349 native-resolution 640 px and 1,422 native 416 px tiles of 800 synthetic street scenes (seed 3)"

# 6. Holdouts, recorded in the card: bicycles-2000 test (all, and photos whose source never appears in train),
#    and synthetic street scenes from a seed never trained on (100).
$SW eval --model street --data "$SHARED/data/bicycles-2000/data.yaml" --split test \
  --card-key holdout_bicycles2000_test
$SW eval --model street --data "$SHARED/data/bicycles-2000/data.yaml" --split test --unseen-sources --tag unseen \
  --card-key holdout_bicycles2000_test_unseen_sources
[ -f "$WORK/synth-street-holdout-s100/data.yaml" ] || \
  $SW dataset synth --kind street --out "$WORK/synth-street-holdout-s100" --n 300 --seed 100 --val-fraction 0.99 \
    --shared "$SHARED"
$SW eval --model street --data "$WORK/synth-street-holdout-s100/data.yaml" --split val --tag synth-s100 \
  --card-key holdout_synth_street_seed100
# 7. Real footage: the hand-labelled bicycle clip (benchmarks/real_footage.py adds the hard-negative clips).
[ -f "$WORK/footage-parking-lot-bicycle/data.yaml" ] || \
  $SW dataset from-footage parking-lot-bicycle --out "$WORK/footage-parking-lot-bicycle" --shared "$SHARED"
$SW eval --model street --data "$WORK/footage-parking-lot-bicycle/data.yaml" --split test --tag real-footage \
  --card-key real_footage_parking_lot_bicycle
