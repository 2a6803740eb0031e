"""Distractor labels from COCO teachers: pseudo-labels kept only where two detectors agree.

Both streetwatch models confuse people, motorbikes and cars with bikes and stalls because they have no class for
them. This module labels those distractor classes on real images with third-party COCO detectors ("teachers",
e.g. ``yolox-nano-coco`` and ``yolov8n-int8-coco``) and writes a new YOLO dataset whose labels are the source's own
boxes plus the teachers' boxes. A teacher box is kept only when

1. both teachers found it: same (mapped) class, IoU >= ``min_iou``, each score >= that teacher's ``min_score``
   (`agree`); one detector's mistakes are mostly its own, so agreement removes most of them at little cost in
   recall, and the kept box is the score-weighted mean of the two;
2. it does not contradict the source's truth (`truth_conflicts`): a COCO ``motorcycle`` or ``car`` lying on a
   labelled ``bicycle`` (IoU >= ``skip_overlap_with_truth``) is the teachers calling the labelled object something
   else, so it is dropped. A ``person`` on a labelled bicycle or stall is kept: a rider or a vendor is a second
   object at the same place, which COCO labels the same way, and "person" is exactly what the student must learn
   to tell apart from the bike under it.

Pure parts (`teacher_boxes`, `agree`, `truth_conflicts`) take and return arrays; `pseudo_label_dataset` walks the
folders, runs the teachers and writes files.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Mapping, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from datasets.yolo import (
    DatasetError,
    contact_sheet,
    cxcywh_norm_to_xyxy_px,
    link_or_copy,
    load_dataset,
    require_empty_dir,
    write_data_yaml,
    write_labels,
    xyxy_px_to_cxcywh_norm,
)
from detector.geometry import box_iou
from detector.imageio import read_image
from detector.runtime.card import ModelCard, sha256_of
from detector.types import Detections

__all__ = [
    "DEFAULT_DISTRACTORS",
    "DEFAULT_MAY_OVERLAP_TRUTH",
    "Teacher",
    "Agreement",
    "PseudoLabelResult",
    "teacher_boxes",
    "agree",
    "truth_conflicts",
    "output_class_names",
    "pseudo_label_dataset",
]

DEFAULT_DISTRACTORS: dict[str, str] = {"person": "person", "motorcycle": "motorcycle", "car": "car"}
"""Teacher (COCO) class name → distractor class name written to the dataset. COCO's ``truck`` and ``bus`` are left
out by default: the confusions seen on real imagery were people, motorbikes and cars, and every extra class costs
the student capacity; add ``truck=car`` where vans parked on a pavement matter."""

DEFAULT_MAY_OVERLAP_TRUTH: frozenset[str] = frozenset({"person"})
"""Distractor classes kept even where they overlap a true box: a rider on a bike, a vendor at a stall."""

SOURCE_CLASS_MATCH_IOU = 0.5
"""IoU at which a teacher box of one of the source's own classes (COCO ``bicycle``) counts as a labelled object."""


class Teacher(Protocol):
    """What `pseudo_label_dataset` needs of a teacher: `detector.runtime.OnnxDetector` is one."""

    card: ModelCard
    path: Path

    def detect(self, image: np.ndarray, min_score: float | None = None) -> Detections: ...


# --- pure parts ---------------------------------------------------------------------------------------------


def teacher_boxes(detections: Detections, class_map: Mapping[str, int], min_score: float) -> Detections:
    """A teacher's boxes of the mapped classes at or above `min_score`, with class ids in the output's space.

    Args:
        detections: The teacher's detections; ``data["class_name"]`` holds its class names.
        class_map: Teacher class name → output class id; other classes are dropped.
        min_score: This teacher's high threshold.

    Example:
        >>> d = Detections([[0, 0, 9, 9], [0, 0, 5, 5], [1, 1, 4, 4]], [0.9, 0.3, 0.8], [0, 0, 2],
        ...                data={"class_name": np.array(["person", "person", "car"])})
        >>> t = teacher_boxes(d, {"person": 3}, 0.5)
        >>> t.class_id.tolist(), len(t)
        ([3], 1)
    """
    names = detections.data.get("class_name")
    if names is None:
        raise ValueError("teacher detections carry no data['class_name'] column")
    ids = np.array([class_map.get(str(n), -1) for n in names], np.int64).reshape(-1)
    keep = (ids >= 0) & (detections.confidence >= min_score)
    kept = detections[keep]
    return Detections(kept.xyxy, kept.confidence, ids[keep], data={"class_name": kept.data["class_name"]})


