#!/usr/bin/env bash
# Reproduce the drone model: real aerial vendor chips (../shared/data/aerial-vendors-bogota, CC BY 4.0) and
# synthetic aerial chips rendered at the size of one inference tile (labelled with the violation classes and the
# distractors person, motorcycle, car), YOLOv8n fine-tuned by ultralytics (the [train] extra) from a checkpoint
# whose head is widened to the class list with the known rows kept (datasets.train.widen_classes), exported to
# ONNX with a card, then scored on the real Bogota holdout and two synthetic holdouts. Hours on a CPU.
#
#   aerial v2 (2026.12.03) was made so (1,200 chips, 2 epochs from v1, about 100 min on a shared 2-core CPU):
#   git show cb522aa~1:models/aerial/aerial.pt > var/aerial-v1.pt; INIT=var/aerial-v1.pt N_IMAGES=1200 EPOCHS=2 \
#     RUN=aerial-v2 HYP='close_mosaic=1 warmup_epochs=0.3 optimizer=AdamW lr0=0.002' bash scripts/train_aerial.sh
#
#   bash scripts/train_aerial.sh                     # data (skipped when present), train or resume, release, eval
#   ONLY_DATA=1 bash scripts/train_aerial.sh         # just render the datasets
#   EPOCHS=3 FRACTION=0.7 bash scripts/train_aerial.sh   # a shorter first run (v0 was trained so)
#   INIT=models/aerial/aerial.pt RUN=aerial-v1 MODELS_DIR=var/candidates-aerial EPOCHS=3 FRACTION=0.7 \
#     HYP='close_mosaic=1 warmup_epochs=0.3 optimizer=AdamW lr0=0.001' bash scripts/train_aerial.sh   # continue it
#   EPOCHS=1 IMGSZ=160 N_IMAGES=20 N_HOLDOUT=10 N_HOLDOUT_4K=2 WORK=/tmp/aerial-smoke \
#     MODELS_DIR=/tmp/aerial-smoke/models RESULTS_DIR=/tmp/aerial-smoke/results bash scripts/train_aerial.sh
#
# Why these sizes: drone frames (3840x2160) are run tiled (`detect --tile`, `eval --tile`): tiles at the model's
# input size cut at native resolution, without a downscaled full-frame pass (the card says `tiling:
# full_frame_pass: false`: shrunk 6x, a frame shows a ground resolution no chip has, and the pass only added false
# boxes: AP50 0.53 -> 0.50 on tuning frames). So the model trains on what a tile
# looks like: IMGSZ x IMGSZ chips (a random place of a virtual 4K frame) that ultralytics does not rescale, at
# 2..5 cm/px (with the generator's 78-degree camera, a 4K frame from about 50..120 m; the 4K holdout frames are
# 2.5..4 cm/px). Box widths in the 640 px chips, 5th / 50th / 95th percentile: bicycle 14 / 33 / 65 px, stall
# 29 / 64 / 142 px, rooftop shed or new build 88 / 188 / 381 px (in the 4K holdout frames: 20 / 43 / 68,
# 36 / 74 / 142, 151 / 265 / 448). Rendering 1024 px chips at the default 2.5..7 cm/px and training at 640 would
# shrink them by 0.625, to under half of what the tiles show (bicycles ~19 px wide against 43). 640 px tiles cover
# a 4K frame with 32 tiles, fewer pixels than 416 px tiles need (84+1), and hold the largest
# structures whole.
#
# Cost on a 2-core CPU: rendering ~6 chips/s; training ~0.6 s per 640 px image with the machine to itself,
# ~0.95 s while it is shared (so 35..60 min per epoch at N_IMAGES=4000), then ~7 s per tiled 4K frame to evaluate.
#
# Running it again continues where it stopped: existing datasets are kept, an interrupted run resumes from its
# last.pt (`streetwatch train --resume`, same epochs and optimizer state), a finished run is released if it was
# not yet. Everything is deterministic given the seeds; data goes to $WORK (default var/train-aerial), never into
# git. Seeds >= 100 are reserved for holdouts: training uses seed 2, the holdouts 101 (chips) and 102 (4K frames).
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1
SW=${SW:-.venv/bin/streetwatch}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-var/train-aerial}
NAME=${NAME:-aerial}                         # model name: writes $MODELS_DIR/$NAME
MODELS_DIR=${MODELS_DIR:-models}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}
EPOCHS=${EPOCHS:-20}
IMGSZ=${IMGSZ:-640}                          # training size = the model's input = the tile size at inference
BATCH=${BATCH:-16}
N_IMAGES=${N_IMAGES:-4000}                   # training chips (about 10 % go to val); 3..6 per second on 2 busy cores
GSD_M=${GSD_M:-0.02,0.05}                    # ground sampling distance range of the chips, m/px
OBLIQUE=${OBLIQUE:-0.2}                      # share of oblique chips (the rest nadir, like tiled 4K frames)
N_HOLDOUT=${N_HOLDOUT:-500}                  # holdout chips, seed 101, drawn like the training chips
N_HOLDOUT_4K=${N_HOLDOUT_4K:-50}             # holdout 3840x2160 nadir frames at 2.5..4 cm/px, seed 102, run tiled
INIT=${INIT:-models/aerial/aerial.pt}        # head rows of known classes kept by name (widen_classes); new ones start fresh
# Where the initial weights come from, for the card (credits the real photos the street model learnt from).
INIT_NOTE=${INIT_NOTE:-the previous aerial model, itself from synthetic aerial chips and the street model trained on \
bicycles-2000 train (CC BY 4.0, Roboflow Universe user thesis-2-eoeid, project bicycle-3ln52)}
SHARED=${SHARED:-../shared}
BOGOTA=${BOGOTA:-$SHARED/data/aerial-vendors-bogota}   # real chips; train/ is split by source name, test/ is the holdout
BOGOTA_VAL=${BOGOTA_VAL:-0.12}                          # share of Bogota source chips (all 3 copies of each) kept for val
CLASSES="bicycle stall illegal_structure person motorcycle car"   # datasets.synth.classes.AERIAL_CLASSES
# Further ultralytics arguments. Mosaic stays on for all but the last 3 epochs: a third of the chips hold no
# object, and a mosaic packs four chips into one training image.
HYP=${HYP-close_mosaic=3}
# Share of the training chips each epoch uses (ultralytics `fraction`: the first FRACTION of the train split, the
# same images every epoch), for a run that must fit a session: 1.0 uses all.
FRACTION=${FRACTION:-1.0}
if [ "$FRACTION" != "1.0" ]; then
  HYP="${HYP:+$HYP }fraction=$FRACTION"
