"""A YOLO dataset from reviewers' decisions: confirmed cases are positives, rejected cases hard negatives.

`streetwatch dataset from-reviews` reads the reviewed cases of the case store (read-only, through
`service.review_export`, which hands them over as plain `ReviewedCase` records: this module never imports the
service), takes each reviewed case's *original* evidence frame (never the annotated copy) and its stored boxes
(frame pixels), and writes a dataset that `streetwatch train` fine-tunes on and `streetwatch dataset merge`
merges with others.

What counts as what:

* ``confirmed``, ``posted`` and ``post_failed`` cases are positives: every box of the frame is labelled with
  the reviewed class (see `case_class`: the detector's class when it belongs to the reviewed kind, else the
  kind's default class, so a reviewer's change of kind changes the label). With per-frame boxes (below) the
  detector's class is each box's own (a cluster of bicycles and an e-bike keeps both classes); with the
  case's boxes it is the case's main class for every box. Which classes make up which kind is the caller's
  table (`ExportOptions.kind_classes`; the command line passes the service's kind catalogue,
  `service.kinds.kind_classes`, with its ``--kind-class`` overrides).
* ``rejected`` cases are hard negatives: the frame with an empty label file, which ultralytics trains as a
  background image (no targets: everything it predicts there is a false positive). Only rejections that
  say the detector was wrong should be used: "the bike is in the allowed area" rejects a *rule*, and the bike
  is still a bike. `--negative-reason REGEX` keeps only rejections whose reason matches.
* ``pending`` cases are not reviewed and ``merged`` ones live on in their target: neither is exported.

ultralytics has no "ignore" regions: every pixel of a training image that is not inside a label is learnt as
background, including a real bicycle parked legally next to the confirmed misparked one, which no reviewer
labelled. A street frame almost always holds such things, so by default (``scope="region"``) only the
case's boxes plus a context margin keep their pixels and the rest of the frame is filled with ultralytics'
letterbox grey (114), at the frame's own size so object scale is unchanged. ``scope="frame"`` exports the
whole frame (hard-linked or copied unchanged): use it only for frames known to hold nothing else of the
target classes.

Boxes and frames: an evidence frame is kept when a violation opens and then at most every
``evidence_interval_s``, and since migration 0002 each evidence row stores the boxes (and classes) of the
observation its frame shows (``evidence.boxes``). The newest original frame that has its own boxes is used,
with exactly those boxes: they belong to that frame, so no age check applies (``boxes_from: frame``).
Evidence rows written before 0002 have no boxes; for a case with only such frames the old pairing applies:
the case stores the boxes of its latest observation, the newest original frame taken at or before it is
used, and the boxes are trusted only when they were observed at most ``max_box_age_s`` after it (objects
that trigger cases stand still, but a bike cluster can gain or lose members); older pairings are skipped
(``boxes_from: case``). A database still at schema 0001 is read the same way (no boxes at all).

The split is by group, so near-duplicate frames of one camera and day (or of one case) never fall on both
sides: a group's split comes from a hash of its key alone (`datasets.yolo.assign_split`), so re-exporting
with more reviews never moves a frame from val to train.

Example:
    >>> from service.review_export import read_reviewed_cases  # doctest: +SKIP
    >>> found = read_reviewed_cases("sqlite:///var/streetwatch.sqlite3")  # doctest: +SKIP
    >>> options = ExportOptions(class_names=("bicycle", "stall", "ebike"),
    ...                         kind_classes={"bike_misparked": ("bicycle", "ebike"), "stall_occupation": ("stall",)})
    >>> summary = export_reviewed_cases(found.cases, Path("var/reviews-ds"), options,
    ...                                 not_reviewed=found.not_reviewed, source=found.source)  # doctest: +SKIP
    >>> summary["images"]  # doctest: +SKIP
    {'train': 41, 'val': 9}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import cv2
import numpy as np

from datasets.progress import Progress, no_progress
from datasets.yolo import (
    LABEL_DECIMALS,
    DatasetError,
    assign_split,
    link_or_copy,
    write_data_yaml,
    write_labels,
    xyxy_px_to_cxcywh_norm,
)

__all__ = [
    "ExportOptions", "ReviewedCase", "POSITIVE_STATUSES", "NEGATIVE_STATUSES", "EvidenceFrame", "case_class",
    "choose_frame", "export_reviewed_cases", "frame_boxes", "mask_outside_boxes", "newest_frame_with_boxes",
    "split_key", "xyxy_to_yolo",
]

POSITIVE_STATUSES = ("confirmed", "posted", "post_failed")
NEGATIVE_STATUSES = ("rejected",)
PAD_VALUE = 114
"""ultralytics' letterbox grey: masked-out pixels look like padding, not like a scene."""