@dataclass(frozen=True)
class Agreement:
    """Boxes two teachers agree on, and which of each teacher's boxes found a partner.

    Attributes:
        index_a: (M,) rows of the first teacher's boxes that were matched.
        index_b: (M,) their partners among the second teacher's boxes.
        iou: (M,) IoU of each pair.
        boxes: (M) the kept boxes: score-weighted mean of the pair, the lower of the two scores as confidence
            (the pair is only as sure as its less sure teacher), the shared class id.
        n_a: Boxes the first teacher offered.
        n_b: Boxes the second teacher offered.
    """

    index_a: np.ndarray
    index_b: np.ndarray
    iou: np.ndarray
    boxes: Detections
    n_a: int
    n_b: int

    @property
    def rate_a(self) -> float | None:
        """Share of the first teacher's boxes the second confirmed (None when it offered none)."""
        return len(self.index_a) / self.n_a if self.n_a else None

    @property
    def rate_b(self) -> float | None:
        """Share of the second teacher's boxes the first confirmed (None when it offered none)."""
        return len(self.index_b) / self.n_b if self.n_b else None


def agree(boxes_a: Detections, boxes_b: Detections, min_iou: float) -> Agreement:
    """Match two teachers' boxes one to one: same class id, IoU >= `min_iou`, highest IoU first.

    Score thresholds are applied before (`teacher_boxes`), so every box here already passed its teacher's.
    Greedy matching by IoU is what detection evaluation does too; with boxes of one object from two models the
    best pairs are unambiguous, and a box can confirm only one box of the other teacher.

    Args:
        boxes_a: The first teacher's boxes (class ids in a space shared with `boxes_b`).
        boxes_b: The second teacher's boxes.
        min_iou: Lowest IoU of a pair, in (0, 1].

    Returns:
        The `Agreement`; its boxes are in the order of `index_a`.

    Example:
        >>> a = Detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0])
        >>> b = Detections([[0, 0, 10, 12], [50, 50, 60, 60]], [0.6, 0.7], [0, 1])
        >>> m = agree(a, b, 0.5)
        >>> m.index_a.tolist(), m.index_b.tolist(), round(float(m.boxes.xyxy[0, 3]), 1), m.rate_a
        ([0], [0], 10.8, 0.5)
    """
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must lie in (0, 1], got {min_iou}")
    iou = box_iou(boxes_a.xyxy, boxes_b.xyxy)
    same_class = boxes_a.class_id[:, None] == boxes_b.class_id[None, :]
    ia, ib = np.nonzero(same_class & (iou >= min_iou))
    order = np.argsort(-iou[ia, ib], kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        a, b = int(ia[k]), int(ib[k])
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            pairs.append((a, b))
    pairs.sort()
    index_a = np.array([p[0] for p in pairs], np.int64)
    index_b = np.array([p[1] for p in pairs], np.int64)
    sa = boxes_a.confidence[index_a].astype(np.float64)
    sb = boxes_b.confidence[index_b].astype(np.float64)
    weight = (sa / np.maximum(sa + sb, 1e-9))[:, None]
    xyxy = weight * boxes_a.xyxy[index_a] + (1 - weight) * boxes_b.xyxy[index_b]
    boxes = Detections(xyxy.reshape(-1, 4), np.minimum(sa, sb), boxes_a.class_id[index_a],
                       data={"score_a": sa, "score_b": sb})
    return Agreement(index_a, index_b, iou[index_a, index_b].astype(np.float64), boxes, len(boxes_a), len(boxes_b))


def truth_conflicts(teacher_xyxy: np.ndarray, teacher_class_names: Sequence[str], truth_xyxy: np.ndarray,
                    max_iou: float, may_overlap: Collection[str] = DEFAULT_MAY_OVERLAP_TRUTH) -> np.ndarray:
    """Which teacher boxes contradict the source's truth: they lie on a true box and may not.

    A teacher box of a class outside `may_overlap` whose IoU with any true box (of any of the source's own
    classes) is at least `max_iou` is the teachers naming a labelled object differently (a COCO ``motorcycle`` on
    a labelled ``bicycle``); keeping it would label one object as two classes.

    Args:
        teacher_xyxy: (N, 4) teacher boxes in pixels.
        teacher_class_names: (N,) their output class names.
        truth_xyxy: (M, 4) the source's own boxes in the same pixels.
        max_iou: IoU with a true box at and above which a box conflicts, in (0, 1].
        may_overlap: Classes never in conflict (a person riding a bike is a second object).

    Returns:
        (N,) bool, True where the box must be dropped.

    Example:
        >>> truth_conflicts(np.array([[0, 0, 10, 10], [0, 0, 10, 9]]), ["motorcycle", "person"],
        ...                 np.array([[0, 0, 10, 10]]), 0.5).tolist()
        [True, False]
    """
    if not 0.0 < max_iou <= 1.0:
        raise ValueError(f"skip_overlap_with_truth must lie in (0, 1], got {max_iou}")
    xyxy = np.asarray(teacher_xyxy, np.float64).reshape(-1, 4)
    names = list(teacher_class_names)
    if len(names) != len(xyxy):
        raise ValueError(f"{len(names)} class names for {len(xyxy)} teacher boxes")
    truth = np.asarray(truth_xyxy, np.float64).reshape(-1, 4)
    if not len(xyxy) or not len(truth):
        return np.zeros(len(xyxy), bool)
    overlaps = box_iou(xyxy, truth).max(axis=1) >= max_iou
    exempt = np.array([n in may_overlap for n in names], bool)
    return overlaps & ~exempt


def output_class_names(source_names: Sequence[str], distractors: Sequence[str],
                       target_classes: Sequence[str] | None = None) -> list[str]:
    """The written dataset's classes: `target_classes` when given, else the source's then the distractors.

    Raises:
        DatasetError: A distractor the source labels itself (its boxes would be doubled), or a `target_classes`
            that leaves out a source class or a distractor.

    Example:
        >>> output_class_names(["bicycle"], ["person", "car"])
        ['bicycle', 'person', 'car']
    """
    doubled = [d for d in distractors if d in source_names]
    if doubled:
        raise DatasetError(f"the source dataset labels {', '.join(doubled)} itself; a teacher must not add them")
    if target_classes is None:
        return list(source_names) + [d for d in dict.fromkeys(distractors)]
    names = list(target_classes)
    if len(set(names)) != len(names):
        raise DatasetError(f"target classes name a class twice: {names}")
    missing = [n for n in [*source_names, *distractors] if n not in names]
    if missing:
        raise DatasetError(f"target classes {names} leave out {', '.join(missing)} (rename source classes afterwards "
                           "with `streetwatch dataset merge --map`)")
    return names


# --- the dataset ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudoLabelResult:
    """What `pseudo_label_dataset` wrote.

    Attributes:
        data_yaml: The new dataset's data.yaml.
        summary_path: Its ``pseudo_labels.json``.
        summary: The same summary as a dict (counts per class, agreement, thresholds, teachers).
        sheet_png: The contact sheet, when one was asked for.
    """

    data_yaml: Path
    summary_path: Path
    summary: dict
    sheet_png: Path | None = None


@dataclass
class _ClassCounts:
    """Running counts of one distractor class (mutable while the images are walked)."""

    teacher_a: int = 0
    teacher_b: int = 0
    agreed: int = 0
    dropped_truth_conflict: int = 0
    kept: int = 0
    images: int = 0

    def as_dict(self) -> dict:
        return {
            "teacher_a_boxes": self.teacher_a, "teacher_b_boxes": self.teacher_b, "agreed": self.agreed,
            "a_confirmed_by_b": _rate(self.agreed, self.teacher_a),
            "b_confirmed_by_a": _rate(self.agreed, self.teacher_b),
            "dropped_truth_conflict": self.dropped_truth_conflict, "kept": self.kept, "images_with_kept": self.images,
        }


@dataclass
class _SplitCounts:
    images: int = 0
    images_with_kept: int = 0
    source_boxes: int = 0
    per_class: dict[str, _ClassCounts] = field(default_factory=dict)
    # Agreed teacher boxes of the source's own classes (COCO `bicycle` on bicycles-2000): matched to a true box, or
    # not (a missing label, or a teacher error); reported only, never written.
    source_class_agreed_on_truth: Counter = field(default_factory=Counter)
    source_class_agreed_off_truth: Counter = field(default_factory=Counter)


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def _teacher_record(teacher: Teacher, min_score: float) -> dict:
    card = teacher.card
    # A card's sha256 was checked when the model loaded; a card without one gets the file hashed here.
    sha = card.sha256 or sha256_of(Path(teacher.path))
    return {"name": card.name, "version": card.version, "file": Path(teacher.path).name, "format": card.format,
            "sha256": sha, "min_score": min_score}


def _sample(n: int, max_images: int | None, seed: int) -> list[int]:
    if max_images is None or max_images >= n:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, size=max_images, replace=False).tolist())


