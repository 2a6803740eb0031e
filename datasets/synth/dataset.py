"""Writing synthetic scenes as a YOLO dataset (ultralytics layout) that trains as it is.

Every image is rendered from its own generator, ``np.random.default_rng([seed, index])``, and its split from
another, ``np.random.default_rng([seed, index, 1])``: image ``i`` is the same whatever `n_images` is and in
whatever order images are made, so a dataset can be grown or regenerated in parts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from datasets.synth.aerial import AerialViewSampling, render_aerial_scene
from datasets.synth.bike_bank import BikeCropBank, default_cache_dir
from datasets.synth.classes import classes_for
from datasets.synth.footage import load_footage_backgrounds
from datasets.synth.sample import SceneSample
from datasets.synth.street import StreetAssets, render_street_scene
from detector.paths import existing_shared_dir

__all__ = ["generate_dataset", "load_street_assets", "resolve_shared_dir", "DEFAULT_SIZES_PX", "split_of"]

DEFAULT_SIZES_PX = {"street": (1280, 720), "aerial": (1024, 1024)}
_BICYCLES_TRAIN = Path("data") / "bicycles-2000" / "train"


def resolve_shared_dir(shared_dir: Path | None = None) -> Path | None:
    """The third-party data folder: `shared_dir`, else ``$STREETWATCH_SHARED``, else ``<repo>/../shared``.

    Returns:
        The folder, or None when no folder was given and the default places do not exist.

    Raises:
        FileNotFoundError: `shared_dir` was given but is not a folder.
    """
    if shared_dir is not None:
        path = Path(shared_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: shared data folder not found")
        return path
    return existing_shared_dir()


def bicycles_train_dir(shared_dir: Path | None) -> Path | None:
    """The train split of bicycles-2000 under `shared_dir` (the only split cut-outs may come from), or None."""
    if shared_dir is None:
        return None
    train = Path(shared_dir) / _BICYCLES_TRAIN
    return train if (train / "images").is_dir() else None


def load_street_assets(shared_dir: Path | None, cache_dir: Path | None = None, *, max_bike_crops: int | None = None,
                       real_background_probability: float = 0.25, progress: bool = False) -> StreetAssets:
    """Real bicycle cut-outs (train split of bicycles-2000) and real camera backgrounds, when available.

    Args:
        shared_dir: The shared data folder; None gives procedural scenes only.
        cache_dir: Where the crop bank and median frames are cached; default ``~/.cache/streetwatch``.
        max_bike_crops: Limit the crop bank (small banks build fast: for tests).
        real_background_probability: Share of street scenes on a real background.
        progress: Show a bar while the crop bank is built (once).
    """
    if shared_dir is None:
        return StreetAssets()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    train = bicycles_train_dir(shared_dir)
    bank = None
    if train is not None:
        bank = BikeCropBank.load_or_build(train, cache_dir, max_crops=max_bike_crops, progress=progress)
    backgrounds = load_footage_backgrounds(Path(shared_dir), cache_dir)
    return StreetAssets(bike_bank=bank, backgrounds=backgrounds,
                        real_background_probability=real_background_probability)


def split_of(seed: int, index: int, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for image `index`, independent of how many images are made."""
    return "val" if np.random.default_rng([seed, index, 1]).random() < val_fraction else "train"


def _write_image(path: Path, sample: SceneSample) -> None:
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, int(sample.jpeg_quality)])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    path.write_bytes(buf.tobytes())