fi
ONLY_DATA=${ONLY_DATA:-0}
mkdir -p "$WORK"

TRAIN_DATA="$WORK/synth-aerial-s2-${IMGSZ}"
HOLDOUT="$WORK/synth-aerial-holdout-s101-${IMGSZ}"
HOLDOUT_4K="$WORK/synth-aerial-4k-holdout-s102"

# A dataset is complete once its data.yaml is written (last); an interrupted one is rendered again.
synth() {
  local out=$1; shift
  if [ ! -f "$out/data.yaml" ]; then
    rm -rf "$out"
    $SW dataset synth --kind aerial --out "$out" "$@"
  fi
}

# 1. Training chips (seed 2), the size of one inference tile.
synth "$TRAIN_DATA" --n "$N_IMAGES" --seed 2 --size "${IMGSZ}x${IMGSZ}" --gsd-m "$GSD_M" --oblique "$OBLIQUE" \
  --val-fraction 0.1

# 2. Holdouts, never trained on and never used to choose thresholds: chips like the training ones (seed 101), and
#    whole 4K nadir frames (seed 102) as a drone delivers them. Nearly every image goes to the val split.
synth "$HOLDOUT" --n "$N_HOLDOUT" --seed 101 --size "${IMGSZ}x${IMGSZ}" --gsd-m "$GSD_M" --oblique "$OBLIQUE" \
  --val-fraction 0.99
synth "$HOLDOUT_4K" --n "$N_HOLDOUT_4K" --seed 102 --size 3840x2160 --gsd-m 0.025,0.04 --oblique 0 --val-fraction 0.99

# 3. The real vendor chips: train/ split by source name (the part before ".rf.", so the three augmented copies of
#    one chip stay together), test/ kept whole as the holdout, the one class renamed stall.
if [ ! -f "$WORK/bogota-split/data.yaml" ]; then
  rm -rf "$WORK/bogota-split"
  $SW dataset split "$BOGOTA/train/images" --out "$WORK/bogota-split" --val "$BOGOTA_VAL" --seed 0 --classes stall
fi
if [ ! -f "$WORK/bogota-holdout/data.yaml" ]; then
  rm -rf "$WORK/bogota-holdout"
  $PY -c "import sys; from pathlib import Path; from datasets.yolo import split_dataset; \
split_dataset(Path(sys.argv[1]), Path(sys.argv[2]), {'test': 1.0}, 0, ['stall'])" "$BOGOTA/test/images" "$WORK/bogota-holdout"
fi
MERGED="$WORK/aerial-real-synth-${IMGSZ}"
if [ ! -f "$MERGED/data.yaml" ]; then
  rm -rf "$MERGED"
  $SW dataset merge "$WORK/bogota-split/data.yaml" "$TRAIN_DATA/data.yaml" --out "$MERGED" --classes $CLASSES