def pseudo_label_dataset(
    data_yaml: Path,
    out_dir: Path,
    teachers: Sequence[Teacher],
    classes: Mapping[str, str] = DEFAULT_DISTRACTORS,
    target_classes: Sequence[str] | None = None,
    min_score: float | Sequence[float] = 0.5,
    min_iou: float = 0.5,
    splits: Sequence[str] = ("train",),
    skip_overlap_with_truth: float = 0.5,
    may_overlap_truth: Collection[str] = DEFAULT_MAY_OVERLAP_TRUTH,
    max_images: int | None = None,
    seed: int = 0,
    sheet_png: Path | None = None,
    sheet_n: int = 25,
    link: bool = True,
    progress: bool = True,
) -> PseudoLabelResult:
    """Write a YOLO dataset: the source's own boxes plus the distractor boxes two teachers agree on.

    Images are hard-linked (`link_or_copy`), never copied; write `out_dir` under ``var/``, not into the
    repository. Only the named splits are written (a holdout pseudo-labelled for measuring stays a holdout).

    Args:
        data_yaml: The source dataset (data.yaml or its folder).
        out_dir: A new or empty folder: gets ``images/<split>``, ``labels/<split>``, ``data.yaml``,
            ``pseudo_labels.json`` (the summary) and ``pseudo_boxes.jsonl`` (per image with agreed boxes: those
            kept, those dropped on a true box with their IoU, and agreed boxes of the source's own classes that
            match no true box), for checking by eye.
        teachers: Exactly two loaded detectors (e.g. ``detector.runtime.load_model("yolox-nano-coco")``).
        classes: Teacher class name → distractor class name (several teacher classes may share one).
        target_classes: The written class list in id order; default: the source's classes, then the distractors.
        min_score: Each teacher's high threshold: one value for both, or one per teacher.
        min_iou: Lowest IoU at which two teachers' boxes are the same object.
        splits: Source splits to label (each must exist).
        skip_overlap_with_truth: IoU with a true box at which a teacher box contradicts the truth (`truth_conflicts`).
        may_overlap_truth: Distractor classes exempt from that rule (default: person).
        max_images: Label a seeded random sample of at most this many images per split (default: all).
        seed: Which sample (also the sheet's).
        sheet_png: Where to write a contact sheet of a random sample of the first split, boxes drawn.
        sheet_n: Images on the sheet.
        link: Hard-link (or symlink) images; False copies them.
        progress: Show a tqdm bar per split on stderr.

    Returns:
        A `PseudoLabelResult`.

    Raises:
        DatasetError: A bad argument (named), a split the source lacks, an output folder that is not empty.

    Example:
        >>> from detector.runtime import load_model
        >>> r = pseudo_label_dataset(Path("../shared/data/bicycles-2000"), Path("var/teacher/b2k"),
        ...                          [load_model("yolox-nano-coco"), load_model("yolov8n-int8-coco")])  # doctest: +SKIP
        >>> r.summary["classes"]["person"]["kept"] > 0  # doctest: +SKIP
        True
    """
    if len(teachers) != 2:
        raise DatasetError(f"need exactly two teachers (pseudo-labels are kept where two agree), got {len(teachers)}")
    scores = [float(min_score)] * 2 if isinstance(min_score, (int, float)) else [float(s) for s in min_score]
    if len(scores) != 2 or not all(0.0 < s <= 1.0 for s in scores):
        raise DatasetError(f"min_score must be one value or one per teacher, each in (0, 1]; got {min_score}")
    if not 0.0 < min_iou <= 1.0:
        raise DatasetError(f"min_iou must lie in (0, 1], got {min_iou}")
    if not 0.0 < skip_overlap_with_truth <= 1.0:
        raise DatasetError(f"skip_overlap_with_truth must lie in (0, 1], got {skip_overlap_with_truth}")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"max_images must be at least 1, got {max_images}")
    if not classes:
        raise DatasetError("no distractor classes to label")
    for teacher in teachers:
        unknown = [c for c in classes if c not in teacher.card.classes]
        if unknown:
            raise DatasetError(f"teacher {teacher.card.name} has no class {', '.join(map(repr, unknown))}")

    records = [_teacher_record(t, s) for t, s in zip(teachers, scores)]
    if records[0]["sha256"] == records[1]["sha256"]:
        # One model twice always agrees with itself: the check would pass every one of its mistakes.
        raise DatasetError(f"the two teachers are the same model file ({records[0]['file']}); give two different ones")

    started = time.monotonic()
    source = load_dataset(data_yaml)
    splits = tuple(dict.fromkeys(splits))  # `--split train --split train` labels train once
    missing = [s for s in splits if s not in source.splits]
    if missing:
        raise DatasetError(f"{source.data_yaml}: no split {', '.join(missing)}; "
                           f"it has {sorted(source.splits) or 'none'}")
    if not splits:
        raise DatasetError("no splits to label")
    distractors = list(dict.fromkeys(classes.values()))
    names = output_class_names(source.class_names, distractors, target_classes)
    out_dir = Path(out_dir)
    require_empty_dir(out_dir)

    class_map = {teacher_name: names.index(target) for teacher_name, target in classes.items()}
    source_to_out = np.array([names.index(n) for n in source.class_names], np.int64)
    # Teacher classes that are the source's own classes by name (COCO `bicycle` on bicycles-2000): checked against
    # the truth and reported, never written.
    own_map = {n: i for i, n in enumerate(source.class_names)
               if all(n in t.card.classes for t in teachers)}
    other_seen: list[Counter] = [Counter(), Counter()]
    counts: dict[str, _SplitCounts] = {}

    out_dir.mkdir(parents=True, exist_ok=True)
    audit_path = out_dir / "pseudo_boxes.jsonl"
    with audit_path.open("w", encoding="utf-8") as audit:
        for split in splits:
            images = source.splits[split]
            sc = counts[split] = _SplitCounts(per_class={d: _ClassCounts() for d in distractors})
            seen_names: set[str] = set()
            for index in tqdm(_sample(len(images), max_images, seed), desc=f"pseudo-label {split}", unit="img",
                              disable=not progress):
                item = images[index]
                if item.image_path.name in seen_names:
                    raise DatasetError(f"{item.image_path}: another image of split {split!r} has the name "
                                       f"{item.image_path.name!r}")
                seen_names.add(item.image_path.name)
                image = read_image(item.image_path)
                height_px, width_px = image.shape[:2]
                raw = [t.detect(image, min_score=s) for t, s in zip(teachers, scores)]
                for counter, det in zip(other_seen, raw):
                    counter.update(str(n) for n in det.data["class_name"] if str(n) not in classes)
                truth_xyxy = cxcywh_norm_to_xyxy_px(item.boxes_cxcywh_norm, width_px, height_px)
                labelled = _label_image(raw, scores, class_map, names, truth_xyxy, min_iou, skip_overlap_with_truth,
                                        may_overlap_truth)
                off_truth = _own_classes_off_truth(raw, scores, own_map, item.class_id, truth_xyxy, min_iou)
                _count(sc, labelled, off_truth, names, distractors, source.class_names)
                record = _audit_record(split, item.image_path.name, labelled, off_truth, names, source.class_names)
                if record is not None:
                    audit.write(json.dumps(record, ensure_ascii=False) + "\n")

                rows, ok = xyxy_px_to_cxcywh_norm(labelled.kept.xyxy, width_px, height_px)
                out_cls = np.concatenate([source_to_out[item.class_id], labelled.kept.class_id[ok].astype(np.int64)])
                out_rows = np.concatenate([item.boxes_cxcywh_norm, rows[ok]])
                link_or_copy(item.image_path, out_dir / "images" / split / item.image_path.name, link)
                write_labels(out_dir / "labels" / split / f"{item.image_path.stem}.txt", out_cls, out_rows)
                sc.images += 1
                sc.images_with_kept += int(len(labelled.kept) > 0)
                sc.source_boxes += len(item)

    out_yaml = write_data_yaml(out_dir, names, splits)
    summary = _summary(source.data_yaml, names, classes, distractors, teachers, records, scores, min_iou,
                       skip_overlap_with_truth, may_overlap_truth, max_images, seed, counts, other_seen)
    sheet = None
    if sheet_png is not None:
        sheet = contact_sheet(out_yaml, splits[0], Path(sheet_png), n_images=sheet_n, seed=seed)
        summary["sheet_png"] = str(sheet)
    summary["elapsed_s"] = round(time.monotonic() - started, 1)
    summary_path = out_dir / "pseudo_labels.json"
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return PseudoLabelResult(out_yaml, summary_path, summary, sheet)