def generate_dataset(kind: Literal["street", "aerial"], out_dir: Path, n_images: int, seed: int,
                     val_fraction: float = 0.15, image_size_px: tuple[int, int] | None = None,
                     shared_dir: Path | None = None, progress: bool = True, *, cache_dir: Path | None = None,
                     max_bike_crops: int | None = None, real_background_probability: float = 0.25,
                     real_assets: bool = True, overwrite: bool = False,
                     aerial_views: AerialViewSampling | None = None, distractors: bool = False) -> Path:
    """Render `n_images` synthetic scenes into a YOLO dataset.

    Writes ``out_dir/images/{train,val}/*.jpg``, ``out_dir/labels/{train,val}/*.txt`` (``class cx cy w h``,
    normalised, 6 decimals; an empty file for an image without labels), ``out_dir/data.yaml`` (ultralytics:
    absolute ``path``, ``train``, ``val``, ``nc``, ``names``) and ``out_dir/scenes.jsonl`` (per image: split,
    file, zones such as painted bike boxes, lighting, background and camera).

    Args:
        kind: ``"street"`` (`STREET_CLASSES`, 1280 × 720) or ``"aerial"`` (`AERIAL_CLASSES`, 1024 × 1024).
        out_dir: Output folder; must not hold a dataset already unless `overwrite`.
        n_images: How many images.
        seed: Dataset seed; image ``i`` uses ``default_rng([seed, i])``.
        val_fraction: Expected share of validation images (drawn per image; at least one when n ≥ 2).
        image_size_px: (width, height); None for the kind's default.
        shared_dir: Third-party data (real bike photos, footage); None looks for ``$STREETWATCH_SHARED`` or
            ``../shared`` and renders procedural scenes only when neither exists.
        progress: Show tqdm bars.
        cache_dir: Cache of the bike crop bank and footage medians (default ``~/.cache/streetwatch``).
        max_bike_crops: Limit the crop bank (tests).
        real_background_probability: Share of street scenes on real footage backgrounds.
        real_assets: False renders procedural street scenes only, even when shared data is present.
        overwrite: Replace an existing dataset in `out_dir`.
        aerial_views: Scales (ground sampling distance range) and share of oblique views of aerial chips; None
            keeps the generator's defaults. Aerial only.
        distractors: Street only: also label people and cars (`STREET_CLASSES_WITH_DISTRACTORS`); the pictures
            are the same as without.

    Returns:
        The path of ``data.yaml``.

    Example:
        >>> import tempfile
        >>> p = generate_dataset("aerial", Path(tempfile.mkdtemp()) / "a", 2, seed=1, image_size_px=(256, 256),
        ...                      progress=False)
        >>> sorted(yaml.safe_load(p.read_text())["names"])
        ['bicycle', 'illegal_structure', 'stall']
    """
    if kind not in DEFAULT_SIZES_PX:
        raise ValueError(f"kind must be 'street' or 'aerial', got {kind!r}")
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if aerial_views is not None and kind != "aerial":
        raise ValueError(f"aerial_views applies to aerial datasets only, not {kind!r}")
    if distractors and kind != "street":
        raise ValueError("distractors applies to street datasets (aerial datasets always label them)")
    size = tuple(int(v) for v in (image_size_px or DEFAULT_SIZES_PX[kind]))
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"image_size_px must be (width, height) of at least 32 px, got {image_size_px}")
    out_dir = Path(out_dir)
    names = classes_for(kind, distractors)
    _prepare(out_dir, overwrite)

    assets = StreetAssets()
    if kind == "street" and real_assets:
        assets = load_street_assets(resolve_shared_dir(shared_dir), cache_dir, max_bike_crops=max_bike_crops,
                                    real_background_probability=real_background_probability, progress=progress)
    splits = [split_of(seed, i, val_fraction) for i in range(n_images)]
    if val_fraction > 0 and n_images >= 2 and "val" not in splits:
        splits[-1] = "val"  # ultralytics wants a non-empty val split
    for split in ("train", "val"):
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    records = []
    for index in tqdm(range(n_images), desc=f"synth {kind}", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, index])
        if kind == "street":
            sample = render_street_scene(rng, size, assets=assets, label_distractors=distractors)
        else:
            sample = render_aerial_scene(rng, size, view_sampling=aerial_views or AerialViewSampling())
        stem = f"{kind}_s{seed}_{index:06d}"
        split = splits[index]
        _write_image(out_dir / "images" / split / f"{stem}.jpg", sample)
        (out_dir / "labels" / split / f"{stem}.txt").write_text(sample.yolo_labels(), encoding="utf-8")
        records.append({"image": f"images/{split}/{stem}.jpg", "split": split, "index": index,
                        "n_labels": len(sample), "zones": sample.zones, "meta": sample.meta})
    with (out_dir / "scenes.jsonl").open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    data = {"path": str(out_dir.resolve()), "train": "images/train", "val": "images/val", "nc": len(names),
            "names": names}
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return data_yaml


def _prepare(out_dir: Path, overwrite: bool) -> None:
    existing = [p for p in (out_dir / "images", out_dir / "labels", out_dir / "data.yaml", out_dir / "scenes.jsonl")
                if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir}: already holds a dataset ({existing[0].name}); pass overwrite=True")
    for p in existing:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
