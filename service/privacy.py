"""Privacy: people, faces and number plates blurred in every evidence image that leaves the service.

Evidence frames show passers-by and vehicles; China's PIPL and the EU's GDPR ask that what a case system, a
reviewer or an export receives shows no more of them than the case needs. So every image served through a
public door (signed evidence links for Open311 ``media_url`` and webhooks, the reviewers' evidence route, bulk
exports) is a *public copy*: the original with these regions blurred. The original stays on disk, readable by
admins only (``?original=1`` on the admin-key route).

Where the regions come from:

- **people**: the boxes stored with the evidence row (`service.db.models.Evidence.boxes`, migration 0002) whose
  class is in `PrivacyPolicy.person_classes` (``person``: the aerial model v3 has it; the street model does not
  yet). Those boxes are the violation's members only, so a passer-by is blurred only when a model tracked them.
- **faces and plates**: OpenCV's Haar cascades (``haarcascade_frontalface_default.xml``,
  ``haarcascade_russian_plate_number.xml``; `HaarCascade`), run on the image itself.

Public copies are made once per file and policy, beside the original (``<stem>.public-<policy hash><suffix>``,
owner-only, written atomically), and removed with it (`remove_public_copies`, called by `service.retention`).
JPEG and PNG images are blurred; time-lapse clips (MP4, `service.timelapse`) picture by picture with the cascades
(their pictures are crops whose place in the frame is not stored); any other file is refused (`PrivacyError`),
so nothing leaves unblurred.

Example:
    >>> import numpy as np
    >>> image = np.full((40, 40, 3), 255, np.uint8); image[10:20, 10:20] = 0
    >>> out = blur_regions(image, np.array([[5.0, 5.0, 25.0, 25.0]]), "pixelate")
    >>> bool((out[:5] == 255).all()), bool((out[10:20, 10:20] == 0).all())
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import cv2
import numpy as np

from detector.errors import StreetwatchError
from detector.rules.base import components

__all__ = ["BlurMethod", "HaarCascade", "PrivacyError", "PrivacyPolicy", "PrivacyUnavailableError", "PublicCopies", "RedactionCounts", "blur_regions",
           "crop_origin_xy", "expand_boxes", "is_image_file", "public_copy_paths", "redact_image",
           "remove_public_copies", "stored_person_boxes"]

BlurMethod = Literal["gaussian", "pixelate"]
RegionDetector = Callable[[np.ndarray], np.ndarray]
"""A model-free detector: BGR image in, (N, 4) float xyxy boxes in that image's pixels out."""

# Bumped whenever the redaction itself changes, so public copies made by older code are made again.
REDACTION_VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CLIP_SUFFIXES = (".mp4",)
# Evidence kinds whose image is the full camera frame, in which the stored boxes are drawn (`save_evidence`).
FULL_FRAME_KINDS = frozenset({"original", "annotated"})
_PUBLIC_TAG = re.compile(r"\.public-[0-9a-f]{8}$")


class PrivacyError(StreetwatchError):
    """An evidence file cannot be made public (not an image this module can blur, or unreadable)."""


class PrivacyUnavailableError(PrivacyError):
    """Nothing can be made public: a detector the policy asks for is not installed (fix the host or the
    settings); no image is served unblurred meanwhile."""


