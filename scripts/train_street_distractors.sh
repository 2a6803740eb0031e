#!/usr/bin/env bash
# Street model with the distractor classes (street v4): the shipped street model fine-tuned to also say
# "person", "motorcycle" and "car", so that the things real footage showed it calling bikes and stalls (people at
# a table, cars, motorbikes) get classes of their own, which no rule takes (datasets/synth/classes.py).
#
#   bash scripts/train_street_distractors.sh                       # writes var/candidates/street; compare, then
#   MODELS_DIR=models bash scripts/train_street_distractors.sh     # ... or release over the shipped model
#
# Data: bicycles-2000 train with people, motorbikes and cars pseudo-labelled by two COCO teachers that must
# agree (`streetwatch dataset pseudo-label`; the photos' own bicycle labels are kept as they are), synthetic street
# scenes whose people and cars are labelled from the renderer's truth (`dataset synth --distractors`, seed 5) and
# native 416 px tiles of them (small, far objects at their real size). Validation: bicycles-2000 val (real) and
# the synthetic val split. The holdouts (bicycles-2000 test, synthetic seed 100, the labelled real clip) are
# never trained on. Running it again resumes: datasets are kept once complete, an interrupted run resumes from
# its last.pt. Data goes to $WORK, never into git.
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1
SW=${SW:-.venv/bin/streetwatch}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-var/train-street-v4}
NAME=${NAME:-street}
MODELS_DIR=${MODELS_DIR:-var/candidates}
RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
SHARED=${SHARED:-../shared}
B2K=$SHARED/data/bicycles-2000
EPOCHS=${EPOCHS:-3}
IMGSZ=${IMGSZ:-416}
BATCH=${BATCH:-16}
N_SYNTH=${N_SYNTH:-1000}
INIT=${INIT:-models/street/street.pt}
HYP=${HYP-close_mosaic=1 warmup_epochs=0 optimizer=AdamW lr0=0.001}
CLASSES="bicycle stall ebike person motorcycle car"   # datasets.synth.classes.STREET_CLASSES_WITH_DISTRACTORS
RUN=${RUN:-street-v4}
mkdir -p "$WORK"

# 1. Pseudo-labels on the real photos (train split only; val and test keep their own labels and stay as they are).
TEACHER="$WORK/b2k-distractors"
if [ ! -f "$TEACHER/data.yaml" ]; then
  rm -rf "$TEACHER"
  $SW dataset pseudo-label "$B2K/data.yaml" --out "$TEACHER" --teacher yolox-nano-coco --teacher yolov8n-int8-coco
fi
# ... with bicycles-2000 val as the real validation split (absolute paths: its labels sit beside its images).
REAL="$WORK/b2k-distractors-with-val"
mkdir -p "$REAL"
$PY - "$TEACHER" "$B2K" "$REAL/data.yaml" <<'PY'
import sys
from pathlib import Path
import yaml
teacher, b2k, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), Path(sys.argv[3])
data = yaml.safe_load((teacher / "data.yaml").read_text())
data.update(path=str(teacher), val=str(b2k / "val" / "images"))
out.write_text(yaml.safe_dump(data, sort_keys=False))
PY

# 2. Synthetic street scenes with their people and cars labelled, and native 416 px tiles of them.
SYN="$WORK/synth-street-d5"
if [ ! -f "$SYN/data.yaml" ]; then
  rm -rf "$SYN"
  $SW dataset synth --kind street --distractors --out "$SYN" --n "$N_SYNTH" --seed 5 --shared "$SHARED"
fi
TILES="$WORK/synth-street-d5-tiles416"
if [ ! -f "$TILES/data.yaml" ]; then
  rm -rf "$TILES"
  $SW dataset tile "$SYN/data.yaml" --out "$TILES" --tile-px 416 --max-per-image 1 --keep-empty 0.05 --seed 6
fi
MERGED="$WORK/street-v4"
if [ ! -f "$MERGED/data.yaml" ]; then
  rm -rf "$MERGED"
  $SW dataset merge "$REAL/data.yaml" "$SYN/data.yaml" "$TILES/data.yaml" --out "$MERGED" --classes $CLASSES
fi

# 3. Fine-tune from the shipped model, its head widened to the new class list (known rows kept by name).
WIDE="$WORK/init-widened.pt"
if [ ! -f "$WIDE" ]; then
  $PY -c "import sys; from pathlib import Path; from datasets.train import widen_classes; \
widen_classes(Path(sys.argv[1]), sys.argv[3].split(), Path(sys.argv[2]))" "$INIT" "$WIDE" "$CLASSES"
fi
TRAINING_DATA="bicycles-2000 train split (1,406 real photos, CC BY 4.0, Roboflow Universe user thesis-2-eoeid, project \
bicycle-3ln52) with person, motorcycle and car pseudo-labelled by two COCO detectors that had to agree (YOLOX-nano and \
YOLOv8n int8 from ../shared/models), + $N_SYNTH synthetic street scenes (streetwatch datasets/synth, seed 5) with \
people and cars labelled from the renderer's truth, + native 416 px tiles of them (one per scene); fine-tuned from \
$INIT (street v3, see its card) with its head widened to the six classes"
LAST="$WORK/runs/$RUN/weights/last.pt"
state=none
if [ -f "$LAST" ]; then
  state=$($PY -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); \
print('partial' if c.get('optimizer') is not None else 'finished')" "$LAST")
fi
case "$state" in
  none)
    $SW train --data "$MERGED/data.yaml" --name "$RUN" --model "$WIDE" --imgsz "$IMGSZ" --epochs "$EPOCHS" \
      --batch "$BATCH" --runs-dir "$WORK/runs" --release "$NAME" --models-dir "$MODELS_DIR" ${HYP:+--hyp $HYP} \
      --training-data "$TRAINING_DATA" ;;
  partial)
    $SW train --data "$MERGED/data.yaml" --name "$RUN" --model "$WIDE" --imgsz "$IMGSZ" --epochs "$EPOCHS" \
      --batch "$BATCH" --runs-dir "$WORK/runs" --resume --release "$NAME" --models-dir "$MODELS_DIR" \
      --training-data "$TRAINING_DATA" ;;
  finished)
    [ -f "$MODELS_DIR/$NAME/card.yaml" ] || \
      $SW release --weights "$WORK/runs/$RUN/weights/best.pt" --data "$MERGED/data.yaml" --name "$NAME" \
        --imgsz "$IMGSZ" --models-dir "$MODELS_DIR" --training-data "$TRAINING_DATA" ;;
esac

# 4. Holdouts, recorded in the card: real photos (all, and sources never seen in train), the labelled real clip.
CARD="$MODELS_DIR/$NAME/card.yaml"
mkdir -p "$RESULTS_DIR"
$SW eval --model "$CARD" --data "$B2K/data.yaml" --split test --results-dir "$RESULTS_DIR" \
  --card-key holdout_bicycles2000_test --imagery real
$SW eval --model "$CARD" --data "$B2K/data.yaml" --split test --unseen-sources --tag unseen \
  --results-dir "$RESULTS_DIR" --card-key holdout_bicycles2000_test_unseen_sources --imagery real
