"""YOLO-format datasets: read, validate, merge, split, summarise and preview them.

A YOLO dataset is a folder with a ``data.yaml`` (ultralytics style: ``path``, ``train``, ``val``, optional
``test``, ``names`` as a list or an ``{id: name}`` mapping, ``nc``) and images with one label file each
(``class cx cy w h`` per line, normalised to 0..1). Two layouts are in use and both are read:

- ``images/<split>/x.jpg`` with ``labels/<split>/x.txt`` (ultralytics' own datasets), and
- ``<split>/images/x.jpg`` with ``<split>/labels/x.txt`` (Roboflow exports such as bicycles-2000).

Both follow from ultralytics' rule, which this module applies too: the label of an image is found by
replacing the *last* ``/images/`` of its path with ``/labels/`` and its suffix with ``.txt``.

Pure logic (parsing, formatting, split assignment, statistics over arrays) is kept apart from the functions
that walk folders and write files, so the former are tested with literals and the latter with tiny datasets.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np
import yaml

from detector.annotate import color_for
from detector.errors import StreetwatchError
from detector.imageio import IMAGE_SUFFIXES, read_image

__all__ = [
    "DatasetError",
    "LabelFormatError",
    "LabeledImage",
    "YoloDataset",
    "LABEL_DECIMALS",
    "SMALL_BOX_PX",
    "parse_labels",
    "format_labels",
    "xyxy_px_to_cxcywh_norm",
    "require_empty_dir",
    "cxcywh_norm_to_xyxy_px",
    "read_labels",
    "write_labels",
    "label_path_for",
    "resolve_data_yaml",
    "parse_class_names",
    "load_dataset",
    "write_data_yaml",
    "link_or_copy",
    "merge_datasets",
    "source_stem",
    "assign_split",
    "split_dataset",
    "image_size_px",
    "box_stats",
    "dataset_stats",
    "stats_to_markdown",
    "contact_sheet",
]

LABEL_DECIMALS = 6
"""Decimals written per coordinate: 1e-6 of a 4K frame is far below a pixel."""

SMALL_BOX_PX = 32.0
"""COCO's "small" object: sqrt(width * height) below 32 px (area < 32² px²) at the image's real size."""

# ultralytics accepts coordinates up to 1.01 (and slightly negative centres) before it rejects an image;
# the same tolerance here means a dataset that trains also loads.
_COORD_TOLERANCE = 0.01


class DatasetError(StreetwatchError):
    """A dataset folder, data.yaml or conversion input is missing or inconsistent."""


class LabelFormatError(DatasetError):
    """A label file has a malformed line; the message names the file and the 1-based line number."""


# --- data model -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledImage:
    """One image and its boxes.

    Attributes:
        image_path: The image file.
        label_path: Where its label file is (or would be: see `has_label_file`).
        boxes_cxcywh_norm: (N, 4) float64 box centres and sizes, normalised by the image's width and height.
        class_id: (N,) int64 indices into the dataset's class names.
        has_label_file: False when no label file exists; such an image counts as having no objects
            (as in ultralytics), but a missing file is worth reporting, so it is kept apart from an empty one.
    """

    image_path: Path
    label_path: Path
    boxes_cxcywh_norm: np.ndarray
    class_id: np.ndarray
    has_label_file: bool = True

    def __len__(self) -> int:
        return int(self.class_id.shape[0])


@dataclass(frozen=True)
class YoloDataset:
    """A parsed data.yaml with every split's images and labels read.

    Attributes:
        root: The dataset root (``path`` of data.yaml, resolved against the yaml's folder).
        data_yaml: The yaml file that was read.
        class_names: Class names by class id.
        splits: Split name (``train``, ``val``, ``test``) to its images, sorted by path.

    Example:
        >>> ds = load_dataset(Path("../shared/data/bicycles-2000/data.yaml"))  # doctest: +SKIP
        >>> ds.class_names, len(ds.splits["val"])  # doctest: +SKIP
        (['bicycle'], 401)
    """

    root: Path
    data_yaml: Path
    class_names: list[str]
    splits: dict[str, list[LabeledImage]] = field(default_factory=dict)


# --- label files (pure text <-> arrays) ------------------------------------------------------------------


def parse_labels(text: str, source: str = "<labels>", num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse the text of a YOLO label file.

    Rows are ``class cx cy w h``. Polygon rows (``class x1 y1 x2 y2 x3 y3 ...``, from segmentation exports)
    are turned into their bounding box, as ultralytics does when it trains a detector on them.

    Args:
        text: The file's content.
        source: Name used in error messages (the file path).
        num_classes: When given, class ids must be below it.

    Returns:
        ``(class_id, cxcywh)``: (N,) int64 and (N, 4) float64.

    Raises:
        LabelFormatError: Naming ``source:line`` and what is wrong with that line.

    Example:
        >>> cls, boxes = parse_labels("0 0.5 0.5 0.2 0.4\\n")
        >>> cls.tolist(), boxes.tolist()
        ([0], [[0.5, 0.5, 0.2, 0.4]])
    """
    class_ids: list[int] = []
    boxes: list[list[float]] = []
    kinds: set[str] = set()
    for line_no, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{source}:{line_no}"
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise LabelFormatError(f"{where}: not numbers: {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise LabelFormatError(f"{where}: NaN or infinite value: {line.strip()!r}")
        if len(values) == 5:
            kinds.add("box")
            box = values[1:]
        elif len(values) >= 7 and len(values) % 2 == 1:
            kinds.add("polygon")
            xy = np.asarray(values[1:]).reshape(-1, 2)
            x1, y1 = xy.min(0)
            x2, y2 = xy.max(0)
            box = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        else:
            raise LabelFormatError(
                f"{where}: expected 5 values 'class cx cy w h' (or a polygon 'class x1 y1 x2 y2 x3 y3 ...'), "
                f"got {len(values)}: {line.strip()!r}"
            )
        if len(kinds) > 1:
            # ultralytics refuses such a file (drops the image), so it must not pass here either.
            raise LabelFormatError(f"{where}: file mixes box rows and polygon rows")
        cls = values[0]
        if cls != int(cls) or cls < 0:
            raise LabelFormatError(f"{where}: class id must be a non-negative integer, got {fields[0]!r}")
        if num_classes is not None and cls >= num_classes:
            raise LabelFormatError(f"{where}: class id {int(cls)} out of range: the dataset has {num_classes} classes")
        cx, cy, w, h = box
        if w < 0 or h < 0:
            raise LabelFormatError(f"{where}: negative width or height: {line.strip()!r}")
        if min(cx, cy) < -_COORD_TOLERANCE or max(cx, cy, w, h) > 1 + _COORD_TOLERANCE:
            raise LabelFormatError(f"{where}: coordinates must be normalised to 0..1: {line.strip()!r}")
        class_ids.append(int(cls))
        boxes.append(box)
    return np.asarray(class_ids, np.int64).reshape(-1), np.asarray(boxes, np.float64).reshape(-1, 4)


def format_labels(class_id: np.ndarray | Sequence[int], cxcywh: np.ndarray | Sequence[Sequence[float]]) -> str:
    """Text of a YOLO label file, `LABEL_DECIMALS` decimals per coordinate; empty for no boxes.

    Example:
        >>> format_labels([2], [[0.5, 0.25, 0.1, 0.2]])
        '2 0.500000 0.250000 0.100000 0.200000\\n'
    """
    cls = np.asarray(class_id).reshape(-1)
    boxes = np.asarray(cxcywh, np.float64).reshape(-1, 4)
    if cls.shape[0] != boxes.shape[0]:
        raise ValueError(f"{cls.shape[0]} class ids for {boxes.shape[0]} boxes")
    d = LABEL_DECIMALS
    return "".join(f"{int(c)} {b[0]:.{d}f} {b[1]:.{d}f} {b[2]:.{d}f} {b[3]:.{d}f}\n" for c, b in zip(cls, boxes))


def read_labels(path: Path, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a label file: ``(class_id (N,), cxcywh (N, 4))``; a missing file is an error here (see `load_dataset`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such label file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read label file: {exc}") from None
    return parse_labels(text, str(path), num_classes)


def xyxy_px_to_cxcywh_norm(xyxy_px: np.ndarray, width_px: float, height_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel boxes, clipped to the image, as normalised label rows; also returns which keep a positive area.

    Example:
        >>> rows, ok = xyxy_px_to_cxcywh_norm(np.array([[0, 0, 64, 32], [-10, 0, 0, 5]]), 640, 320)
        >>> rows[0].round(3).tolist(), ok.tolist()
        ([0.05, 0.05, 0.1, 0.1], [True, False])
    """
    xyxy = np.asarray(xyxy_px, np.float64).reshape(-1, 4).copy()
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width_px)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height_px)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    cxcywh = np.stack([(xyxy[:, 0] + w / 2) / width_px, (xyxy[:, 1] + h / 2) / height_px,
                       w / width_px, h / height_px], axis=1)
    return cxcywh, (w > 0) & (h > 0)


def cxcywh_norm_to_xyxy_px(cxcywh_norm: np.ndarray, width_px: float, height_px: float) -> np.ndarray:
    """Normalised label rows as (N, 4) pixel boxes.

    Example:
        >>> cxcywh_norm_to_xyxy_px(np.array([[0.05, 0.05, 0.1, 0.1]]), 640, 320).tolist()
        [[0.0, 0.0, 64.0, 32.0]]
    """
    c = np.asarray(cxcywh_norm, np.float64).reshape(-1, 4) * [width_px, height_px, width_px, height_px]
    return np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)


def write_labels(path: Path, class_id: np.ndarray | Sequence[int],
                 cxcywh: np.ndarray | Sequence[Sequence[float]]) -> Path:
    """Write a label file (creating its folder); no boxes gives an empty file, which YOLO reads as background."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_labels(class_id, cxcywh), encoding="utf-8")
    return path


def label_path_for(image_path: Path) -> Path:
    """The label file of an image, by ultralytics' rule: last ``/images/`` → ``/labels/``, suffix → ``.txt``.

    Example:
        >>> label_path_for(Path("/d/train/images/a.b.jpg")).as_posix()
        '/d/train/labels/a.b.txt'
    """
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = os.fspath(image_path)
    if sa not in text:
        # No images/ folder in the path: the label sits beside the image (a flat folder of pairs).
        return Path(image_path).with_suffix(".txt")
    return Path(sb.join(text.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


# --- data.yaml ---------------------------------------------------------------------------------------------


def resolve_data_yaml(path: Path) -> Path:
    """A data.yaml given itself or its folder."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "data.yaml"
        if not candidate.is_file():
            raise DatasetError(f"{path}: folder holds no data.yaml")
        return candidate
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset (expected a data.yaml or a folder holding one)")
    return path


def parse_class_names(data: Mapping, source: Path) -> list[str]:
    """Class names by id from a parsed data.yaml: ``names`` as a list or ``{id: name}``, else ``nc`` placeholders.

    Example:
        >>> parse_class_names({"names": {1: "b", 0: "a"}}, Path("data.yaml"))
        ['a', 'b']
    """
    names = data.get("names")
    nc = data.get("nc")
    if names is None:
        if not isinstance(nc, int) or nc < 0:
            raise DatasetError(f"{source}: needs 'names' (or an integer 'nc')")
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, Mapping):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: 'names' keys must be integer class ids") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetError(f"{source}: 'names' ids must run 0..{len(by_id) - 1}, got {sorted(by_id)}")
        result = [by_id[i] for i in range(len(by_id))]
    elif isinstance(names, list):
        result = [str(n) for n in names]
    else:
        raise DatasetError(f"{source}: 'names' must be a list or an {{id: name}} mapping")
    if nc is not None and nc != len(result):
        raise DatasetError(f"{source}: 'nc: {nc}' disagrees with {len(result)} names")
    return result


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping at the top level")
    return data


def _dataset_root(data: Mapping, data_yaml: Path) -> Path:
    # ultralytics resolves a relative `path` against the working directory (then its datasets dir); here it is
    # resolved against the yaml's own folder, which is what `path: .` in a dataset's yaml means to its author.
    raw = data.get("path")
    base = data_yaml.resolve().parent
    return (base / raw).resolve() if raw else base


def _split_images(spec: str | list, root: Path, source: Path, split: str) -> list[Path]:
    """Image files named by a split entry: a folder (searched recursively), a .txt list of files, or a list."""
    images: list[Path] = []
    for entry in spec if isinstance(spec, list) else [spec]:
        p = (root / str(entry)).resolve()
        if p.is_dir():
            images += [f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text(encoding="utf-8-sig").splitlines():
                if line.strip():
                    # ultralytics: "./x.jpg" in a list is relative to the list's folder; others to the root.
                    name = line.strip()
                    images.append((p.parent / name[2:]) if name.startswith("./") else (root / name))
        else:
            raise DatasetError(f"{source}: split {split!r} points at {p}, which does not exist")
    return sorted(set(images))


def load_dataset(data_yaml: Path) -> YoloDataset:
    """Read a YOLO dataset: its data.yaml and every label file of every split.

    Args:
        data_yaml: The data.yaml, or the folder that holds it.

    Raises:
        DatasetError: A missing yaml, split folder or unreadable file. `LabelFormatError` for a malformed label
            line (file and line named) or a class id beyond the dataset's names.

    Example:
        >>> ds = load_dataset(Path("../shared/data/bicycles-2000"))  # doctest: +SKIP
        >>> sorted(ds.splits), sum(len(im) for im in ds.splits["train"]) > 0  # doctest: +SKIP
        (['test', 'train', 'val'], True)
    """
    data_yaml = resolve_data_yaml(data_yaml)
    data = _read_yaml(data_yaml)
    names = parse_class_names(data, data_yaml)
    root = _dataset_root(data, data_yaml)
    splits: dict[str, list[LabeledImage]] = {}
    for split in ("train", "val", "test"):
        spec = data.get(split)
        if not spec:
            continue
        images = []
        for image_path in _split_images(spec, root, data_yaml, split):
            label_path = label_path_for(image_path)
            if label_path.is_file():
                cls, boxes = read_labels(label_path, len(names))
                images.append(LabeledImage(image_path, label_path, boxes, cls, True))
            else:
                images.append(LabeledImage(image_path, label_path, np.zeros((0, 4)), np.zeros((0,), np.int64), False))
        splits[split] = images
    return YoloDataset(root=root, data_yaml=data_yaml, class_names=names, splits=splits)


def write_data_yaml(out_dir: Path, class_names: Sequence[str], splits: Iterable[str]) -> Path:
    """Write ``out_dir/data.yaml`` for the ``images/<split>`` layout.

    ``path`` is written absolute: ultralytics resolves a relative ``path`` against the working directory,
    not against the yaml, so an absolute one is the only kind that trains from anywhere.

    Example:
        >>> import tempfile
        >>> p = write_data_yaml(Path(tempfile.mkdtemp()), ["bicycle"], ["train", "val"])
        >>> yaml.safe_load(p.read_text())["val"], yaml.safe_load(p.read_text())["names"]
        ('images/val', ['bicycle'])
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(splits)
    data: dict = {"path": str(out_dir.resolve())}
    for split in ("train", "val", "test"):
        if split in wanted:
            data[split] = f"images/{split}"
    data["nc"] = len(class_names)
    data["names"] = list(class_names)
    path = out_dir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def link_or_copy(src: Path, dst: Path, link: bool = True) -> Path:
    """Put `src` at `dst`: a hard link when `link` (a symlink across file systems), else a copy.

    Hard links first because they survive the source folder being moved and cost no space; symlinks only
    where hard links cannot cross devices.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if link:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            os.symlink(Path(src).resolve(), dst)
            return dst
    shutil.copy2(src, dst)
    return dst


def require_empty_dir(out_dir: Path) -> None:
    """Refuse to write a dataset into a folder that already holds something (nothing is overwritten)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: output folder is not empty; choose a new folder")


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str) -> str:
    return _UNSAFE_CHARS.sub("-", text).strip("-") or "ds"


# --- merge ------------------------------------------------------------------------------------------------


def merge_datasets(
    sources: list[tuple[Path, dict[str, str | None] | None]],
    out_dir: Path,
    class_names: list[str],
    link: bool = True,
) -> Path:
    """Merge several YOLO datasets into one with a single class list.

    Each source's class is renamed through its mapping (``source name -> target name``; a name absent from
    the mapping keeps its own name) and then looked up in `class_names`. Boxes whose target is None or not in
    `class_names` are dropped; their image is kept (as background where nothing is left), because the
    objects in it are not the ones this dataset is about. Splits stay as they are (train→train, val→val,
    test→test), so a source's holdout never leaks into training. File names get a per-source prefix
    (``00-<source folder>__``) so equal names from different sources cannot collide.

    Args:
        sources: ``(data.yaml or its folder, mapping or None)`` per source.
        out_dir: A new or empty folder; gets ``images/<split>``, ``labels/<split>``, ``data.yaml`` and
            ``merge.json`` (per source: its mapping, images per split, boxes kept and dropped per class).
        class_names: The merged dataset's classes, in class-id order.
        link: Hard-link (or symlink) images instead of copying them.

    Returns:
        The written data.yaml.

    Example:
        >>> merge_datasets([(Path("bikes/data.yaml"), None),
        ...                 (Path("coco-sub/data.yaml"), {"bicycle": "bicycle", "motorcycle": None})],
        ...                Path("merged"), ["bicycle"])  # doctest: +SKIP
        PosixPath('merged/data.yaml')
    """
    out_dir = Path(out_dir)
    if not class_names or len(set(class_names)) != len(class_names):
        raise DatasetError(f"class_names must be a non-empty list of distinct names, got {class_names}")
    require_empty_dir(out_dir)
    target_index = {name: i for i, name in enumerate(class_names)}
    # Every source is read and checked before anything is written: a bad mapping leaves no half-merged folder.
    plans = []
    for source_no, (source, mapping) in enumerate(sources):
        dataset = load_dataset(source)
        unknown = sorted(set(mapping or {}) - set(dataset.class_names))
        if unknown:
            raise DatasetError(f"{dataset.data_yaml}: mapping names classes it does not have: {unknown}")
        # Lookup table from the source's class id to the target id; -1 drops the box.
        lut = np.full(len(dataset.class_names), -1, np.int64)
        for i, name in enumerate(dataset.class_names):
            target = (mapping or {}).get(name, name)
            if target is not None and target in target_index:
                lut[i] = target_index[target]
        plans.append((f"{source_no:02d}-{_slug(dataset.root.name)}__", dataset, mapping, lut))

    splits_written: set[str] = set()
    used_names: set[tuple[str, str]] = set()
    manifest = []
    for prefix, dataset, mapping, lut in plans:
        boxes_kept = {name: 0 for name in dataset.class_names}
        boxes_dropped = {name: 0 for name in dataset.class_names}
        images_written = {}
        for split, images in dataset.splits.items():
            # Sub-folders below the split's common image folder become part of the name (x/1.jpg vs y/1.jpg).
            base = Path(os.path.commonpath([str(im.image_path.parent) for im in images])) if images else None
            for item in images:
                name = prefix + "__".join(item.image_path.relative_to(base).with_suffix("").parts)
                if (split, name) in used_names:
                    raise DatasetError(f"{item.image_path}: two images would be written as {split}/{name!r}")
                used_names.add((split, name))
                keep = lut[item.class_id] >= 0
                for class_id, kept in zip(item.class_id.tolist(), keep.tolist()):
                    (boxes_kept if kept else boxes_dropped)[dataset.class_names[class_id]] += 1
                link_or_copy(item.image_path, out_dir / "images" / split / f"{name}{item.image_path.suffix}", link)
                write_labels(out_dir / "labels" / split / f"{name}.txt", lut[item.class_id[keep]],
                             item.boxes_cxcywh_norm[keep])
            images_written[split] = len(images)
            splits_written.add(split)
        manifest.append({"data_yaml": str(dataset.data_yaml), "prefix": prefix, "mapping": mapping,
                         "images": images_written, "boxes_kept": boxes_kept, "boxes_dropped": boxes_dropped})
    # Provenance for model cards, and the place to spot a class that was dropped by mistake (an unmapped
    # synonym leaves its objects unlabelled in images that are kept).
    (out_dir / "merge.json").write_text(json.dumps({"class_names": list(class_names), "sources": manifest},
                                                   indent=2, ensure_ascii=False), encoding="utf-8")
    return write_data_yaml(out_dir, class_names, splits_written)


# --- split ------------------------------------------------------------------------------------------------

# Roboflow names each augmented copy "<original>_<ext>.rf.<32 hex>"; all copies of one photo must fall in the
# same split, or the model is validated on near-duplicates of what it trained on.
_ROBOFLOW_SUFFIX = re.compile(r"(_(jpg|jpeg|png|bmp|webp))?\.rf\.[0-9a-f]{32}$", re.IGNORECASE)


def source_stem(stem: str) -> str:
    """The stem that identifies the original photo: Roboflow's ``_jpg.rf.<hash>`` suffix removed.

    Example:
        >>> source_stem("street_12_jpg.rf.0123456789abcdef0123456789abcdef")
        'street_12'
        >>> source_stem("street_12")
        'street_12'
    """
    return _ROBOFLOW_SUFFIX.sub("", stem)


def assign_split(stem: str, fractions: Mapping[str, float], seed: int = 0) -> str:
    """The split of an image, from a hash of its source stem alone.

    The hash maps the stem to a number in [0, 1) that is compared with the cumulative fractions (in the
    mapping's order). Since it depends on nothing else, adding images to a folder never moves existing ones.

    Example:
        >>> assign_split("img_001", {"train": 0.8, "val": 0.2}) in {"train", "val"}
        True
    """
    _check_fractions(fractions)
    digest = hashlib.sha256(f"{seed}:{source_stem(stem)}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    cumulative = 0.0
    names = list(fractions)
    for name in names:
        cumulative += fractions[name]
        if u < cumulative:
            return name
    return names[-1]  # u within rounding of 1.0


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions or any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise DatasetError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")
    unknown = set(fractions) - {"train", "val", "test"}
    if unknown:
        raise DatasetError(f"split names must be train, val or test, got {sorted(unknown)}")


def split_dataset(
    images_dir: Path,
    out_dir: Path,
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
    class_names: list[str] | None = None,
    link: bool = True,
) -> Path:
    """Split a folder of labelled images into train/val(/test), deterministically.

    Each image goes to `assign_split` of its stem, so the split is reproducible and stable when images are
    added. Roboflow augmentations of one photo share a split (see `source_stem`). Labels are found by the
    ``/images/`` → ``/labels/`` rule, or beside the image in a flat folder; an image without one is kept as
    background (an empty label file is written).

    Args:
        images_dir: Folder of images (searched recursively).
        out_dir: A new or empty folder for ``images/<split>``, ``labels/<split>`` and data.yaml.
        fractions: Split name to fraction; default ``{"train": 0.8, "val": 0.2}``.
        seed: Changes the assignment as a whole.
        class_names: Names for data.yaml; default ``class_<id>`` up to the largest id found.
        link: Hard-link (or symlink) images instead of copying them.

    Returns:
        The written data.yaml.

    Example:
        >>> split_dataset(Path("raw/images"), Path("split"), {"train": 0.7, "val": 0.2, "test": 0.1})  # doctest: +SKIP
        PosixPath('split/data.yaml')
    """
    fractions = dict(fractions or {"train": 0.8, "val": 0.2})
    _check_fractions(fractions)
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: no such folder")
    require_empty_dir(out_dir)
    images = sorted(f for f in images_dir.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not images:
        raise DatasetError(f"{images_dir}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    num_classes = len(class_names) if class_names is not None else None
    max_class = -1
    seen: set[str] = set()
    for image in images:
        if image.stem in seen:
            raise DatasetError(f"{image}: another image in {images_dir} has the stem {image.stem!r}")
        seen.add(image.stem)
        label = label_path_for(image)
        if label.is_file():
            cls, boxes = read_labels(label, num_classes)
        else:
            cls, boxes = np.zeros((0,), np.int64), np.zeros((0, 4))
        max_class = max(max_class, int(cls.max()) if len(cls) else -1)
        split = assign_split(image.stem, fractions, seed)
        link_or_copy(image, out_dir / "images" / split / image.name, link)
        write_labels(out_dir / "labels" / split / f"{image.stem}.txt", cls, boxes)
    names = class_names if class_names is not None else [f"class_{i}" for i in range(max_class + 1)]
    return write_data_yaml(out_dir, names, [s for s in fractions if (out_dir / "images" / s).is_dir()])


# --- image sizes ------------------------------------------------------------------------------------------


def image_size_px(path: Path) -> tuple[int, int]:
    """``(width_px, height_px)`` of an image as OpenCV and ultralytics see it, from its header where possible.

    JPEG and PNG sizes come from the header (microseconds, no decoding); a JPEG's EXIF orientation 5-8
    swaps them, as decoders rotate such images. Other formats are decoded.

    Example:
        >>> image_size_px(Path("../shared/data/bicycles-2000/val/images/x.jpg"))  # doctest: +SKIP
        (416, 416)
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
            size = _png_size(head) or _jpeg_size(head, f)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read image: {exc.strerror}") from None
    if size is not None:
        return size
    image = read_image(path)
    return int(image.shape[1]), int(image.shape[0])


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    return None


def _jpeg_size(head: bytes, f) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    data = head
    pos = 2
    orientation = 1
    while True:
        if pos + 4 > len(data):
            more = f.read(1 << 16)
            if not more:
                return None
            data += more
            continue
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        while pos + 2 + length > len(data):
            more = f.read(1 << 16)
            if not more:
                return None
            data += more
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            orientation = _exif_orientation(segment[6:])
        # SOF0..SOF15 carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", segment[1:5])
            return (int(h), int(w)) if orientation in (5, 6, 7, 8) else (int(w), int(h))
        if marker == 0xDA:  # start of scan before any frame header: not a JPEG we can read cheaply
            return None
        pos += 2 + length


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 in an EXIF TIFF block; 1 (upright) when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    endian = "<" if tiff[:2] == b"II" else ">"
    try:
        ifd = struct.unpack(endian + "I", tiff[4:8])[0]
        count = struct.unpack(endian + "H", tiff[ifd:ifd + 2])[0]
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
            tag, kind = struct.unpack(endian + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:
                return int(struct.unpack(endian + "H", entry[8:10])[0])
    except struct.error:
        return 1
    return 1


# --- statistics -------------------------------------------------------------------------------------------

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def box_stats(width_px: np.ndarray, height_px: np.ndarray) -> dict:
    """Size and shape of boxes measured in pixels: width/height quantiles, share of small boxes, aspect ratios.

    Example:
        >>> s = box_stats(np.array([10.0, 100.0]), np.array([10.0, 50.0]))
        >>> s["small_share"], s["aspect_w_over_h"]["p50"]
        (0.5, 1.5)
    """
    w = np.asarray(width_px, np.float64).reshape(-1)
    h = np.asarray(height_px, np.float64).reshape(-1)
    if w.size == 0:
        return {"boxes": 0, "width_px": None, "height_px": None, "small_share": None, "aspect_w_over_h": None}

    def quantiles(v: np.ndarray) -> dict[str, float]:
        return {f"p{round(q * 100)}": float(np.quantile(v, q)) for q in _QUANTILES}

    aspect = w / np.maximum(h, 1e-9)
    return {
        "boxes": int(w.size),
        "width_px": quantiles(w),
        "height_px": quantiles(h),
        "small_share": float(np.mean(np.sqrt(w * h) < SMALL_BOX_PX)),
        "aspect_w_over_h": quantiles(aspect),
    }


def dataset_stats(data_yaml: Path) -> dict:
    """Per split: images, empty images, missing label files, boxes per class, box sizes in pixels, aspect ratios,
    and how many source photos (see `source_stem`) it shares with each other split.

    Box sizes are measured at each image's real size (read from its header), because normalised sizes hide
    that the same 0.05 is 20 px on a 416 px photo and 190 px on a 4K drone frame.

    Returns:
        ``{"data_yaml", "class_names", "splits": {split: {...}}}``, JSON-ready; render with `stats_to_markdown`.

    Example:
        >>> stats = dataset_stats(Path("../shared/data/bicycles-2000/data.yaml"))  # doctest: +SKIP
        >>> stats["splits"]["val"]["images"]  # doctest: +SKIP
        401
    """
    dataset = load_dataset(data_yaml)
    result: dict = {"data_yaml": str(dataset.data_yaml), "class_names": list(dataset.class_names), "splits": {}}
    for split, images in dataset.splits.items():
        widths, heights, classes = [], [], []
        for item in images:
            if not len(item):
                continue
            w_img, h_img = image_size_px(item.image_path)
            widths.append(item.boxes_cxcywh_norm[:, 2] * w_img)
            heights.append(item.boxes_cxcywh_norm[:, 3] * h_img)
            classes.append(item.class_id)
        w = np.concatenate(widths) if widths else np.zeros(0)
        h = np.concatenate(heights) if heights else np.zeros(0)
        c = np.concatenate(classes) if classes else np.zeros(0, np.int64)
        per_class = {}
        for class_id, name in enumerate(dataset.class_names):
            mask = c == class_id
            per_class[name] = {
                "boxes": int(mask.sum()),
                "images": int(sum(1 for item in images if (item.class_id == class_id).any())),
                **{k: v for k, v in box_stats(w[mask], h[mask]).items() if k != "boxes"},
            }
        result["splits"][split] = {
            "images": len(images),
            "empty_images": sum(1 for item in images if not len(item)),
            "missing_label_files": sum(1 for item in images if not item.has_label_file),
            "boxes": int(c.size),
            "boxes_per_class": {name: per_class[name]["boxes"] for name in dataset.class_names},
            "all_classes": box_stats(w, h),
            "per_class": per_class,
        }
    # Augmented copies of one photo in two splits make validation flatter than reality; count them per pair.
    sources = {split: {source_stem(im.image_path.stem) for im in images} for split, images in dataset.splits.items()}
    for split, own in sources.items():
        result["splits"][split]["source_photos"] = len(own)
        result["splits"][split]["source_photos_shared_with"] = {
            other: len(own & theirs) for other, theirs in sources.items() if other != split}
    return result


def _fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def stats_to_markdown(stats: Mapping) -> str:
    """Markdown tables of `dataset_stats`: one overview row per split, then box sizes per split and class.

    Example:
        >>> print(stats_to_markdown({"data_yaml": "d.yaml", "class_names": [], "splits": {}}))
        # Dataset d.yaml
        <BLANKLINE>
        Classes: (none)
        <BLANKLINE>
        No splits.
    """
    names = list(stats["class_names"])
    lines = [f"# Dataset {stats['data_yaml']}", "", f"Classes: {', '.join(names) or '(none)'}", ""]
    if not stats["splits"]:
        lines.append("No splits.")
        return "\n".join(lines)
    header = ["split", "images", "empty", "no label file", "boxes", *names]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for split, s in stats["splits"].items():
        row = [split, s["images"], s["empty_images"], s["missing_label_files"], s["boxes"],
               *(s["boxes_per_class"][n] for n in names)]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    leaks = [f"{split}/{other}: {n}" for split, st in stats["splits"].items()
             for other, n in st.get("source_photos_shared_with", {}).items() if n and split < other]
    if leaks:
        lines += ["", "Source photos (Roboflow augmentations grouped) present in two splits: " + ", ".join(leaks)
                  + ". Accuracy on such a split overstates accuracy on new photos."]
    lines += ["", "Box sizes in pixels at each image's real size (p5 / p50 / p95); small = sqrt(w·h) < 32 px.", "",
              "| split | class | boxes | width px | height px | w/h | small |", "|---|---|---|---|---|---|---|"]
    for split, s in stats["splits"].items():
        for label, b in [("all", s["all_classes"]), *s["per_class"].items()]:
            if not b.get("width_px"):
                continue
            wq, hq, aq = b["width_px"], b["height_px"], b["aspect_w_over_h"]
            lines.append(
                f"| {split} | {label} | {b['boxes']} | {_fmt(wq['p5'])} / {_fmt(wq['p50'])} / {_fmt(wq['p95'])} "
                f"| {_fmt(hq['p5'])} / {_fmt(hq['p50'])} / {_fmt(hq['p95'])} "
                f"| {_fmt(aq['p5'], 2)} / {_fmt(aq['p50'], 2)} / {_fmt(aq['p95'], 2)} | {b['small_share']:.1%} |"
            )
    return "\n".join(lines)


# --- contact sheet ----------------------------------------------------------------------------------------

_SHEET_BACKGROUND = (114, 114, 114)  # the letterbox grey YOLO pads with


def contact_sheet(
    dataset_dir_or_yaml: Path,
    split: str,
    out_png: Path,
    n_images: int = 16,
    seed: int = 0,
    cell_px: int = 320,
) -> Path:
    """A grid of sampled images with their labelled boxes and class names drawn, for a visual check of labels.

    Each image is scaled to fit a `cell_px` square (aspect kept, grey padding); boxes are drawn at cell scale
    in a colour per class (the same palette as `detector.annotate`), with the file name underneath. The
    sample is seeded, so the same call gives the same sheet.

    Args:
        dataset_dir_or_yaml: A data.yaml or the folder that holds it.
        split: ``train``, ``val`` or ``test``.
        out_png: Where to write the sheet (folders are created).
        n_images: How many images (all of them when the split has fewer).
        seed: Which sample.
        cell_px: Side of each square cell in pixels.

    Returns:
        `out_png`.

    Example:
        >>> contact_sheet(Path("../shared/data/bicycles-2000"), "val", Path("/tmp/val.png"))  # doctest: +SKIP
        PosixPath('/tmp/val.png')
    """
    if n_images < 1 or cell_px < 32:
        raise DatasetError(f"need n_images >= 1 and cell_px >= 32, got {n_images} and {cell_px}")
    dataset = load_dataset(dataset_dir_or_yaml)
    if split not in dataset.splits:
        raise DatasetError(f"{dataset.data_yaml}: no split {split!r}; it has {sorted(dataset.splits) or 'none'}")
    images = dataset.splits[split]
    if not images:
        raise DatasetError(f"{dataset.data_yaml}: split {split!r} holds no images")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(images), size=min(n_images, len(images)), replace=False).tolist())
    cols = math.ceil(math.sqrt(len(picked)))
    rows = math.ceil(len(picked) / cols)
    sheet = np.full((rows * cell_px, cols * cell_px, 3), 255, np.uint8)
    for k, index in enumerate(picked):
        cell = _render_cell(images[index], dataset.class_names, cell_px)
        r, c = divmod(k, cols)
        sheet[r * cell_px:(r + 1) * cell_px, c * cell_px:(c + 1) * cell_px] = cell
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), sheet):
        raise DatasetError(f"{out_png}: cannot write the contact sheet")
    return out_png


def _render_cell(item: LabeledImage, class_names: Sequence[str], cell_px: int) -> np.ndarray:
    image = read_image(item.image_path)
    h, w = image.shape[:2]
    scale = cell_px / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    cell = np.full((cell_px, cell_px, 3), _SHEET_BACKGROUND, np.uint8)
    x0, y0 = (cell_px - new_w) // 2, (cell_px - new_h) // 2
    cell[y0:y0 + new_h, x0:x0 + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    for cls, (cx, cy, bw, bh) in zip(item.class_id, item.boxes_cxcywh_norm):
        x1, y1 = round(x0 + (cx - bw / 2) * new_w), round(y0 + (cy - bh / 2) * new_h)
        x2, y2 = round(x0 + (cx + bw / 2) * new_w), round(y0 + (cy + bh / 2) * new_h)
        color = color_for(int(cls))
        cv2.rectangle(cell, (x1, y1), (x2, y2), color, 2, cv2.LINE_AA)
        text = class_names[int(cls)] if int(cls) < len(class_names) else str(int(cls))
        (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
        ty = max(y1, th + base)
        cv2.rectangle(cell, (x1, ty - th - base), (x1 + tw + 2, ty), color, -1)
        cv2.putText(cell, text, (x1 + 1, ty - base), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    caption = item.image_path.name
    max_chars = max(8, cell_px // 7)
    if len(caption) > max_chars:
        caption = caption[: max_chars // 2 - 2] + "..." + caption[-(max_chars // 2 - 2):]
    caption = caption.encode("ascii", "replace").decode()  # Hershey fonts draw ASCII only
    cv2.rectangle(cell, (0, cell_px - 16), (cell_px, cell_px), (0, 0, 0), -1)
    cv2.putText(cell, caption, (3, cell_px - 4), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.rectangle(cell, (0, 0), (cell_px - 1, cell_px - 1), (255, 255, 255), 1)
    return cell