SplitBy = Literal["camera-day", "case"]
Scope = Literal["region", "frame"]


@dataclass(frozen=True)
class ExportOptions:
    """How reviewed cases become a dataset.

    Attributes:
        class_names: The target dataset's classes, in class-id order (e.g. the street model's).
        val_frac: Expected share of groups in val (0: train only).
        split_by: ``camera-day`` (camera and UTC day of the frame) or ``case``: what a split group is.
        seed: Changes the group assignment as a whole.
        since: Only cases decided (confirmed or rejected) at or after this time.
        scope: ``region`` (keep the boxes plus context, grey elsewhere) or ``frame`` (the whole frame).
        context_frac: In ``region`` scope, the margin kept around each box as a share of its longer side.
        min_context_px: ...and at least this many pixels.
        max_box_age_s: Skip a case whose boxes were observed longer than this after its newest original frame
            (only for cases whose frames carry no boxes of their own: evidence stored before migration 0002).
        kind_classes: Violation kind → the detector classes it is made of, the first being the kind's class
            when the detector's class does not belong to the kind (a reviewer changed the kind). The whole
            table, given by the caller (the command line: `service.kinds.kind_classes` plus ``--kind-class``);
            keyword only and required, so a forgotten table cannot silently relabel nothing.
        class_map: Renames applied to the final class (``None`` drops: the case is skipped).
        negative_reason: A regular expression (case-insensitive, searched); when set, only rejections whose
            reason matches become negatives.
        negatives: Export rejected cases at all.
        link: Hard-link (``frame`` scope) instead of copying the evidence file.
        jpeg_quality: Quality of images written in ``region`` scope.
    """

    class_names: Sequence[str]
    val_frac: float = 0.2
    split_by: SplitBy = "camera-day"
    seed: int = 0
    since: datetime | None = None
    scope: Scope = "region"
    context_frac: float = 0.5
    min_context_px: float = 32.0
    max_box_age_s: float = 600.0
    kind_classes: Mapping[str, Sequence[str]] = field(kw_only=True)
    class_map: Mapping[str, str | None] = field(default_factory=dict)
    negative_reason: str | None = None
    negatives: bool = True
    link: bool = True
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        names = list(self.class_names)
        if not names or len(set(names)) != len(names):
            raise DatasetError(f"class names must be a non-empty list of distinct names, got {names}")
        if not 0.0 <= self.val_frac < 1.0:
            raise DatasetError(f"val fraction must lie within [0, 1), got {self.val_frac}")
        if self.split_by not in ("camera-day", "case"):
            raise DatasetError(f"split_by must be 'camera-day' or 'case', got {self.split_by!r}")
        if self.scope not in ("region", "frame"):
            raise DatasetError(f"scope must be 'region' or 'frame', got {self.scope!r}")
        if self.context_frac < 0 or self.min_context_px < 0 or self.max_box_age_s < 0:
            raise DatasetError("context_frac, min_context_px and max_box_age_s must not be negative")
        for kind, classes in self.kind_classes.items():
            if isinstance(classes, str) or not classes or not all(isinstance(c, str) and c for c in classes):
                raise DatasetError(f"kind_classes[{kind!r}]: expected a non-empty list of class names, got "
                                   f"{classes!r}")
        if self.since is not None and self.since.tzinfo is None:
            raise DatasetError(f"since {self.since.isoformat()}: give a time zone (e.g. ...Z or +08:00)")
        if self.negative_reason is not None:
            try:
                re.compile(self.negative_reason)
            except re.error as exc:
                raise DatasetError(f"negative reason {self.negative_reason!r}: not a regular expression: {exc}") \
                    from None

    def kind_table(self) -> dict[str, tuple[str, ...]]:
        """`kind_classes` as a plain dict of tuples."""
        return {k: tuple(v) for k, v in self.kind_classes.items()}