def blur_regions(image: np.ndarray, boxes_xyxy: np.ndarray | Sequence[Sequence[float]],
                 method: BlurMethod = "gaussian") -> np.ndarray:
    """A copy of `image` with every box blurred beyond recognition; pixels outside the boxes are unchanged.

    The strength follows each box's size (a face 200 px tall needs a wider blur than one 20 px tall to be
    unrecognisable): gaussian with sigma a fifth of the box's longer side, or pixelation into blocks of an
    eighth of it (at least 4 px), so that about 8 blocks span the region whatever its size.

    Args:
        image: HxW or HxWxC uint8.
        boxes_xyxy: (N, 4) boxes in pixels; clipped to the image, empty ones skipped.
        method: ``gaussian`` or ``pixelate``.

    Raises:
        ValueError: An unknown method, or boxes that are not (N, 4) finite numbers.

    Example:
        >>> img = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
        >>> out = blur_regions(img, [[0, 0, 32, 32]])
        >>> bool((out[32:] == img[32:]).all()), bool((out[:32, :32] == img[:32, :32]).all())
        (True, False)
    """
    if method not in ("gaussian", "pixelate"):
        raise ValueError(f"method: {method!r} is not one of gaussian, pixelate")
    boxes = np.asarray(boxes_xyxy, np.float64)
    if boxes.size == 0:
        return image.copy()
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"boxes_xyxy: expected (N, 4) finite pixel boxes, got shape {boxes.shape}")
    out = image.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in boxes:
        # Outward rounding: a fractional edge pixel is blurred rather than left sharp.
        left, top = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        right, bottom = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
        if right <= left or bottom <= top:
            continue
        roi = out[top:bottom, left:right]
        side = max(right - left, bottom - top)
        if method == "gaussian":
            sigma = max(2.0, side / 5.0)
            # Reflected border: the blur draws only on pixels inside the region (nothing from outside leaks in,
            # nothing of the region is left sharp at its edges).
            out[top:bottom, left:right] = cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                                           borderType=cv2.BORDER_REFLECT)
        else:
            block = max(4, side // 8)
            small = cv2.resize(roi, (max(1, (right - left) // block), max(1, (bottom - top) // block)),
                               interpolation=cv2.INTER_AREA)
            out[top:bottom, left:right] = cv2.resize(small, (right - left, bottom - top),
                                                     interpolation=cv2.INTER_NEAREST)
    return out


def expand_boxes(boxes_xyxy: np.ndarray, margin_frac: float) -> np.ndarray:
    """Boxes grown by `margin_frac` of their width and height on each side (detectors' boxes are tight: hair,
    ears and a plate's frame lie just outside them)."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    grow = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) * margin_frac
    return np.concatenate([boxes[:, :2] - grow, boxes[:, 2:] + grow], axis=1)


def stored_person_boxes(boxes: Sequence[Mapping[str, Any]] | None, person_classes: frozenset[str]) -> np.ndarray:
    """The (N, 4) full-frame xyxy of the stored evidence boxes whose ``class_name`` is a person class.

    Raises:
        ValueError: A stored box without a 4-number ``xyxy`` (names the box).
    """
    out = []
    for i, box in enumerate(boxes or ()):
        if str(box.get("class_name")) not in person_classes:
            continue
        xyxy = box.get("xyxy")
        if not isinstance(xyxy, (list, tuple)) or len(xyxy) != 4:
            raise ValueError(f"evidence boxes[{i}].xyxy: expected 4 numbers, got {xyxy!r}")
        out.append([float(v) for v in xyxy])
    return np.asarray(out, np.float64).reshape(-1, 4)


def crop_origin_xy(member_boxes_xyxy: np.ndarray) -> tuple[int, int]:
    """Where a ``crop`` evidence image lies in its frame: the top-left corner `service.evidence.save_evidence`
    cut it at, from the violation's member boxes (the stored evidence boxes, all classes).

    Mirrors save_evidence's geometry (the union of the boxes padded by a quarter of its longer side plus 8 px,
    clipped at 0). The stored boxes are rounded to 0.1 px, so the corner may be off by a pixel; the blur margin
    covers that (a test checks the two agree on real crops).
    """
    boxes = np.asarray(member_boxes_xyxy, np.float64).reshape(-1, 4)
    if not len(boxes):
        return 0, 0
    x1, y1 = np.floor(boxes[:, :2].min(axis=0)).astype(int)
    x2, y2 = np.ceil(boxes[:, 2:].max(axis=0)).astype(int)
    pad = int(0.25 * max(x2 - x1, y2 - y1)) + 8
    return max(0, int(x1) - pad), max(0, int(y1) - pad)


@dataclass(frozen=True)
class PrivacyPolicy:
    """What is blurred, and how (the service's ``privacy`` settings, `service.settings.PrivacySettings`).

    Attributes:
        blur_people: Blur stored boxes of `person_classes`.
        blur_faces: Blur faces found by the face cascade.
        blur_plates: Blur number plates found by the plate cascade.
        method: ``gaussian`` or ``pixelate``.
        margin_frac: Each region is grown by this fraction of its size on every side before blurring.
        person_classes: Class names of stored boxes that are people.
        cascade_min_neighbors: Raw cascade hits a face or plate needs (OpenCV's minNeighbors).
    """

    blur_people: bool = True
    blur_faces: bool = True
    blur_plates: bool = True
    method: BlurMethod = "gaussian"
    margin_frac: float = 0.15
    person_classes: frozenset[str] = frozenset({"person"})
    cascade_min_neighbors: int = 6  # the settings' default (service.settings.PrivacySettings)

    @classmethod
    def from_settings(cls, settings: Any) -> "PrivacyPolicy":
        """From a `service.settings.PrivacySettings`."""
        return cls(blur_people=settings.blur_people, blur_faces=settings.blur_faces,
                   blur_plates=settings.blur_plates, method=settings.method, margin_frac=settings.margin_frac,
                   person_classes=frozenset(settings.person_classes),
                   cascade_min_neighbors=settings.cascade_min_neighbors)

    @property
    def enabled(self) -> bool:
        """Whether anything is blurred at all (all off: the public copy is the original)."""
        return self.blur_people or self.blur_faces or self.blur_plates

    @property
    def fingerprint(self) -> str:
        """8 hex digits naming this policy (and `REDACTION_VERSION`) in public copies' file names: a changed
        policy makes new copies instead of serving ones made under the old one."""
        text = repr((REDACTION_VERSION, self.blur_people, self.blur_faces, self.blur_plates, self.method,
                     round(self.margin_frac, 6), sorted(self.person_classes), self.cascade_min_neighbors))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class RedactionCounts:
    """How many regions of each source one image had blurred."""

    people: int = 0
    faces: int = 0
    plates: int = 0


def redact_image(image: np.ndarray, kind: str, stored_boxes: Sequence[Mapping[str, Any]] | None,
                 policy: PrivacyPolicy, detectors: Mapping[str, RegionDetector]) -> tuple[np.ndarray, RedactionCounts]:
    """The public version of one evidence image, and what was blurred in it (pure: no files).

    Args:
        image: The evidence image (BGR uint8).
        kind: Its evidence kind: stored boxes are full-frame pixels, used as they are for ``original`` and
            ``annotated`` and shifted by `crop_origin_xy` for ``crop``; other kinds get the detectors only.
        stored_boxes: The evidence row's boxes (None for rows from before migration 0002).
        policy: What to blur.
        detectors: ``face`` and ``plate`` detectors (either may be missing: then that source finds nothing).
    """
    regions: list[np.ndarray] = []
    people = faces = plates = 0
    if policy.blur_people and stored_boxes and (kind in FULL_FRAME_KINDS or kind == "crop"):
        found = stored_person_boxes(stored_boxes, policy.person_classes)
        if kind == "crop":
            members = np.asarray([b["xyxy"] for b in stored_boxes], np.float64).reshape(-1, 4)
            ox, oy = crop_origin_xy(members)
            found = found - [ox, oy, ox, oy]
        people = len(found)
        regions.append(found)
    if policy.blur_faces and "face" in detectors:
        found = detectors["face"](image)
        faces = len(found)
        regions.append(found)
    if policy.blur_plates and "plate" in detectors:
        found = detectors["plate"](image)
        plates = len(found)
        regions.append(found)
    boxes = np.concatenate([r.reshape(-1, 4) for r in regions]) if regions else np.zeros((0, 4))
    out = blur_regions(image, expand_boxes(boxes, policy.margin_frac), policy.method)
    return out, RedactionCounts(people, faces, plates)


def is_image_file(path: Path | str) -> bool:
    """Whether the file is an image this module can blur (by suffix: JPEG or PNG)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def public_copy_paths(original: Path) -> list[Path]:
    """The public copies made of `original` under any policy (files beside it)."""
    original = Path(original)
    if not original.parent.is_dir():
        return []
    prefix = f"{original.stem}.public-"
    return sorted(p for p in original.parent.iterdir()
                  if p.name.startswith(prefix) and p.suffix == original.suffix
                  and _PUBLIC_TAG.search(p.name[:-len(p.suffix)] if p.suffix else p.name))


def remove_public_copies(original: Path) -> int:
    """Delete every public copy of `original` (when the original is deleted: retention); returns how many."""
    removed = 0
    for path in public_copy_paths(original):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


class PublicCopies:
    """Makes and finds the public (blurred) copy of evidence files, once per file and policy.

    Thread-safe: two requests for the same file may both make the copy; each writes a temporary file and
    renames it into place, so a reader never sees half a file.

    Args:
        policy: What to blur.
        detectors: ``face``/``plate`` detectors; default: the Haar cascades the policy asks for
            (`default_detectors`), read at first use (an app that serves no evidence does not pay for parsing
            them; a missing cascade file then refuses every copy, `PrivacyUnavailableError`).
    """

    def __init__(self, policy: PrivacyPolicy, detectors: Mapping[str, RegionDetector] | None = None,
                 cascade_dirs: Sequence[str | Path] | None = None):
        self.policy = policy
        self._detectors = detectors
        self._cascade_dirs = cascade_dirs
        self._lock = threading.Lock()

    @property
    def detectors(self) -> Mapping[str, RegionDetector]:
        """The face and plate detectors (loaded once, on first use)."""
        with self._lock:
            if self._detectors is None:
                self._detectors = default_detectors(self.policy, self._cascade_dirs)
            return self._detectors

    def copy_path(self, original: Path) -> Path:
        """Where the public copy of `original` is (or will be) kept."""
        original = Path(original)
        return original.with_name(f"{original.stem}.public-{self.policy.fingerprint}{original.suffix}")

    def public_path(self, original: Path, kind: str, stored_boxes: Sequence[Mapping[str, Any]] | None) -> Path:
        """The file to serve in place of `original`: its blurred copy (made now if missing), or the original
        itself when the policy blurs nothing.

        Raises:
            PrivacyError: The file is not a JPEG, PNG or MP4 clip (it cannot be blurred, so it is not served),
                or it cannot be decoded or the copy cannot be written (names the file).
            PrivacyUnavailableError: A cascade the policy asks for is not installed.
        """
        original = Path(original)
        if not self.policy.enabled:
            return original
        is_clip = original.suffix.lower() in CLIP_SUFFIXES
        if not is_image_file(original) and not is_clip:
            raise PrivacyError(f"{original.name}: only JPEG, PNG and MP4 evidence can be blurred; this file is not "
                               "served outside the service while privacy blurring is on")
        target = self.copy_path(original)
        if target.is_file():
            return target
        if is_clip:
            return self._clip_copy(original, target)
        image = cv2.imread(str(original), cv2.IMREAD_COLOR)
        if image is None:
            raise PrivacyError(f"{original.name}: cannot be decoded as an image")
        redacted, counts = redact_image(image, kind, stored_boxes, self.policy, self.detectors)
        if counts.people + counts.faces + counts.plates:
            ok, data = cv2.imencode(target.suffix, redacted, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise PrivacyError(f"{target.name}: the blurred copy could not be encoded")
            _write_private_file(target, data.tobytes())
        else:
            # Nothing to blur: the original's bytes (no re-encoding loss, and its sha256 in payloads still holds);
            # the copy records that the file was checked under this policy.
            _write_private_file(target, original.read_bytes())
        return target


    def _clip_copy(self, original: Path, target: Path) -> Path:
        """The blurred copy of a time-lapse clip (`service.timelapse`): faces and plates blurred in every
        picture. Its pictures are crops whose place in the frame is not stored, so stored person boxes cannot
        be applied to them; the cascades run on each picture."""
        from service.timelapse import redact_clip  # PyAV is loaded only when a clip is served

        detectors = self.detectors
        policy = self.policy

        def redact(picture: np.ndarray) -> np.ndarray:
            return redact_image(picture, "clip", None, policy, detectors)[0]

        try:
            redact_clip(original, target, redact)
        except OSError as exc:  # EvidenceWriteError: undecodable clip, or the copy could not be written
            raise PrivacyError(f"{original.name}: the blurred clip could not be made: "
                               f"{str(exc).replace(str(original.parent), '').lstrip('/')}") from None
        return target


def _write_private_file(target: Path, data: bytes) -> None:
    """Write `data` to `target` owner-only and atomically (temporary file in the same folder, then rename)."""
    # mkstemp creates the file 0600: the copy still shows the scene, so it is as private as the original.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PrivacyError(f"{target}: the blurred copy could not be written: {exc.strerror or exc}") from None


# --- Haar cascades -------------------------------------------------------------------------------------
#
# Why Haar cascades: they ship with OpenCV (no download, no model to train or to license separately) and find
# frontal faces and plates without a GPU in tens of milliseconds. Their limits: frontal, upright faces only
# (profiles, heads turned away and faces under ~24 px are missed), plates trained on Russian plates (Chinese
# blue/green plates of similar shape are found less reliably), and false hits on textured areas (which only
# blur a little more than needed). They are a net, not a guarantee: people boxes from a detector come first.
#
# Why evaluated here with numpy: OpenCV 5 dropped the cascade classifier (cv2.CascadeClassifier) and no longer
# ships the XML files, and the project's wheel is OpenCV 5. The XML files come from OpenCV 4 wheels
# (cv2.data.haarcascades) or Debian's opencv-data package (/usr/share/opencv4/haarcascades); the evaluation
# below follows OpenCV 4's detectMultiScale (its window variance normalisation, step, scale pyramid and
# groupRectangles), reading cv2.integral3 for plain and 45-degree tilted sums.

FACE_CASCADE = "haarcascade_frontalface_default.xml"
PLATE_CASCADE = "haarcascade_russian_plate_number.xml"
CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")
# Detection runs on a copy at most this large (long side): faces and plates smaller than a cascade's window
# there are not found anyway, and a 4K drone frame would take seconds.
DETECT_MAX_SIDE_PX = 1280


def find_cascade(name: str, dirs: Sequence[str | Path] | None = None) -> Path | None:
    """The path of an OpenCV cascade XML file: in OpenCV 4 wheels' ``cv2.data.haarcascades`` or Debian's
    opencv-data folders (`CASCADE_DIRS`); None when none holds it."""
    folders = list(dirs) if dirs is not None else []
    if dirs is None:
        data = getattr(getattr(cv2, "data", None), "haarcascades", None)
        folders = ([data] if data else []) + list(CASCADE_DIRS)
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class _Stage:
    threshold: float
    features: np.ndarray  # (M,) feature index of each stump
    thresholds: np.ndarray  # (M,) stump thresholds
    left: np.ndarray  # (M,) leaf value when the feature is below its threshold
    right: np.ndarray  # (M,)


class HaarCascade:
    """A stump-based Haar cascade in OpenCV's XML format (opencv_traincascade), evaluated with numpy.

    Args:
        path: The XML file.

    Raises:
        PrivacyError: Not a cascade this evaluator reads (names the file and why): only BOOST stages of HAAR
            stumps, as in OpenCV's frontal-face and plate cascades.

    Example:
        >>> face = HaarCascade(find_cascade(FACE_CASCADE))  # doctest: +SKIP
        >>> face.detect(cv2.imread("people.jpg"))           # doctest: +SKIP
        array([[ 98.,  40., 146.,  88.]])
    """

    def __init__(self, path: Path | str):
        import xml.etree.ElementTree as ET

        self.path = Path(path)
        try:
            cascade = ET.parse(self.path).getroot().find("cascade")
        except (ET.ParseError, OSError) as exc:
            raise PrivacyError(f"{self.path}: cannot read the cascade: {exc}") from None
        if cascade is None or (cascade.findtext("featureType") or "").strip() != "HAAR":
            raise PrivacyError(f"{self.path}: not a HAAR cascade in the opencv_traincascade format")
        self.window_wh = (int(cascade.findtext("width") or 0), int(cascade.findtext("height") or 0))
        rects = np.zeros((len(cascade.find("features") or ()), 3, 4), np.int64)
        weights = np.zeros(rects.shape[:2], np.float64)
        tilted = np.zeros(len(rects), bool)
        for i, feature in enumerate(cascade.find("features") or ()):
            for k, rect in enumerate(feature.find("rects") or ()):
                x, y, w, h, weight = (rect.text or "").split()
                rects[i, k] = [int(x), int(y), int(w), int(h)]
                weights[i, k] = float(weight)
            tilted[i] = (feature.findtext("tilted") or "0").strip() == "1"
        self._rects, self._weights, self._tilted = rects, weights, tilted
        self._stages = []
        for n, stage in enumerate(cascade.find("stages") or ()):
            nodes, leaves = [], []
            for weak in stage.find("weakClassifiers") or ():
                node = (weak.findtext("internalNodes") or "").split()
                if len(node) != 4:
                    raise PrivacyError(f"{self.path}: stage {n}: only stumps (one split per weak classifier) "
                                       "are supported")
                nodes.append((int(node[2]), float(node[3])))
                leaves.append([float(v) for v in (weak.findtext("leafValues") or "").split()])
            self._stages.append(_Stage(float(stage.findtext("stageThreshold") or 0.0),
                                       np.array([f for f, _ in nodes], np.int64),
                                       np.array([t for _, t in nodes], np.float64),
                                       np.array([lv[0] for lv in leaves], np.float64),
                                       np.array([lv[1] for lv in leaves], np.float64)))
        if not self._stages or min(self.window_wh) < 3:
            raise PrivacyError(f"{self.path}: no stages or no window size")

    def detect(self, image: np.ndarray, scale_factor: float = 1.1, min_neighbors: int = 3,
               min_size_px: int = 0) -> np.ndarray:
        """The objects found in a BGR or grey image: (N, 4) float xyxy in its pixels.

        Args:
            image: HxWx3 BGR or HxW grey uint8.
            scale_factor: Window growth between pyramid levels (OpenCV's default 1.1).
            min_neighbors: A found object needs more than this many overlapping raw hits (OpenCV's 3).
            min_size_px: Smallest window height considered, pixels (0: the cascade's own).
        """
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        shrink = min(1.0, DETECT_MAX_SIDE_PX / max(gray.shape[:2]))
        if shrink < 1.0:
            gray = cv2.resize(gray, (round(gray.shape[1] * shrink), round(gray.shape[0] * shrink)),
                              interpolation=cv2.INTER_AREA)
        win_w, win_h = self.window_wh
        hits: list[np.ndarray] = []
        scale = 1.0
        while round(win_w * scale) <= gray.shape[1] and round(win_h * scale) <= gray.shape[0]:
            if round(win_h * scale) >= min_size_px * shrink:
                hits.append(self._detect_at(gray, scale))
            scale *= scale_factor
        rects = np.concatenate(hits) if hits else np.zeros((0, 4))
        boxes = group_rectangles(rects, min_neighbors, 0.2)
        return boxes / shrink

    def _detect_at(self, gray: np.ndarray, scale: float) -> np.ndarray:
        """Raw hits (x, y, w, h in `gray`'s pixels) of the windows of one pyramid level."""
        win_w, win_h = self.window_wh
        w, h = round(gray.shape[1] / scale), round(gray.shape[0] / scale)
        if w <= win_w or h <= win_h:
            return np.zeros((0, 4))
        level = cv2.resize(gray, (w, h), interpolation=cv2.INTER_LINEAR_EXACT)
        plain, squares, tilted = cv2.integral3(level, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        stride = w + 1
        table = np.concatenate([plain.ravel(), tilted.ravel()])
        step = 1 if scale > 2.0 else 2
        ys, xs = np.mgrid[0:h - win_h:step, 0:w - win_w:step]
        base = (ys * stride + xs).ravel()
        # OpenCV normalises every feature by the window's standard deviation over its inner rectangle (one
        # pixel in from each side) and skips nearly flat windows (std under about 10 grey levels).
        n = np.array([stride + 1, stride + win_w - 1, (win_h - 1) * stride + 1, (win_h - 1) * stride + win_w - 1])
        area = float((win_w - 2) * (win_h - 2))
        flat_sq = squares.ravel()
        total = plain.ravel()[base + n[0]] - plain.ravel()[base + n[1]] - plain.ravel()[base + n[2]] \
            + plain.ravel()[base + n[3]]
        total_sq = flat_sq[base + n[0]] - flat_sq[base + n[1]] - flat_sq[base + n[2]] + flat_sq[base + n[3]]
        spread = area * total_sq - total * total
        ok = spread > 0
        inv_norm = np.zeros_like(spread)
        inv_norm[ok] = 1.0 / np.sqrt(spread[ok])
        ok &= area * inv_norm < 0.1
        corners = self._corner_offsets(stride, len(plain.ravel()))
        # Stage 0 on every window of the grid first: OpenCV steps over the window after one that stage 0
        # rejected (a valid window, not a flat one), along each row, and this finds the same windows.
        first = np.zeros(len(base), bool)
        first[ok] = self._stage_scores(self._stages[0], table, corners, base[ok], inv_norm[ok]) \
            >= self._stages[0].threshold
        rejected = (ok & ~first).reshape(ys.shape)
        idx = np.broadcast_to(np.arange(ys.shape[1]), ys.shape)
        last_kept = np.maximum.accumulate(np.where(rejected, -1, idx), axis=1)
        run = idx - last_kept  # rejected windows in a row ending here (0: this one was not rejected)
        preceding = np.zeros_like(run)
        preceding[:, 1:] = run[:, :-1]
        # After a run of L rejected windows, OpenCV evaluated the 1st, 3rd, ... of them and skips the next
        # window when L is odd.
        alive = (first & (preceding % 2 == 0).ravel())
        base, inv_norm = base[alive], inv_norm[alive]
        for stage in self._stages[1:]:
            if not len(base):
                break
            keep = self._stage_scores(stage, table, corners, base, inv_norm) >= stage.threshold
            base, inv_norm = base[keep], inv_norm[keep]
        ys, xs = np.divmod(base, stride)
        return np.stack([np.round(xs * scale), np.round(ys * scale), np.full(len(xs), round(win_w * scale)),
                         np.full(len(xs), round(win_h * scale))], axis=1).astype(np.float64).reshape(-1, 4)

    def _stage_scores(self, stage: _Stage, table: np.ndarray, corners: np.ndarray, base: np.ndarray,
                      inv_norm: np.ndarray) -> np.ndarray:
        """The stage's sum of stump leaves for each window (at offsets `base` of the joined integral table)."""
        offsets = corners[stage.features]  # (M, 3, 4)
        weights = self._weights[stage.features]  # (M, 3)
        score = np.zeros(len(base))
        # Windows in chunks: (windows x stumps x 3 rects x 4 corners) stays under ~2M values.
        chunk = max(1, 2_000_000 // (len(stage.features) * 12))
        for start in range(0, len(base), chunk):
            v = table[base[start:start + chunk, None, None, None] + offsets[None]]
            sums = v[..., 0] - v[..., 1] - v[..., 2] + v[..., 3]  # (n, M, 3)
            value = (sums * weights[None]).sum(axis=2) * inv_norm[start:start + chunk, None]
            score[start:start + chunk] = np.where(value < stage.thresholds[None], stage.left[None],
                                                  stage.right[None]).sum(axis=1)
        return score

    def _corner_offsets(self, stride: int, tilted_shift: int) -> np.ndarray:
        """(F, 3, 4) offsets of each feature rectangle's four corners in the joined (plain, tilted) table,
        ordered so that sum = t[0] - t[1] - t[2] + t[3] (OpenCV's CV_SUM_OFFSETS and CV_TILTED_OFFSETS)."""
        x, y, w, h = (self._rects[..., i] for i in range(4))
        plain = np.stack([y * stride + x, y * stride + x + w, (y + h) * stride + x, (y + h) * stride + x + w],
                         axis=-1)
        tilted = np.stack([x + stride * y, x - h + stride * (y + h), x + w + stride * (y + w),
                           x + w - h + stride * (y + w + h)], axis=-1) + tilted_shift
        out = np.where(self._tilted[:, None, None], tilted, plain)
        # Unused third rectangles (weight 0) point at offset 0, which exists.
        return np.where((self._weights != 0)[..., None], out, 0)


def group_rectangles(rects_xywh: np.ndarray, min_neighbors: int, eps: float) -> np.ndarray:
    """OpenCV's groupRectangles: raw hits clustered by similarity, clusters of more than `min_neighbors` hits
    averaged, and a cluster's box dropped when it lies inside a stronger one. Returns (N, 4) xyxy.

    Example:
        >>> hits = np.array([[10, 10, 20, 20], [11, 10, 20, 20], [10, 11, 21, 21], [10, 10, 20, 21], [80, 80, 20, 20]])
        >>> group_rectangles(hits, 3, 0.2)
        array([[10., 10., 30., 30.]])
    """
    rects = np.asarray(rects_xywh, np.float64).reshape(-1, 4)
    n = len(rects)
    if n == 0:
        return np.zeros((0, 4))
    x1, y1, w, h = rects.T
    x2, y2 = x1 + w, y1 + h
    delta = eps * (np.minimum(w[:, None], w[None, :]) + np.minimum(h[:, None], h[None, :])) * 0.5
    similar = ((np.abs(x1[:, None] - x1[None, :]) <= delta) & (np.abs(y1[:, None] - y1[None, :]) <= delta)
               & (np.abs(x2[:, None] - x2[None, :]) <= delta) & (np.abs(y2[:, None] - y2[None, :]) <= delta))
    labels = components(similar)  # the project's one union-find (detector.rules.base)
    groups = []
    for label in np.unique(labels):
        members = rects[labels == label]
        if len(members) > min_neighbors:
            groups.append((len(members), np.round(members.mean(axis=0))))
    kept = []
    for i, (n1, r1) in enumerate(groups):
        inside = False
        for j, (n2, r2) in enumerate(groups):
            if i == j:
                continue
            dx, dy = round(r2[2] * eps), round(r2[3] * eps)
            if (r1[0] >= r2[0] - dx and r1[1] >= r2[1] - dy and r1[0] + r1[2] <= r2[0] + r2[2] + dx
                    and r1[1] + r1[3] <= r2[1] + r2[3] + dy and (n2 > max(3, n1) or n1 < 3)):
                inside = True
                break
        if not inside:
            kept.append(r1)
    out = np.asarray(kept, np.float64).reshape(-1, 4)
    return np.concatenate([out[:, :2], out[:, :2] + out[:, 2:]], axis=1)


def _cascade_paths(policy: PrivacyPolicy, dirs: Sequence[str | Path] | None = None) -> dict[str, Path]:
    """The cascade files the policy needs, by detector name.

    Raises:
        PrivacyUnavailableError: One is not installed (names it and where it was looked for): blurring that
            silently found nothing would leak.
    """
    paths: dict[str, Path] = {}
    for key, wanted, name in (("face", policy.blur_faces, FACE_CASCADE), ("plate", policy.blur_plates, PLATE_CASCADE)):
        if not wanted:
            continue
        path = find_cascade(name, dirs)
        if path is None:
            raise PrivacyUnavailableError(f"privacy.blur_{key}s: {name} not found (looked in cv2.data.haarcascades and "
                               f"{', '.join(CASCADE_DIRS)}); install Debian's opencv-data "
                               "(scripts/install_system_deps.sh) or set it to false")
        paths[key] = path
    return paths


def default_detectors(policy: PrivacyPolicy, dirs: Sequence[str | Path] | None = None) -> dict[str, RegionDetector]:
    """The face and plate detectors the policy asks for (Haar cascades, parsed here).

    Raises:
        PrivacyUnavailableError: The policy asks for a cascade whose file is not installed.
    """
    return {key: partial(HaarCascade(path).detect, min_neighbors=policy.cascade_min_neighbors)
            for key, path in _cascade_paths(policy, dirs).items()}