@dataclass(frozen=True)
class _LabelledImage:
    """One image's teacher boxes: each teacher's (mapped, thresholded), their agreement, and what was kept."""

    boxes_a: Detections
    boxes_b: Detections
    agreement: Agreement
    conflict: np.ndarray  # (M,) per agreed box: lies on a true box and may not
    conflict_iou: np.ndarray  # (M,) highest IoU of each agreed box with a true box (0 without truth)
    kept: Detections


def _label_image(raw: Sequence[Detections], scores: Sequence[float], class_map: Mapping[str, int], names: list[str],
                 truth_xyxy: np.ndarray, min_iou: float, skip_overlap: float,
                 may_overlap: Collection[str]) -> _LabelledImage:
    boxes_a, boxes_b = (teacher_boxes(d, class_map, s) for d, s in zip(raw, scores))
    agreement = agree(boxes_a, boxes_b, min_iou)
    conflict = truth_conflicts(agreement.boxes.xyxy, [names[int(c)] for c in agreement.boxes.class_id], truth_xyxy,
                               skip_overlap, may_overlap)
    iou = (box_iou(agreement.boxes.xyxy, truth_xyxy).max(axis=1) if len(truth_xyxy) and len(agreement.boxes)
           else np.zeros(len(agreement.boxes), np.float32))
    return _LabelledImage(boxes_a, boxes_b, agreement, conflict, iou, agreement.boxes[~conflict])