@dataclass(frozen=True)
class EvidenceFrame:
    """One original evidence frame of a case, as stored.

    Attributes:
        boxes: The frame's own boxes as stored in the case store's ``evidence.boxes`` (a list of ``{"xyxy",
            "class_name", ...}`` objects; parsed by `frame_boxes`), or None for a row written before they were
            stored.
    """

    path: str
    ts: datetime
    sha256: str | None
    boxes: Any = None


@dataclass(frozen=True)
class ReviewedCase:
    """What the export needs of one reviewed case: a plain record (`service.review_export` reads it from the
    case store, detached from it).

    Attributes:
        camera_id: The case's origin: its camera, or ``flight:<flight id>`` for a drone flight's case (the
            ``camera-day`` split keeps one origin's day together).
        boxes: (N, 4) boxes of the case's latest observation, frame pixels (used only with frames that have
            no boxes of their own).
        decided_at, decided_by: The confirm/reject audit entry (None when the store has none).
        originals: The case's ``original`` evidence frames, oldest first.
    """

    case_id: int
    status: str
    kind: str
    corrected_kind: str | None
    class_name: str | None
    camera_id: str
    boxes: np.ndarray
    last_seen: datetime
    reject_reason: str | None
    decided_at: datetime | None
    decided_by: str | None
    originals: tuple[EvidenceFrame, ...]


# --- pure decisions -----------------------------------------------------------------------------------------


def case_class(kind: str, corrected_kind: str | None, class_name: str | None,
               kind_classes: Mapping[str, Sequence[str]],
               class_map: Mapping[str, str | None] | None = None) -> tuple[str | None, str]:
    """The label class of a confirmed case, or None with the reason.

    The reviewed kind is the corrected one when a reviewer changed it. The detector's class is kept when it
    is one of that kind's classes (an e-bike stays an e-bike in a misparked-bike case); otherwise (the kind
    was corrected, say from a stall to misparked bikes) the kind's first class is used. `class_map` renames
    the result last (None drops it).

    Example:
        >>> kinds = {"bike_misparked": ("bicycle", "ebike"), "stall_occupation": ("stall",)}
        >>> case_class("bike_misparked", None, "ebike", kinds)
        ('ebike', 'detector class')
        >>> case_class("stall_occupation", "bike_misparked", "stall", kinds)
        ('bicycle', 'class of corrected kind bike_misparked')
        >>> case_class("graffiti", None, None, kinds)
        (None, 'no class for kind graffiti')
    """
    reviewed = corrected_kind or kind
    allowed = tuple(kind_classes.get(reviewed, ()))
    if class_name and (class_name in allowed or (not allowed and reviewed == kind)):
        name, why = class_name, "detector class"
    elif allowed:
        name, why = allowed[0], (f"class of corrected kind {reviewed}" if corrected_kind and corrected_kind != kind
                                 else f"class of kind {reviewed}")
    else:
        return None, f"no class for kind {reviewed}"
    if class_map and name in class_map:
        mapped = class_map[name]
        if mapped is None:
            return None, f"class {name} dropped by the class map"
        name = mapped
    return name, why


def choose_frame(originals: Sequence[EvidenceFrame], boxes_seen: datetime) -> tuple[EvidenceFrame | None, float]:
    """The newest original frame taken at or before `boxes_seen`, and how much older it is than the boxes (s).

    Example:
        >>> t = datetime(2026, 6, 1, tzinfo=timezone.utc)
        >>> frame, age = choose_frame([EvidenceFrame("a.jpg", t, None)], t.replace(minute=5))
        >>> frame.path, age
        ('a.jpg', 300.0)
    """
    usable = [e for e in originals if e.ts <= boxes_seen]
    if not usable:
        return None, float("nan")
    best = max(usable, key=lambda e: (e.ts, e.path))
    return best, (boxes_seen - best.ts).total_seconds()


def newest_frame_with_boxes(originals: Sequence[EvidenceFrame]) -> EvidenceFrame | None:
    """The newest original frame that stores its own boxes (None when none does: older evidence rows).

    Example:
        >>> t = datetime(2026, 6, 1, tzinfo=timezone.utc)
        >>> frames = [EvidenceFrame("a.jpg", t, None, []), EvidenceFrame("b.jpg", t.replace(hour=1), None)]
        >>> newest_frame_with_boxes(frames).path
        'a.jpg'
    """
    own = [e for e in originals if e.boxes is not None]
    return max(own, key=lambda e: (e.ts, e.path)) if own else None


