"""Hand-labelled frames of real camera footage, as a YOLO test set.

The labels live in the repository (``datasets/labels/footage/*.yaml``); the video stays in ``../shared``
(never copied into the repository). `build_footage_dataset` decodes the labelled frames from the video and
writes them losslessly (PNG: the pixels the camera's H.264 stream decodes to, with no second compression) with
their label files under ``images/test`` and ``labels/test``, for ``streetwatch eval --split test``.

A label file::

    source: footage/parking-lot-bicycle.mp4      # relative to the shared data folder
    classes: [bicycle]
    labelled_by: who, how
    notes: what was left out and why
    frames:                                       # 0-based frame index -> boxes
      6: [[bicycle, 320, 0, 338, 27]]             # class name, x1, y1, x2, y2 in frame pixels
      9: []                                       # a frame with nothing of the classes in it
    negative_frames: {start: 0, stop: 1394, step: 40}   # frames checked to hold none of the classes

Either ``frames`` or ``negative_frames`` (or both, without sharing a frame) must be given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from datasets.yolo import DatasetError, require_empty_dir, write_data_yaml, write_labels, xyxy_px_to_cxcywh_norm

__all__ = ["FootageLabels", "LabelledFrame", "load_footage_labels", "build_footage_dataset", "LABELS_DIR"]

LABELS_DIR = Path(__file__).resolve().parent / "labels" / "footage"
SPLIT = "test"


@dataclass(frozen=True)
class LabelledFrame:
    """Attributes:
        index: 0-based frame index in decoding order.
        class_names: (N,) class name per box.
        xyxy_px: (N, 4) boxes in frame pixels.
    """

    index: int
    class_names: tuple[str, ...]
    xyxy_px: np.ndarray


@dataclass(frozen=True)
class FootageLabels:
    path: Path
    source: str
    classes: tuple[str, ...]
    labelled_by: str
    notes: str
    frames: tuple[LabelledFrame, ...]

    @property
    def n_boxes(self) -> int:
        return sum(len(f.class_names) for f in self.frames)


def _problem(path: Path, where: str, why: str) -> DatasetError:
    return DatasetError(f"{path}: {where}: {why}")


def load_footage_labels(path: Path | str) -> FootageLabels:
    """Read and check a label file; every problem names the file, the field or frame, and why."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read footage labels: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: footage labels must be a mapping")
    unknown = sorted(set(raw) - {"source", "classes", "labelled_by", "notes", "frames", "negative_frames"})
    if unknown:
        raise _problem(path, ", ".join(unknown), "unknown field(s)")
    source = raw.get("source")
    if not isinstance(source, str) or not source or Path(source).is_absolute() or ".." in Path(source).parts:
        raise _problem(path, "source", "must be a path relative to the shared data folder, e.g. footage/x.mp4")
    classes = raw.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise _problem(path, "classes", "must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise _problem(path, "classes", "names must be unique")
    frames_raw = raw.get("frames", {})
    negatives = _negative_range(path, raw.get("negative_frames"))
    if not isinstance(frames_raw, dict) or not (frames_raw or negatives):
        raise _problem(path, "frames", "must map frame indices to lists of [class, x1, y1, x2, y2]")
    shared = sorted(set(negatives) & {k for k in frames_raw if isinstance(k, int)})
    if shared:
        raise _problem(path, "negative_frames", f"frames {shared[:5]} are also labelled under frames")
    frames = [LabelledFrame(i, (), np.zeros((0, 4), np.float64)) for i in negatives]
    for key, boxes in sorted(frames_raw.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, int) or isinstance(key, bool) or key < 0:
            raise _problem(path, f"frames.{key}", "frame index must be an integer >= 0")
        if not isinstance(boxes, list):
            raise _problem(path, f"frames.{key}", "must be a list of boxes (an empty list for a frame without any)")
        names, xyxy = [], []
        for k, box in enumerate(boxes):
            where = f"frames.{key}[{k}]"
            if not (isinstance(box, list) and len(box) == 5 and isinstance(box[0], str)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box[1:])):
                raise _problem(path, where, "must be [class, x1, y1, x2, y2] with pixel numbers")
            if box[0] not in classes:
                raise _problem(path, where, f"class {box[0]!r} is not in classes {classes}")
            x1, y1, x2, y2 = (float(v) for v in box[1:])
            if not (x2 > x1 and y2 > y1 and min(x1, y1) >= 0):
                raise _problem(path, where, f"box {box[1:]} must have x2 > x1, y2 > y1 and no negative corner")
            names.append(box[0])
            xyxy.append((x1, y1, x2, y2))
        frames.append(LabelledFrame(key, tuple(names), np.asarray(xyxy, np.float64).reshape(-1, 4)))
    frames.sort(key=lambda f: f.index)
    return FootageLabels(path, source, tuple(classes), str(raw.get("labelled_by", "")), str(raw.get("notes", "")),
                         tuple(frames))