fi

if [ "$ONLY_DATA" = 1 ]; then
  exit 0
fi

# 3. Train (or resume, or only release a finished run) and export to $MODELS_DIR/$NAME with its card.
# A continuation (INIT=models/aerial/aerial.pt) needs its own RUN: a finished run of the same name is only released.
RUN=${RUN:-$NAME-s2-$IMGSZ}
LAST="$WORK/runs/$RUN/weights/last.pt"
USED=""
if [ "$FRACTION" != "1.0" ]; then
  USED=", of which training used the first $FRACTION of the train split"
fi
TRAINING_DATA="real aerial orthophoto chips of street vendors, 640x640, about 10-15 cm/px (aerial-vendors-bogota \
train split less a validation carve of $BOGOTA_VAL of its source chips by source name; CC BY 4.0, Carlos Gutierrez, \
Roboflow Universe piscinas-2is0y vendedores_ambulantes_pesquisa v8; class vendedor_ambulante as stall) + $N_IMAGES \
synthetic aerial chips ${IMGSZ}x${IMGSZ} (streetwatch datasets/synth aerial, seed 2, GSD $GSD_M m/px, oblique share \
$OBLIQUE; 10 % val$USED) with the distractors person, motorcycle and car labelled from the renderer's truth; \
initialised from $INIT ($INIT_NOTE) with its head widened to the class list (known class rows kept)"
WIDE="$WORK/init-widened.pt"
if [ ! -f "$WIDE" ]; then
  $PY -c "import sys; from pathlib import Path; from datasets.train import widen_classes; \
widen_classes(Path(sys.argv[1]), sys.argv[3].split(), Path(sys.argv[2]))" "$INIT" "$WIDE" "$CLASSES"
fi
state=none
if [ -f "$LAST" ]; then
  # ultralytics strips the optimizer from last.pt when a run ends: with it the run was interrupted.
  state=$($PY -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); \
print('partial' if c.get('optimizer') is not None else 'finished')" "$LAST")
fi
case "$state" in
  none)
    $SW train --data "$MERGED/data.yaml" --name "$RUN" --model "$WIDE" --imgsz "$IMGSZ" --epochs "$EPOCHS" \
      --batch "$BATCH" --runs-dir "$WORK/runs" --release "$NAME" --models-dir "$MODELS_DIR" ${HYP:+--hyp $HYP} \
      --training-data "$TRAINING_DATA" --no-tiled-full-pass ;;
  partial)
    # ultralytics resumes with the run's own arguments; the others only describe the run in the card.
    $SW train --data "$MERGED/data.yaml" --name "$RUN" --model "$WIDE" --imgsz "$IMGSZ" --epochs "$EPOCHS" \
      --batch "$BATCH" --runs-dir "$WORK/runs" --resume --release "$NAME" --models-dir "$MODELS_DIR" \
      --training-data "$TRAINING_DATA" --no-tiled-full-pass ;;
  finished)
    [ -f "$MODELS_DIR/$NAME/card.yaml" ] || \
      $SW release --weights "$WORK/runs/$RUN/weights/best.pt" --data "$MERGED/data.yaml" --name "$NAME" \
        --imgsz "$IMGSZ" --models-dir "$MODELS_DIR" --training-data "$TRAINING_DATA" --no-tiled-full-pass ;;
esac

# 4. Holdouts, recorded in the card: the real vendor chips (never trained on, never used to choose anything),
#    synthetic chips as the model sees them, and synthetic 4K frames the way the service runs them (tiles at the
#    model's input size with 20 % overlap; the card turns the full-frame pass off).
CARD="$MODELS_DIR/$NAME/card.yaml"
$SW eval --model "$CARD" --data "$WORK/bogota-holdout/data.yaml" --split test --tag bogota \
  --results-dir "$RESULTS_DIR" --card-key holdout_bogota_vendors_test --imagery real
$SW eval --model "$CARD" --data "$HOLDOUT/data.yaml" --split val --tag synth-s101 \
  --results-dir "$RESULTS_DIR" --card-key holdout_synth_aerial_chips_seed101 --imagery synthetic
$SW eval --model "$CARD" --data "$HOLDOUT_4K/data.yaml" --split val --tile --tag tiled-s102 \
  --results-dir "$RESULTS_DIR" --card-key holdout_synth_aerial_4k_tiled_seed102 --imagery synthetic