def frame_boxes(frame: EvidenceFrame) -> tuple[np.ndarray, tuple[str | None, ...]]:
    """(N, 4) frame-pixel boxes and the class of each (None when not stored) from a frame's stored boxes.

    Raises:
        ValueError: The stored value is not a list of ``{"xyxy": [x1, y1, x2, y2], ...}`` objects with
            finite coordinates.

    Example:
        >>> t = datetime(2026, 6, 1, tzinfo=timezone.utc)
        >>> xyxy, classes = frame_boxes(EvidenceFrame("a.jpg", t, None, [
        ...     {"xyxy": [1, 2, 3, 4], "class_name": "ebike", "track_id": 7}]))
        >>> xyxy.tolist(), classes
        ([[1.0, 2.0, 3.0, 4.0]], ('ebike',))
    """
    if not isinstance(frame.boxes, list):
        raise ValueError(f"expected a list of boxes, got {type(frame.boxes).__name__}")
    xyxy, classes = [], []
    for i, box in enumerate(frame.boxes):
        coords = box.get("xyxy") if isinstance(box, dict) else None
        try:
            row = [float(c) for c in coords]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            row = []
        if len(row) != 4 or not all(np.isfinite(row)):
            raise ValueError(f"box {i}: expected {{'xyxy': [x1, y1, x2, y2], ...}}, got {box!r}")
        name = box.get("class_name")
        xyxy.append(row)
        classes.append(str(name) if name else None)
    return np.asarray(xyxy, np.float64).reshape(-1, 4), tuple(classes)


def split_key(split_by: SplitBy, case_id: int, camera_id: str, frame_ts: datetime) -> str:
    """The group a case's image belongs to: its camera and the frame's UTC day, or the case.

    Example:
        >>> split_key("camera-day", 7, "gate-1", datetime(2026, 6, 1, 23, 0, tzinfo=timezone.utc))
        'gate-1|2026-06-01'
    """
    if split_by == "case":
        return f"case-{case_id}"
    return f"{camera_id}|{frame_ts.astimezone(timezone.utc):%Y-%m-%d}"


def xyxy_to_yolo(boxes_xyxy: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    """Frame-pixel boxes → (N, 4) normalised ``cx cy w h``, clipped to the frame; empty boxes are dropped.

    Example:
        >>> xyxy_to_yolo(np.array([[0, 0, 64, 32], [700, 0, 900, 10]]), 640, 320).round(4).tolist()
        [[0.05, 0.05, 0.1, 0.1]]
    """
    keep = _kept_after_clipping(boxes_xyxy, width_px, height_px)
    rows, _ = xyxy_px_to_cxcywh_norm(np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)[keep], width_px, height_px)
    return rows.round(LABEL_DECIMALS)


def _clip_boxes(boxes_xyxy: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width_px)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height_px)
    return b


def _kept_after_clipping(boxes_xyxy: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    """Which boxes `xyxy_to_yolo` keeps: at least 1 px wide and high after clipping to the frame."""
    b = _clip_boxes(boxes_xyxy, width_px, height_px)
    return ((b[:, 2] - b[:, 0]) >= 1.0) & ((b[:, 3] - b[:, 1]) >= 1.0)


def context_windows(boxes_xyxy: np.ndarray, width_px: int, height_px: int, context_frac: float,
                    min_context_px: float) -> np.ndarray:
    """(N, 4) integer windows: each box grown by max(`context_frac` × its longer side, `min_context_px`)."""
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    margin = np.maximum(context_frac * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), min_context_px)
    win = np.column_stack([b[:, 0] - margin, b[:, 1] - margin, b[:, 2] + margin, b[:, 3] + margin])
    win[:, [0, 2]] = np.clip(np.round(win[:, [0, 2]]), 0, width_px)
    win[:, [1, 3]] = np.clip(np.round(win[:, [1, 3]]), 0, height_px)
    return win.astype(np.int64)


