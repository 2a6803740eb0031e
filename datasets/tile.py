"""Cutting a YOLO dataset into native-resolution tiles, so a model trained at a small input size sees small
objects at the size tiled or large-input inference will show them.

A 1280×720 street frame trained at 416 px is shrunk about 3×: a 40 px bicycle becomes 13 px, below what a
stride-8 detector learns well. Tiles of the frame, cut at native resolution, keep that bicycle 40 px (or
26 px for 640 px tiles trained at 416). The tiles follow the same grid as `detect_tiled`
(`detector.runtime.tiling.plan_tiles`), keep their source image's split (a val image's tiles stay in val),
and keep a box only where enough of it lies inside the tile: an object cut down to a sliver is left
unlabelled rather than labelled as a fragment the network could never recognise.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.yolo import (
    DatasetError,
    cxcywh_norm_to_xyxy_px,
    image_size_px,
    load_dataset,
    require_empty_dir,
    write_data_yaml,
    write_labels,
    xyxy_px_to_cxcywh_norm,
)
from detector.runtime.tiling import Tile, plan_tiles

__all__ = ["TileLabels", "tile_labels", "tile_dataset"]


@dataclass(frozen=True)
class TileLabels:
    """The boxes of one tile.

    Attributes:
        xyxy: (N, 4) kept boxes clipped to the tile, in tile pixels.
        class_id: (N,) their classes.
        n_dropped: Boxes overlapping the tile whose visible part was below the minimum fraction.
    """

    xyxy: np.ndarray
    class_id: np.ndarray
    n_dropped: int


def tile_labels(xyxy: np.ndarray, class_id: np.ndarray, tile: Tile, min_visible_frac: float) -> TileLabels:
    """Boxes of an image (pixels) as seen by one tile: clipped, and kept only when at least
    `min_visible_frac` of the box's area lies inside the tile.

    Example:
        >>> t = tile_labels(np.array([[10., 10, 30, 30], [90, 0, 130, 20]]), np.array([0, 1]),
        ...                 Tile(0, 0, 100, 100), 0.5)
        >>> t.xyxy.tolist(), t.class_id.tolist(), t.n_dropped
        ([[10.0, 10.0, 30.0, 30.0]], [0], 1)
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    class_id = np.asarray(class_id, np.int64).reshape(-1)
    clipped = xyxy.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], tile.x0, tile.x1)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], tile.y0, tile.y1)
    area = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 0, None), axis=1)
    visible = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    overlaps = visible > 0
    keep = overlaps & (visible >= min_visible_frac * np.maximum(area, 1e-9))
    shift = np.array([tile.x0, tile.y0, tile.x0, tile.y0], np.float64)
    return TileLabels(clipped[keep] - shift, class_id[keep], int((overlaps & ~keep).sum()))


