"""Conversion of COCO and Pascal VOC detection annotations to YOLO datasets.

Both converters write the ``images/<split>`` + ``labels/<split>`` layout and a data.yaml, so one output folder
can be filled split by split (``train`` from one annotation file, ``val`` from another) as long as every
call produces the same class list. The box arithmetic is pure and separate from file handling:
`coco_bbox_to_cxcywh` and `voc_bndbox_to_cxcywh` are what the tests check to the sixth decimal.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import yaml

from datasets.yolo import (
    DatasetError,
    image_size_px,
    link_or_copy,
    parse_class_names,
    write_data_yaml,
    write_labels,
    xyxy_px_to_cxcywh_norm,
)
from detector.imageio import IMAGE_SUFFIXES

__all__ = [
    "coco_bbox_to_cxcywh",
    "voc_bndbox_to_cxcywh",
    "VocAnnotation",
    "parse_voc_xml",
    "coco_to_yolo",
    "voc_to_yolo",
]


# --- pure box arithmetic ----------------------------------------------------------------------------------


def coco_bbox_to_cxcywh(bbox_xywh_px: np.ndarray, width_px: float, height_px: float) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``[x, y, w, h]`` (top-left corner, absolute pixels) to normalised ``cx cy w h``.

    Boxes are first clipped to the image (COCO boxes overshoot the border by a fraction of a pixel now and
    then); boxes with no area left are marked invalid.

    Returns:
        ``(cxcywh (N, 4), valid (N,) bool)``.

    Example:
        >>> b, ok = coco_bbox_to_cxcywh(np.array([[10, 20, 30, 40]]), 100, 200)
        >>> b.round(6).tolist(), ok.tolist()
        ([[0.25, 0.2, 0.3, 0.2]], [True])
    """
    xywh = np.asarray(bbox_xywh_px, np.float64).reshape(-1, 4)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return xyxy_px_to_cxcywh_norm(xyxy, width_px, height_px)


def voc_bndbox_to_cxcywh(bndbox_xyxy: np.ndarray, width_px: float, height_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Pascal VOC ``xmin ymin xmax ymax`` to normalised ``cx cy w h``.

    VOC coordinates are 1-based pixel indices. The conversion is ultralytics' (its VOC.yaml): the corners
    move by -1 pixel (``cx = (xmin + xmax) / 2 - 1``) and the width is ``xmax - xmin``, so a model trained on
    our conversion and on ultralytics' sees identical labels.

    Returns:
        ``(cxcywh (N, 4), valid (N,) bool)``.

    Example:
        >>> b, ok = voc_bndbox_to_cxcywh(np.array([[11, 21, 41, 61]]), 100, 200)
        >>> b.round(6).tolist(), ok.tolist()
        ([[0.25, 0.2, 0.3, 0.2]], [True])
    """
    xyxy = np.asarray(bndbox_xyxy, np.float64).reshape(-1, 4) - 1.0
    return xyxy_px_to_cxcywh_norm(xyxy, width_px, height_px)


# --- output folder ----------------------------------------------------------------------------------------


def _prepare_output(out_dir: Path, split: str, class_names: Sequence[str]) -> None:
    """Check that `out_dir` can take `split` with these classes: same names as any existing data.yaml, split new."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be train, val or test, got {split!r}")
    existing = out_dir / "data.yaml"
    if existing.is_file():
        data = yaml.safe_load(existing.read_text(encoding="utf-8")) or {}
        names = parse_class_names(data, existing)
        if names != list(class_names):
            raise DatasetError(f"{existing}: has classes {names}, this conversion produces {list(class_names)}")
    for sub in ("images", "labels"):
        folder = out_dir / sub / split
        if folder.exists() and any(folder.iterdir()):
            raise DatasetError(f"{folder}: already holds files; convert each split into a fresh folder")