def _negative_range(path: Path, raw) -> range:
    if raw is None:
        return range(0)
    if not isinstance(raw, dict) or set(raw) - {"start", "stop", "step"} or "stop" not in raw:
        raise _problem(path, "negative_frames", "must be {start: N, stop: N, step: N} (start 0 and step 1 if left out)")
    values = {k: raw.get(k, d) for k, d in (("start", 0), ("stop", None), ("step", 1))}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        raise _problem(path, "negative_frames", "start, stop and step must be integers")
    if values["start"] < 0 or values["step"] < 1 or values["stop"] <= values["start"]:
        raise _problem(path, "negative_frames", "needs 0 <= start < stop and step >= 1")
    return range(values["start"], values["stop"], values["step"])


def _decode_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError(f"{video}: cannot open the video")
    found: dict[int, np.ndarray] = {}
    index = 0
    try:
        while len(found) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                found[index] = frame
            index += 1
    finally:
        cap.release()
    return found


def build_footage_dataset(labels: FootageLabels | Path | str, shared_dir: Path, out_dir: Path) -> Path:
    """Write the labelled frames of one video as a YOLO dataset (split ``test``). Returns its data.yaml.

    Raises DatasetError when the video is missing, a labelled frame is beyond its end, or a box leaves the frame.
    """
    if not isinstance(labels, FootageLabels):
        labels = load_footage_labels(labels)
    video = Path(shared_dir) / labels.source
    if not video.is_file():
        raise DatasetError(f"{labels.path}: source {labels.source}: no such video under {shared_dir}")
    out_dir = Path(out_dir)
    require_empty_dir(out_dir)
    decoded = _decode_frames(video, {f.index for f in labels.frames})
    missing = sorted({f.index for f in labels.frames} - set(decoded))
    if missing:
        raise DatasetError(f"{labels.path}: frames {missing} lie beyond the end of {labels.source}")
    stem = Path(labels.source).stem
    class_id = {name: i for i, name in enumerate(labels.classes)}
    for frame in labels.frames:
        image = decoded[frame.index]
        h, w = image.shape[:2]
        outside = [k for k, b in enumerate(frame.xyxy_px) if b[2] > w or b[3] > h]
        if outside:
            raise DatasetError(f"{labels.path}: frames.{frame.index}[{outside[0]}]: box "
                               f"{frame.xyxy_px[outside[0]].tolist()} leaves the {w}x{h} frame")
        name = f"{stem}_f{frame.index:06d}"
        image_path = out_dir / "images" / SPLIT / f"{name}.png"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(image_path), image):
            raise DatasetError(f"{image_path}: cannot write the frame")
        rows, _ = xyxy_px_to_cxcywh_norm(frame.xyxy_px, w, h)
        write_labels(out_dir / "labels" / SPLIT / f"{name}.txt", [class_id[n] for n in frame.class_names], rows)
    (out_dir / "footage.json").write_text(json.dumps({
        "labels": str(labels.path), "source": labels.source, "labelled_by": labels.labelled_by,
        "notes": labels.notes, "frames": len(labels.frames), "boxes": labels.n_boxes}, indent=2) + "\n")
    return write_data_yaml(out_dir, labels.classes, [SPLIT])