def tile_dataset(data_yaml: Path, out_dir: Path, tile_px: int, *, overlap_frac: float = 0.2,
                 min_visible_frac: float = 0.5, keep_empty_frac: float = 0.1, max_tiles_per_image: int | None = None,
                 seed: int = 0, jpeg_quality: int = 95, progress: bool = True) -> Path:
    """Write every split of a YOLO dataset as tiles of `tile_px` × `tile_px` frame pixels.

    Tiles with at least one kept box are written (at most `max_tiles_per_image` per image, chosen at random);
    tiles without one are written with probability `keep_empty_frac`, as background. An image no larger than a
    tile becomes one tile, itself. Choices draw from ``default_rng([seed, crc32(image name)])``, so the output
    is the same on every run. ``tile.json`` records the settings and per split the tiles, boxes kept and boxes
    dropped as slivers.

    Args:
        data_yaml: The source dataset.
        out_dir: A new or empty folder.
        tile_px: Tile width and height in source pixels (≥ 32).
        overlap_frac: Overlap of neighbouring tiles, as in `detect_tiled`.
        min_visible_frac: Share of a box's area that must lie inside a tile for the tile to label it.
        keep_empty_frac: Share of tiles without a kept box that are written anyway.
        max_tiles_per_image: Cap on labelled tiles per image; None keeps all.
        seed: Seed of the random choices.
        jpeg_quality: Quality of the written tiles.
        progress: Show a bar.

    Returns:
        The written data.yaml.

    Raises:
        DatasetError: A bad argument, a non-empty `out_dir`, or an unreadable image.
    """
    if tile_px < 32:
        raise DatasetError(f"tile_px must be >= 32, got {tile_px}")
    if not 0.0 < min_visible_frac <= 1.0:
        raise DatasetError(f"min_visible_frac must lie within (0, 1], got {min_visible_frac}")
    if not 0.0 <= keep_empty_frac <= 1.0:
        raise DatasetError(f"keep_empty_frac must lie within [0, 1], got {keep_empty_frac}")
    if max_tiles_per_image is not None and max_tiles_per_image < 1:
        raise DatasetError(f"max_tiles_per_image must be >= 1, got {max_tiles_per_image}")
    if not 0.0 <= overlap_frac < 0.9:
        raise DatasetError(f"overlap_frac must lie within [0, 0.9), got {overlap_frac}")
    dataset = load_dataset(Path(data_yaml))
    out_dir = Path(out_dir)
    require_empty_dir(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for split, images in dataset.splits.items():
        c = counts.setdefault(split, {"images": 0, "tiles": 0, "empty_tiles": 0, "boxes": 0, "boxes_dropped": 0})
        for item in tqdm(images, desc=f"tile {split}", unit="img", disable=not progress):
            width_px, height_px = image_size_px(item.image_path)
            xyxy = cxcywh_norm_to_xyxy_px(item.boxes_cxcywh_norm, width_px, height_px)
            rng = np.random.default_rng([seed, zlib.crc32(item.image_path.name.encode())])
            labelled, empty = [], []
            for tile in plan_tiles(width_px, height_px, tile_px, overlap_frac):
                labels = tile_labels(xyxy, item.class_id, tile, min_visible_frac)
                (labelled if len(labels.class_id) else empty).append((tile, labels))
            if max_tiles_per_image is not None and len(labelled) > max_tiles_per_image:
                pick = np.sort(rng.choice(len(labelled), max_tiles_per_image, replace=False))
                labelled = [labelled[i] for i in pick]
            chosen = labelled + [e for e in empty if rng.random() < keep_empty_frac]
            if not chosen:
                continue
            image = cv2.imread(str(item.image_path), cv2.IMREAD_COLOR)
            if image is None or image.shape[:2] != (height_px, width_px):
                raise DatasetError(f"{item.image_path}: unreadable image, or its size differs from its header")
            c["images"] += 1
            for tile, labels in chosen:
                name = f"{item.image_path.stem}__x{tile.x0}_y{tile.y0}"
                crop = image[tile.y0:tile.y1, tile.x0:tile.x1]
                dst = out_dir / "images" / split / f"{name}.jpg"
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(dst), crop, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
                    raise DatasetError(f"{dst}: could not write the tile")
                tw, th = tile.x1 - tile.x0, tile.y1 - tile.y0
                write_labels(out_dir / "labels" / split / f"{name}.txt", labels.class_id,
                             xyxy_px_to_cxcywh_norm(labels.xyxy, tw, th)[0])
                c["tiles"] += 1
                c["empty_tiles"] += int(len(labels.class_id) == 0)
                c["boxes"] += len(labels.class_id)
                c["boxes_dropped"] += labels.n_dropped
    manifest = {"source": str(dataset.data_yaml), "tile_px": tile_px, "overlap_frac": overlap_frac,
                "min_visible_frac": min_visible_frac, "keep_empty_frac": keep_empty_frac,
                "max_tiles_per_image": max_tiles_per_image, "seed": seed, "splits": counts}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tile.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return write_data_yaml(out_dir, dataset.class_names, [s for s, c in counts.items() if c["tiles"]])