def _own_classes_off_truth(raw: Sequence[Detections], scores: Sequence[float], own_map: Mapping[str, int],
                           truth_class_id: np.ndarray, truth_xyxy: np.ndarray,
                           min_iou: float) -> tuple[Detections, np.ndarray]:
    """Agreed teacher boxes of the source's own classes that match no true box, and the class ids of those that do.

    On bicycles-2000 an agreed COCO ``bicycle`` off every labelled bicycle is a missing label or a teacher error;
    both are worth a look, and neither is written.
    """
    if not own_map:
        return Detections.empty(), np.zeros(0, np.int64)
    own = agree(*(teacher_boxes(d, own_map, s) for d, s in zip(raw, scores)), min_iou).boxes
    on_truth = np.zeros(len(own), bool)
    for i in range(len(own)):
        same = truth_xyxy[truth_class_id == own.class_id[i]]
        on_truth[i] = bool(len(same)) and float(box_iou(own.xyxy[i:i + 1], same).max()) >= SOURCE_CLASS_MATCH_IOU
    return own[~on_truth], own.class_id[on_truth].astype(np.int64)


def _count(sc: _SplitCounts, labelled: _LabelledImage, off_truth: tuple[Detections, np.ndarray], names: list[str],
           distractors: Sequence[str], source_names: Sequence[str]) -> None:
    agreed = labelled.agreement.boxes.class_id
    for name in distractors:
        c, cid = sc.per_class[name], names.index(name)
        c.teacher_a += int((labelled.boxes_a.class_id == cid).sum())
        c.teacher_b += int((labelled.boxes_b.class_id == cid).sum())
        c.agreed += int((agreed == cid).sum())
        c.dropped_truth_conflict += int((agreed[labelled.conflict] == cid).sum())
        n_kept = int((labelled.kept.class_id == cid).sum())
        c.kept += n_kept
        c.images += int(n_kept > 0)
    off, on_class_id = off_truth
    sc.source_class_agreed_off_truth.update(source_names[int(c)] for c in off.class_id)
    sc.source_class_agreed_on_truth.update(source_names[int(c)] for c in on_class_id)


def _box_record(xyxy: np.ndarray, name: str, **extra: float) -> dict:
    return {"class": name, "xyxy": [round(float(v), 1) for v in xyxy],
            **{k: round(float(v), 3) for k, v in extra.items()}}


def _audit_record(split: str, image_name: str, labelled: _LabelledImage, off_truth: tuple[Detections, np.ndarray],
                  names: list[str], source_names: Sequence[str]) -> dict | None:
    """One line of ``pseudo_boxes.jsonl`` for an image with agreed boxes or unlabelled-looking objects, else None."""
    boxes = labelled.agreement.boxes
    off, _ = off_truth
    if not len(boxes) and not len(off):
        return None
    kept, dropped = [], []
    for i in range(len(boxes)):
        rec = _box_record(boxes.xyxy[i], names[int(boxes.class_id[i])], score_a=boxes.data["score_a"][i],
                          score_b=boxes.data["score_b"][i], iou_with_truth=labelled.conflict_iou[i])
        (dropped if labelled.conflict[i] else kept).append(rec)
    return {"split": split, "image": image_name, "kept": kept, "dropped_truth_conflict": dropped,
            "source_class_off_truth": [_box_record(off.xyxy[i], source_names[int(off.class_id[i])])
                                       for i in range(len(off))]}


def _summary(source_yaml: Path, names: list[str], classes: Mapping[str, str], distractors: list[str],
             teachers: Sequence[Teacher], records: list[dict], scores: list[float], min_iou: float, skip_overlap: float,
             may_overlap: Collection[str], max_images: int | None, seed: int, counts: dict[str, _SplitCounts],
             other_seen: list[Counter]) -> dict:
    """``pseudo_labels.json``: settings, teachers, and counts per split and over all splits."""
    total = {d: _ClassCounts() for d in distractors}
    for sc in counts.values():
        for d, c in sc.per_class.items():
            t = total[d]
            t.teacher_a += c.teacher_a
            t.teacher_b += c.teacher_b
            t.agreed += c.agreed
            t.dropped_truth_conflict += c.dropped_truth_conflict
            t.kept += c.kept
            t.images += c.images
    n_a = sum(c.teacher_a for c in total.values())
    n_b = sum(c.teacher_b for c in total.values())
    n_agreed = sum(c.agreed for c in total.values())
    return {
        "source": str(source_yaml),
        "class_names": names,
        "teacher_classes": dict(classes),
        "thresholds": {"min_score": {t.card.name: s for t, s in zip(teachers, scores)}, "min_iou": min_iou,
                       "skip_overlap_with_truth": skip_overlap, "may_overlap_truth": sorted(may_overlap)},
        "teachers": records,
        "sample": {"max_images_per_split": max_images, "seed": seed},
        "images": sum(sc.images for sc in counts.values()),
        "images_with_kept": sum(sc.images_with_kept for sc in counts.values()),
        "agreement": {"a": teachers[0].card.name, "b": teachers[1].card.name, "teacher_a_boxes": n_a,
                      "teacher_b_boxes": n_b, "agreed": n_agreed, "a_confirmed_by_b": _rate(n_agreed, n_a),
                      "b_confirmed_by_a": _rate(n_agreed, n_b)},
        "classes": {d: c.as_dict() for d, c in total.items()},
        "splits": {
            split: {
                "images": sc.images, "images_with_kept": sc.images_with_kept, "source_boxes": sc.source_boxes,
                "classes": {d: c.as_dict() for d, c in sc.per_class.items()},
                "source_class_check": {
                    n: {"agreed_on_truth": sc.source_class_agreed_on_truth[n],
                        "agreed_off_truth": sc.source_class_agreed_off_truth[n]}
                    for n in sorted(set(sc.source_class_agreed_on_truth) | set(sc.source_class_agreed_off_truth))},
            }
            for split, sc in counts.items()
        },
        # What else the teachers saw at their thresholds (classes outside the map): on nadir chips this shows
        # whether COCO detectors see anything meaningful at all.
        "other_teacher_classes": {t.card.name: dict(c.most_common(15)) for t, c in zip(teachers, other_seen)},
        "boxes_file": "pseudo_boxes.jsonl",
    }