def mask_outside_boxes(image: np.ndarray, boxes_xyxy: np.ndarray, context_frac: float = 0.5,
                       min_context_px: float = 32.0, fill: int = PAD_VALUE) -> np.ndarray:
    """A copy of `image` with everything outside the boxes' context windows set to `fill`.

    Example:
        >>> out = mask_outside_boxes(np.zeros((100, 100, 3), np.uint8), np.array([[40, 40, 50, 50]]), 0.0, 5)
        >>> int(out[0, 0, 0]), int(out[45, 45, 0]), int(out[35, 35, 0]), int(out[34, 34, 0])
        (114, 0, 0, 114)
    """
    h, w = image.shape[:2]
    keep = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in context_windows(boxes_xyxy, w, h, context_frac, min_context_px):
        keep[y1:y2, x1:x2] = True
    out = np.full_like(image, fill)
    out[keep] = image[keep]
    return out


# --- writing --------------------------------------------------------------------------------------------------


def _resolve_evidence(path: str, evidence_root: Path | None) -> Path | None:
    p = Path(path)
    candidates = [p] if p.is_absolute() else [p] + ([evidence_root / p] if evidence_root is not None else [])
    return next((c for c in candidates if c.is_file()), None)


@dataclass
class _Planned:
    case: ReviewedCase
    source: Path
    frame_ts: datetime
    box_age_s: float
    label: str | None  # None: a negative
    class_id: np.ndarray
    cxcywh: np.ndarray
    why: str
    group: str
    boxes_xyxy: np.ndarray  # frame pixels: what region scope keeps
    boxes_from: str  # "frame": the evidence row's own boxes; "case": the case's latest boxes
    split: str = "train"


def _assign_splits(planned: list[_Planned], options: ExportOptions) -> list[str]:
    """Split per group from the group key's hash; when that leaves val or train empty, one group moves."""
    warnings: list[str] = []
    groups = sorted({p.group for p in planned})
    fractions = {"train": 1.0 - options.val_frac, "val": options.val_frac}
    split_of = {g: assign_split(g, fractions, options.seed) if options.val_frac > 0 else "train" for g in groups}
    if options.val_frac > 0:
        order = sorted(groups, key=lambda g: hashlib.sha256(f"{options.seed}|{g}".encode()).hexdigest())
        if len(groups) < 2:
            warnings.append(f"only {len(groups)} split group ({options.split_by}): val is empty; merge with a dataset "
                            f"that has val (streetwatch dataset merge) or use --split-by case")
        elif "val" not in split_of.values():
            split_of[order[0]] = "val"
            warnings.append(f"no group hashed into val; moved group {order[0]!r} there")
        elif "train" not in split_of.values():
            split_of[order[-1]] = "train"
            warnings.append(f"no group hashed into train; moved group {order[-1]!r} there")
    for p in planned:
        p.split = split_of[p.group]
    return warnings