def _finish_output(out_dir: Path, split: str, class_names: Sequence[str]) -> Path:
    splits = {s for s in ("train", "val", "test") if (out_dir / "images" / s).is_dir()} | {split}
    (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    return write_data_yaml(out_dir, class_names, splits)


# --- COCO -------------------------------------------------------------------------------------------------


def _coco_target_classes(categories: list[dict], class_map: Mapping[str, str | None] | None,
                         source: Path) -> tuple[list[str], dict[int, int]]:
    """The YOLO class list and COCO category id → YOLO class id (categories left out are absent)."""
    by_id = sorted(categories, key=lambda c: c["id"])
    names = [str(c["name"]) for c in by_id]
    if len(set(names)) != len(names):
        raise DatasetError(f"{source}: category names are not unique")
    if class_map is None:
        return names, {int(c["id"]): i for i, c in enumerate(by_id)}
    unknown = sorted(set(class_map) - set(names))
    if unknown:
        raise DatasetError(f"{source}: class_map names categories the file does not have: {unknown}")
    # The class list follows the mapping's order: the caller decides class ids, not the COCO file.
    targets = list(dict.fromkeys(v for v in class_map.values() if v is not None))
    lookup = {int(c["id"]): targets.index(class_map[str(c["name"])]) for c in by_id
              if class_map.get(str(c["name"])) is not None}
    return targets, lookup


def coco_to_yolo(
    coco_json: Path,
    images_dir: Path,
    out_dir: Path,
    split: str = "train",
    class_map: dict[str, str | None] | None = None,
    link: bool = True,
) -> Path:
    """Convert a COCO detection annotation file and its images to a YOLO split.

    Crowd annotations (``iscrowd: 1``) are skipped, as ultralytics does: they mark a region, not one object.
    Images without annotations become empty label files (background images). Without `class_map` every
    category becomes a class, in category-id order; with it, only categories it maps to a name are kept,
    several categories may share a target name, and the class list follows the order of its values.

    Args:
        coco_json: The annotation file (``images``, ``annotations``, ``categories``).
        images_dir: Folder that the images' ``file_name`` are relative to.
        out_dir: Output dataset folder (may already hold other splits with the same classes).
        split: Which split these images become.
        class_map: COCO category name → YOLO class name, or None to drop the category.
        link: Hard-link (or symlink) images instead of copying them.

    Returns:
        The written data.yaml.

    Example:
        >>> coco_to_yolo(Path("instances_val2017.json"), Path("val2017"), Path("coco-bikes"), "val",
        ...              {"bicycle": "bicycle", "motorcycle": "motorcycle"})  # doctest: +SKIP
        PosixPath('coco-bikes/data.yaml')
    """
    coco_json, images_dir, out_dir = Path(coco_json), Path(images_dir), Path(out_dir)
    try:
        coco = json.loads(coco_json.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{coco_json}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{coco_json}: not valid JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"{coco_json}: not a COCO detection file (needs 'images' and 'categories' lists)")
    class_names, category_to_class = _coco_target_classes(coco["categories"], class_map, coco_json)
    _prepare_output(out_dir, split, class_names)

    boxes_by_image: dict[int, list[list[float]]] = {}
    classes_by_image: dict[int, list[int]] = {}
    image_ids = {int(im["id"]) for im in coco["images"]}
    known_categories = {int(c["id"]) for c in coco["categories"]}
    for index, ann in enumerate(coco.get("annotations", [])):
        image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
        if image_id not in image_ids:
            raise DatasetError(f"{coco_json}: annotations[{index}] refers to image id {image_id}, which is not listed")
        if category_id not in known_categories:
            raise DatasetError(f"{coco_json}: annotations[{index}] has unknown category id {category_id}")
        if ann.get("iscrowd", 0) or category_id not in category_to_class:
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetError(f"{coco_json}: annotations[{index}] has no [x, y, w, h] bbox")
        boxes_by_image.setdefault(image_id, []).append([float(v) for v in bbox])
        classes_by_image.setdefault(image_id, []).append(category_to_class[category_id])

    # Every image is checked before anything is written, so a bad input leaves no half-converted split.
    names_seen: set[str] = set()
    for im in coco["images"]:
        if not (images_dir / str(im["file_name"])).is_file():
            raise DatasetError(f"{coco_json}: image {im['file_name']!r} not found in {images_dir}")
        name = Path(str(im["file_name"])).name
        if name in names_seen:
            raise DatasetError(f"{coco_json}: two images share the file name {name!r}")
        names_seen.add(name)
    for im in coco["images"]:
        src = images_dir / str(im["file_name"])
        name = src.name
        width_px, height_px = im.get("width"), im.get("height")
        if not width_px or not height_px:
            width_px, height_px = image_size_px(src)
        image_id = int(im["id"])
        cxcywh, valid = coco_bbox_to_cxcywh(np.asarray(boxes_by_image.get(image_id, []), np.float64),
                                            float(width_px), float(height_px))
        cls = np.asarray(classes_by_image.get(image_id, []), np.int64)
        link_or_copy(src, out_dir / "images" / split / name, link)
        write_labels(out_dir / "labels" / split / f"{Path(name).stem}.txt", cls[valid], cxcywh[valid])
    return _finish_output(out_dir, split, class_names)


# --- Pascal VOC -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VocAnnotation:
    """One parsed VOC xml file.

    Attributes:
        filename: The ``<filename>`` element ('' when absent).
        width_px: ``<size><width>``, or None when absent or zero.
        height_px: ``<size><height>``, or None when absent or zero.
        names: Class name per object.
        bndbox_xyxy: (N, 4) float64 ``xmin ymin xmax ymax`` per object, VOC's 1-based pixels.
        difficult: (N,) bool ``<difficult>`` flags.
    """

    filename: str
    width_px: int | None
    height_px: int | None
    names: list[str]
    bndbox_xyxy: np.ndarray
    difficult: np.ndarray


def parse_voc_xml(text: str, source: str = "<xml>") -> VocAnnotation:
    """Parse the text of a Pascal VOC annotation.

    Example:
        >>> a = parse_voc_xml("<annotation><filename>a.jpg</filename><size><width>100</width>"
        ...                   "<height>50</height></size><object><name>bicycle</name><bndbox><xmin>1</xmin>"
        ...                   "<ymin>1</ymin><xmax>11</xmax><ymax>21</ymax></bndbox></object></annotation>")
        >>> a.filename, a.names, a.bndbox_xyxy.tolist()
        ('a.jpg', ['bicycle'], [[1.0, 1.0, 11.0, 21.0]])
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DatasetError(f"{source}: not valid XML: {exc}") from None

    def number(node: ET.Element | None, tag: str, where: str) -> float:
        child = None if node is None else node.find(tag)
        if child is None or child.text is None:
            raise DatasetError(f"{source}: {where} has no <{tag}>")
        try:
            return float(child.text.strip())
        except ValueError:
            raise DatasetError(f"{source}: {where} <{tag}> is not a number: {child.text.strip()!r}") from None

    size = root.find("size")
    width_px = height_px = None
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        width_px = int(number(size, "width", "<size>")) or None
        height_px = int(number(size, "height", "<size>")) or None
    names, boxes, difficult = [], [], []
    for k, obj in enumerate(root.findall("object"), start=1):
        where = f"<object> #{k}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise DatasetError(f"{source}: {where} has no <name>")
        box = obj.find("bndbox")
        if box is None:
            raise DatasetError(f"{source}: {where} ({name}) has no <bndbox>")
        xyxy = [number(box, t, f"{where} ({name})") for t in ("xmin", "ymin", "xmax", "ymax")]
        names.append(name)
        boxes.append(xyxy)
        difficult.append((obj.findtext("difficult") or "0").strip() not in ("0", ""))
    return VocAnnotation(
        filename=(root.findtext("filename") or "").strip(),
        width_px=width_px,
        height_px=height_px,
        names=names,
        bndbox_xyxy=np.asarray(boxes, np.float64).reshape(-1, 4),
        difficult=np.asarray(difficult, bool),
    )


def _voc_image(xml_path: Path, annotation: VocAnnotation, images_dir: Path) -> Path:
    if annotation.filename and (images_dir / annotation.filename).is_file():
        return images_dir / annotation.filename
    # Many tools write <filename> without a suffix, or a stale one: fall back to the xml's stem.
    for stem in dict.fromkeys([Path(annotation.filename).stem, xml_path.stem]):
        for suffix in IMAGE_SUFFIXES:
            for candidate in (images_dir / f"{stem}{suffix}", images_dir / f"{stem}{suffix.upper()}"):
                if stem and candidate.is_file():
                    return candidate
    raise DatasetError(f"{xml_path}: image {annotation.filename or xml_path.stem!r} not found in {images_dir}")


def voc_to_yolo(
    xml_dir: Path,
    images_dir: Path,
    out_dir: Path,
    split: str = "train",
    class_names: list[str] | None = None,
    include_difficult: bool = False,
    link: bool = True,
) -> Path:
    """Convert Pascal VOC xml annotations and their images to a YOLO split.

    Objects marked ``difficult`` are skipped by default, as in VOC's own evaluation and ultralytics' VOC.yaml.
    Without `class_names` the classes are every object name found, sorted; with it, other names are dropped.
    An xml whose objects are all dropped still gives its image an (empty) label file.

    Args:
        xml_dir: Folder of ``*.xml`` files.
        images_dir: Folder of the images they name.
        out_dir: Output dataset folder (may already hold other splits with the same classes).
        split: Which split these images become.
        class_names: The class list (class ids follow its order).
        include_difficult: Keep objects marked difficult.
        link: Hard-link (or symlink) images instead of copying them.

    Returns:
        The written data.yaml.

    Example:
        >>> voc_to_yolo(Path("VOC2012/Annotations"), Path("VOC2012/JPEGImages"), Path("voc"), "train",
        ...             ["bicycle", "person"])  # doctest: +SKIP
        PosixPath('voc/data.yaml')
    """
    xml_dir, images_dir, out_dir = Path(xml_dir), Path(images_dir), Path(out_dir)
    xml_files = sorted(xml_dir.glob("*.xml"))
    if not xml_files:
        raise DatasetError(f"{xml_dir}: folder holds no .xml files")
    annotations = []
    for xml_path in xml_files:
        try:
            text = xml_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{xml_path}: cannot read: {exc}") from None
        annotations.append((xml_path, parse_voc_xml(text, str(xml_path))))
    names = list(class_names) if class_names is not None else sorted({n for _, a in annotations for n in a.names})
    if not names:
        raise DatasetError(f"{xml_dir}: no objects found and no class_names given")
    index = {n: i for i, n in enumerate(names)}
    _prepare_output(out_dir, split, names)

    # Every image is found before anything is written, so a bad input leaves no half-converted split.
    images: list[Path] = []
    names_seen: set[str] = set()
    for xml_path, annotation in annotations:
        image = _voc_image(xml_path, annotation, images_dir)
        if image.name in names_seen:
            raise DatasetError(f"{xml_path}: image {image.name!r} is named by another xml too")
        names_seen.add(image.name)
        images.append(image)
    for (xml_path, annotation), image in zip(annotations, images):
        width_px, height_px = annotation.width_px, annotation.height_px
        if width_px is None or height_px is None:
            width_px, height_px = image_size_px(image)
        cxcywh, valid = voc_bndbox_to_cxcywh(annotation.bndbox_xyxy, float(width_px), float(height_px))
        cls = np.asarray([index.get(n, -1) for n in annotation.names], np.int64)
        keep = valid & (cls >= 0) & (include_difficult | ~annotation.difficult)
        link_or_copy(image, out_dir / "images" / split / image.name, link)
        write_labels(out_dir / "labels" / split / f"{image.stem}.txt", cls[keep], cxcywh[keep])
    return _finish_output(out_dir, split, names)
