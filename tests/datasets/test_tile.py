"""Tiling a YOLO dataset: which boxes a tile labels, where they land, splits kept, same output every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.tile import tile_dataset, tile_labels
from datasets.yolo import DatasetError, load_dataset, write_data_yaml, write_labels
from detector.runtime.tiling import Tile

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "box, min_visible, kept_xyxy, dropped",
    [
        ((10, 10, 30, 30), 0.5, [10, 10, 30, 30], 0),      # wholly inside
        ((90, 10, 110, 30), 0.5, [90, 10, 100, 30], 0),    # half inside: kept, clipped at the border
        ((90, 10, 110, 30), 0.6, None, 1),                 # half inside but 60 % asked: a dropped sliver
        ((95, 95, 115, 115), 0.2, None, 1),                # a corner (1/16 of the box) only
        ((120, 10, 140, 30), 0.5, None, 0),                # outside: neither kept nor dropped
        ((100, 10, 120, 30), 0.5, None, 0),                # touching the border is not overlapping
    ],
)
def test_a_tile_labels_boxes_mostly_inside_it_and_clips_them(box, min_visible, kept_xyxy, dropped):
    labels = tile_labels(np.array([box], float), np.array([3]), Tile(0, 0, 100, 100), min_visible)
    assert labels.n_dropped == dropped
    if kept_xyxy is None:
        assert len(labels.class_id) == 0
    else:
        assert labels.xyxy.tolist() == [kept_xyxy]
        assert labels.class_id.tolist() == [3]


def test_boxes_are_shifted_into_tile_pixels():
    labels = tile_labels(np.array([[250.0, 130, 270, 150]]), np.array([0]), Tile(200, 100, 300, 200), 0.5)
    assert labels.xyxy.tolist() == [[50.0, 30.0, 70.0, 50.0]]


def _dataset(root: Path, n_train: int = 3, n_val: int = 1) -> Path:
    """640×360 images with a bright square per labelled box (so a tile's pixels can be checked against its label)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            img = np.full((360, 640, 3), 40, np.uint8)
            boxes = []
            for _ in range(3):
                x, y = int(rng.integers(0, 600)), int(rng.integers(0, 320))
                img[y:y + 40, x:x + 40] = 230
                boxes.append([(x + 20) / 640, (y + 20) / 360, 40 / 640, 40 / 360])
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / split / f"{split}{i}.png"), img)
            write_labels(root / "labels" / split / f"{split}{i}.txt", [0, 1, 0], boxes)
    return write_data_yaml(root, ["bicycle", "stall"], ["train", "val"])


def test_tiles_keep_splits_and_their_labels_cover_the_objects(tmp_path):
    src = _dataset(tmp_path / "src")
    out = tile_dataset(src, tmp_path / "tiles", 200, keep_empty_frac=0.0, min_visible_frac=0.5, progress=False)
    tiles = load_dataset(out)
    assert tiles.class_names == ["bicycle", "stall"]
    assert {p.image_path.name.split("__")[0][:3] for p in tiles.splits["val"]} == {"val"}
    assert all(p.image_path.name.startswith("train") for p in tiles.splits["train"])
    n_boxes = 0
    for item in tiles.splits["train"] + tiles.splits["val"]:
        img = cv2.imread(str(item.image_path))
        assert img.shape[:2] == (200, 200)
        assert len(item) > 0  # keep_empty_frac=0: every tile labels something
        h, w = img.shape[:2]
        for cx, cy, bw, bh in item.boxes_cxcywh_norm:
            # The label's centre pixel lies on a bright square (JPEG: allow some ringing).
            assert img[int(cy * h), int(cx * w)].mean() > 180
            n_boxes += 1
    manifest = json.loads((tmp_path / "tiles" / "tile.json").read_text())
    assert manifest["splits"]["train"]["boxes"] + manifest["splits"]["val"]["boxes"] == n_boxes
    assert manifest["tile_px"] == 200


def test_the_same_settings_give_the_same_bytes(tmp_path):
    src = _dataset(tmp_path / "src")
    kw = dict(keep_empty_frac=0.5, max_tiles_per_image=2, seed=7, progress=False)
    a = tile_dataset(src, tmp_path / "a", 160, **kw).parent
    b = tile_dataset(src, tmp_path / "b", 160, **kw).parent

    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.txt"))}

    assert contents(a) == contents(b) and contents(a)
    per_image: dict[str, int] = {}
    for item in load_dataset(a / "data.yaml").splits["train"]:
        if len(item):
            stem = item.image_path.name.split("__")[0]
            per_image[stem] = per_image.get(stem, 0) + 1
    assert max(per_image.values()) <= 2


@pytest.mark.parametrize("keep_empty, expect_empty", [(0.0, False), (1.0, True)])
def test_background_tiles_are_kept_at_the_asked_share(tmp_path, keep_empty, expect_empty):
    src = _dataset(tmp_path / "src", n_train=2, n_val=1)
    out = tile_dataset(src, tmp_path / "t", 100, overlap_frac=0.0, keep_empty_frac=keep_empty, progress=False)
    items = [i for s in load_dataset(out).splits.values() for i in s]
    assert any(len(i) == 0 for i in items) == expect_empty
    if expect_empty:  # 640×360 in 100 px tiles without overlap: 7 × 4 tiles per image, all written
        assert len(items) == 3 * 7 * 4


def test_an_image_smaller_than_a_tile_is_its_own_tile(tmp_path):
    src = _dataset(tmp_path / "src", n_train=1, n_val=1)
    out = tile_dataset(src, tmp_path / "t", 1024, progress=False)
    items = load_dataset(out).splits["train"]
    assert len(items) == 1 and cv2.imread(str(items[0].image_path)).shape[:2] == (360, 640)
    assert len(items[0]) == 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(tile_px=16), "tile_px"),
        (dict(tile_px=200, min_visible_frac=0.0), "min_visible_frac"),
        (dict(tile_px=200, keep_empty_frac=1.5), "keep_empty_frac"),
        (dict(tile_px=200, max_tiles_per_image=0), "max_tiles_per_image"),
        (dict(tile_px=200, overlap_frac=0.95), "overlap_frac"),
    ],
)
def test_bad_settings_name_the_field_and_write_nothing(tmp_path, kwargs, field):
    src = _dataset(tmp_path / "src", n_train=1, n_val=1)
    with pytest.raises(DatasetError, match=field):
        tile_dataset(src, tmp_path / "t", progress=False, **kwargs)
    assert not (tmp_path / "t").exists()


def test_the_cli_tiles_a_dataset(tmp_path):
    src = _dataset(tmp_path / "src", n_train=1, n_val=1)
    run = subprocess.run([sys.executable, "-m", "service.cli", "dataset", "tile", str(src), "--out", str(tmp_path / "t"),
                          "--tile-px", "200", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()) == tmp_path / "t" / "data.yaml"
    bad = subprocess.run([sys.executable, "-m", "service.cli", "dataset", "tile", str(src), "--out",
                          str(tmp_path / "u"), "--tile-px", "8"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "tile_px" in bad.stderr and "Traceback" not in bad.stderr