def export_reviewed_cases(cases: Iterable[ReviewedCase], out_dir: Path, options: ExportOptions,
                          evidence_root: Path | None = None, not_reviewed: Mapping[str, int] | None = None,
                          source: str = "", progress: Progress = no_progress) -> dict[str, Any]:
    """Write the dataset of `cases` to `out_dir` (new or empty); returns the summary also written as
    ``summary.json``.

    Args:
        cases: Reviewed cases as plain records (`service.review_export.read_reviewed_cases` reads them from the
            case store).
        out_dir: A new or empty folder.
        options: What becomes what (classes, split, scope, negatives).
        evidence_root: Where relative evidence paths are looked up after the working directory (the
            service's ``evidence_dir``).
        not_reviewed: Counts of the store's other cases by status, recorded in the summary.
        source: The store the cases came from (a URL without password), for messages and the summary.
        progress: Wraps the two passes that take time: ``check`` over the cases (evidence found and hashed)
            and ``export`` over the kept ones (images copied or masked and written).

    Raises:
        DatasetError: No reviewed cases, or none of them could be exported (the reasons are named).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: output folder is not empty; choose a new folder")
    cases = list(cases)
    since = f" decided since {options.since.isoformat()}" if options.since else ""
    if not cases:
        raise DatasetError(f"{source or 'database'}: no reviewed cases (confirmed, posted or rejected){since}")
    names = list(options.class_names)
    index = {n: i for i, n in enumerate(names)}
    kinds = options.kind_table()
    reason_re = re.compile(options.negative_reason, re.IGNORECASE) if options.negative_reason else None

    planned: list[_Planned] = []
    skipped: list[dict[str, Any]] = []

    def skip(case: ReviewedCase, reason: str, detail: str = "") -> None:
        skipped.append({"case_id": case.case_id, "status": case.status, "reason": reason, "detail": detail})

    from detector.runtime.card import sha256_of  # here: detector.runtime loads onnxruntime

    for case in progress(cases, "check"):
        positive = case.status in POSITIVE_STATUSES
        label: str | None = None
        why = "rejected"
        if positive:
            label, why = case_class(case.kind, case.corrected_kind, case.class_name, kinds, options.class_map)
            if label is None:
                skip(case, "no class", why)
                continue
            if label not in index:
                skip(case, "class not in target names", f"{label} (target: {', '.join(names)})")
                continue
        else:
            if not options.negatives:
                skip(case, "negatives not exported")
                continue
            if reason_re is not None and not reason_re.search(case.reject_reason or ""):
                skip(case, "rejection reason does not match --negative-reason", case.reject_reason or "")
                continue
        frame = newest_frame_with_boxes(case.originals)
        if frame is not None:  # the frame's own boxes: they belong to it, no age check
            boxes_from, age_s = "frame", 0.0
            try:
                b, box_classes = frame_boxes(frame)
            except ValueError as exc:
                skip(case, "evidence frame boxes unreadable", f"{frame.path}: {exc}")
                continue
        else:  # evidence stored before per-frame boxes: pair the newest frame with the case's latest boxes
            boxes_from, b, box_classes = "case", case.boxes, (case.class_name,) * len(case.boxes)
            if len(b) == 0:
                skip(case, "no boxes")
                continue
            frame, age_s = choose_frame(case.originals, case.last_seen)
            if frame is None:
                skip(case, "no original evidence frame")
                continue
            if age_s > options.max_box_age_s:
                skip(case, "boxes newer than the evidence frame",
                     f"boxes seen {age_s:.0f} s after the frame (limit {options.max_box_age_s:.0f} s)")
                continue
        if len(b) == 0:
            skip(case, "no boxes", f"the evidence frame {frame.path} stores no boxes")
            continue
        box_labels: list[str] = []
        if positive:
            for detector_class in box_classes:
                box_label, box_why = case_class(case.kind, case.corrected_kind, detector_class or case.class_name,
                                                kinds, options.class_map)
                if box_label is None or box_label not in index:
                    break
                box_labels.append(box_label)
            if len(box_labels) != len(b):
                if box_label is None:
                    skip(case, "no class", f"a box of class {detector_class}: {box_why}")
                else:
                    skip(case, "class not in target names", f"{box_label} (target: {', '.join(names)})")
                continue
        path = _resolve_evidence(frame.path, evidence_root)
        if path is None:
            skip(case, "evidence file missing", frame.path)
            continue
        if frame.sha256 is not None and sha256_of(path) != frame.sha256:
            skip(case, "evidence file changed since it was stored (sha256)", str(path))
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            skip(case, "evidence image unreadable", str(path))
            continue
        h, w = image.shape[:2]
        del image  # decoded again when written: thousands of frames must not be held at once
        tolerance_px = 0.02 * max(w, h)
        if (b[:, :2] < -tolerance_px).any() or (b[:, 2] > w + tolerance_px).any() or (b[:, 3] > h + tolerance_px).any():
            skip(case, "boxes do not fit the evidence frame", f"frame {w}x{h}, boxes {b.round(1).tolist()}")
            continue
        cxcywh = xyxy_to_yolo(b, w, h)
        if len(cxcywh) == 0:
            skip(case, "no boxes", "every box is empty after clipping to the frame")
            continue
        kept = _kept_after_clipping(b, w, h)
        class_id = (np.array([index[n] for n, k in zip(box_labels, kept) if k], np.int64) if positive
                    else np.zeros(0, np.int64))
        planned.append(_Planned(case, path, frame.ts, age_s, label if positive else None, class_id,
                                cxcywh if positive else np.zeros((0, 4)), why,
                                split_key(options.split_by, case.case_id, case.camera_id, frame.ts), b, boxes_from))

    if not planned:
        reasons = Counter(s["reason"] for s in skipped)
        raise DatasetError(f"{source or 'database'}: none of {len(cases)} reviewed cases{since} could be exported ("
                           + "; ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")")

    warnings = _assign_splits(planned, options)
    records = []
    for p in progress(planned, "export"):
        stem = f"case_{p.case.case_id:07d}"
        if options.scope == "frame":
            image_path = out_dir / "images" / p.split / f"{stem}{p.source.suffix.lower()}"
            link_or_copy(p.source, image_path, options.link)
        else:
            image_path = out_dir / "images" / p.split / f"{stem}.jpg"
            image_path.parent.mkdir(parents=True, exist_ok=True)
            image = cv2.imread(str(p.source), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"{p.source}: could be read a moment ago and cannot now")
            masked = mask_outside_boxes(image, p.boxes_xyxy, options.context_frac, options.min_context_px)
            if not cv2.imwrite(str(image_path), masked, [cv2.IMWRITE_JPEG_QUALITY, int(options.jpeg_quality)]):
                raise DatasetError(f"{image_path}: cannot write the image")
        write_labels(out_dir / "labels" / p.split / f"{stem}.txt", p.class_id, p.cxcywh)
        records.append({
            "case_id": p.case.case_id, "status": p.case.status, "image": image_path.relative_to(out_dir).as_posix(),
            "split": p.split, "group": p.group, "label": p.label, "label_from": p.why if p.label else None,
            "boxes": int(len(p.class_id)), "kind": p.case.kind, "corrected_kind": p.case.corrected_kind,
            "detector_class": p.case.class_name, "reject_reason": p.case.reject_reason,
            "decided_by": p.case.decided_by,
            "decided_at": p.case.decided_at.isoformat() if p.case.decided_at else None,
            "box_classes": [names[i] for i in p.class_id.tolist()], "boxes_from": p.boxes_from,
            "evidence": str(p.source), "frame_ts": p.frame_ts.isoformat(), "box_age_s": round(p.box_age_s, 1),
        })
    splits = sorted({p.split for p in planned}, key=["train", "val"].index)
    data_yaml = write_data_yaml(out_dir, names, splits)

    boxes_per_class = {n: 0 for n in names}
    images = {s: 0 for s in splits}
    per_split: dict[str, dict[str, int]] = {s: {"positives": 0, "negatives": 0} for s in splits}
    for p in planned:
        images[p.split] += 1
        per_split[p.split]["positives" if p.label else "negatives"] += 1
        for i in p.class_id.tolist():
            boxes_per_class[names[i]] += 1
    ages = [p.box_age_s for p in planned]
    summary = {
        "source": source,
        "data_yaml": data_yaml.name,
        "settings": {
            "class_names": names, "val_frac": options.val_frac, "split_by": options.split_by, "seed": options.seed,
            "since": options.since.isoformat() if options.since else None, "scope": options.scope,
            "context_frac": options.context_frac, "min_context_px": options.min_context_px,
            "max_box_age_s": options.max_box_age_s, "kind_classes": {k: list(v) for k, v in sorted(kinds.items())},
            "class_map": dict(options.class_map), "negative_reason": options.negative_reason,
            "negatives": options.negatives,
        },
        "reviewed_cases": len(cases),
        "not_reviewed": dict(not_reviewed or {}),
        "exported": len(planned),
        "positives": sum(1 for p in planned if p.label),
        "negatives": sum(1 for p in planned if not p.label),
        "images": images,
        "per_split": per_split,
        "groups": {s: len({p.group for p in planned if p.split == s}) for s in splits},
        "boxes_per_class": boxes_per_class,
        # Images whose boxes are the evidence frame's own, and those paired with the case's latest boxes (evidence
        # stored before per-frame boxes); only the latter can have a box age above 0.
        "boxes_from": {"frame": sum(1 for p in planned if p.boxes_from == "frame"),
                       "case": sum(1 for p in planned if p.boxes_from == "case")},
        "box_age_s": {"median": round(float(np.median(ages)), 1), "max": round(float(max(ages)), 1)},
        "skipped": dict(sorted(Counter(s["reason"] for s in skipped).items())),
        "skipped_cases": skipped,
        "warnings": warnings,
        "cases": records,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary

