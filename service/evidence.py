"""Evidence of cases: the images written when a violation becomes due, their colours, hashes and URLs.

One colour table for everything drawn: zone kinds (`ZONE_COLORS`, the same on camera snapshots, evidence images
and, through ``GET /api/v1/kinds``, the review page's zone editor) and violation kinds (each kind's row in the
kind catalogue, `service.kinds`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from detector.annotate import draw_detections
from detector.rules import Violation
from detector.types import Detections, Frame
from detector.zones import ZoneKind
from service.config import CameraConfig, ZoneConfig
from service.kinds import KINDS

__all__ = ["ZONE_COLORS", "EvidenceWriteError", "annotate", "draw_zones", "evidence_media_type", "evidence_url",
           "file_sha256", "kind_color", "save_evidence", "write_evidence_jpeg", "zone_color"]

# BGR per zone kind: forbidden red, allowed green, bike parking blue, watch areas amber, exclusions grey.
ZONE_COLORS: dict[str, tuple[int, int, int]] = {
    ZoneKind.NO_VENDING.value: (40, 40, 230),
    ZoneKind.VENDING_ALLOWED.value: (60, 180, 40),
    ZoneKind.BIKE_PARKING.value: (230, 140, 20),
    ZoneKind.WATCH_AREA.value: (0, 190, 250),
    ZoneKind.EXCLUSION.value: (150, 150, 150),
}
_OTHER = (200, 200, 200)


def zone_color(kind: str | ZoneKind) -> tuple[int, int, int]:
    """The BGR colour of a zone kind (light grey for a kind without one)."""
    return ZONE_COLORS.get(kind.value if isinstance(kind, ZoneKind) else str(kind), _OTHER)


def draw_zones(image: np.ndarray, zones: Sequence[ZoneConfig], fill_alpha: float = 0.12) -> np.ndarray:
    """A copy of a BGR `image` with each zone's polygon outlined (and lightly filled) and labelled.

    Args:
        image: HxWx3 uint8 BGR frame.
        zones: Zones with polygons normalised to 0..1 of the frame.
        fill_alpha: Opacity of the fill (0: outline only).
    """
    out = image.copy()
    h, w = out.shape[:2]
    if not zones or h == 0 or w == 0:
        return out
    thickness = max(2, round(min(h, w) / 300))
    font_scale = max(0.45, min(h, w) / 900)
    polygons = [np.round(np.asarray(z.polygon, np.float64) * [w, h]).astype(np.int32).reshape(-1, 1, 2)
                for z in zones]
    if fill_alpha > 0:
        overlay = out.copy()
        for zone, pts in zip(zones, polygons):
            cv2.fillPoly(overlay, [pts], zone_color(zone.kind))
        out = cv2.addWeighted(overlay, fill_alpha, out, 1 - fill_alpha, 0)
    for zone, pts in zip(zones, polygons):
        cv2.polylines(out, [pts], True, zone_color(zone.kind), thickness, cv2.LINE_AA)
    for zone, pts in zip(zones, polygons):  # labels last, so no outline crosses a label
        _label(out, pts, f"{zone.id} - {_kind(zone)}", zone_color(zone.kind), font_scale)
    return out


def _kind(zone: ZoneConfig) -> str:
    return zone.kind.value if isinstance(zone.kind, ZoneKind) else str(zone.kind)


def _label(image: np.ndarray, pts: np.ndarray, text: str, color: tuple[int, int, int], font_scale: float) -> None:
    text = text.encode("ascii", "replace").decode("ascii")  # OpenCV's Hershey fonts are ASCII only
    h, w = image.shape[:2]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    # A tab hanging down from the top-left corner of the zone's bounding box, kept inside the frame.
    x = int(min(max(0, pts[:, 0, 0].min()), max(0, w - tw - 4)))
    y = int(min(max(0, pts[:, 0, 1].min()) + th + base + 2, h - 1))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)


def kind_color(kind: str) -> tuple[int, int, int]:
    """The BGR colour of a violation kind's boxes (its catalogue row; light grey for an unknown kind)."""
    row = KINDS.get(kind)
    return row.color_bgr if row is not None else _OTHER


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def annotate(frame: Frame, camera: CameraConfig, detections: Detections) -> np.ndarray:
    """The frame with the camera's zones and the tracked boxes (pipeline class names) drawn."""
    image = draw_zones(frame.image, camera.zones, fill_alpha=0.15)
    if not len(detections):
        return image
    names = detections.data.get("class_name")
    lookup = None if names is None else {int(c): str(n) for c, n in zip(detections.class_id, names)}
    return draw_detections(image, detections, lookup)


class EvidenceWriteError(OSError):
    """An evidence image could not be written (disk full, folder read-only, encoder failure); names the file."""


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Write `image` as JPEG to `path`, owner-only; raise `EvidenceWriteError` when it did not happen.

    ``cv2.imwrite`` reports most failures (no space, no permission) only by returning False, and some by raising
    ``cv2.error``: both are turned into one error naming the file, never ignored.
    """
    try:
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    except cv2.error as exc:
        raise EvidenceWriteError(f"{path}: not written: {str(exc).strip().splitlines()[-1]}") from None
    if not ok or not path.is_file():
        raise EvidenceWriteError(f"{path}: not written (disk full, folder not writable, or encoder failure)")
    path.chmod(0o600)  # evidence shows people and plates: readable by the service's user only


def write_evidence_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    """Write one more evidence image (a time-lapse strip, `service.timelapse`) through the same checks as
    `save_evidence`'s: its folder made owner-only, the file owner-only, `EvidenceWriteError` when not written."""
    _make_private_dirs(path.parent)
    _write_jpeg(path, image, quality)


def save_evidence(out_dir: Path, violation: Violation, frame: Frame, camera: CameraConfig,
                  detections: Detections, stem: str | None = None) -> dict[str, str]:
    """Write the annotated full frame, the original frame and a crop of the violation's boxes.

    Files are ``<stem>.jpg``, ``<stem>.orig.jpg`` and ``<stem>.crop.jpg`` (default stem: the violation id),
    readable by their owner only, in folders made owner-only. All three are written or none: on a failure the
    ones already written are removed, so no evidence row can point at a file that is not there.

    Raises:
        EvidenceWriteError: A file could not be written (an OSError: the folder could not be made, too).
    """
    _make_private_dirs(out_dir)
    stem = _slug(stem or violation.violation_id)
    annotated = annotate(frame, camera, detections)
    for box in violation.xyxy:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(annotated, (x1, y1), (x2, y2), kind_color(violation.kind), 3, cv2.LINE_AA)
    paths = {"annotated": out_dir / f"{stem}.jpg", "original": out_dir / f"{stem}.orig.jpg",
             "crop": out_dir / f"{stem}.crop.jpg"}
    x1, y1 = np.floor(violation.xyxy[:, :2].min(axis=0)).astype(int)
    x2, y2 = np.ceil(violation.xyxy[:, 2:].max(axis=0)).astype(int)
    pad = int(0.25 * max(x2 - x1, y2 - y1)) + 8
    crop = frame.image[max(0, y1 - pad):min(frame.height_px, y2 + pad), max(0, x1 - pad):min(frame.width_px, x2 + pad)]
    try:
        _write_jpeg(paths["annotated"], annotated, 90)
        _write_jpeg(paths["original"], frame.image, 95)
        _write_jpeg(paths["crop"], crop, 95)
    except OSError:
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise
    return {k: str(v) for k, v in paths.items()}


def _make_private_dirs(folder: Path) -> None:
    """`folder` and its missing parents, created owner-only (existing folders are left as they are)."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    for made in missing:
        made.chmod(0o700)


def file_sha256(path: Path | str) -> str | None:
    """Hex SHA-256 of a file's content, or None when the file does not exist (yet).

    The hashing is the project's one helper, `detector.runtime.card.sha256_of`; this adds only the None for
    an evidence file that was not written.
    """
    from detector.runtime.card import sha256_of  # here, not at the top: detector.runtime loads onnxruntime

    path = Path(path)
    return sha256_of(path) if path.is_file() else None


# What the evidence endpoints answer with, by file suffix: JPEG frames and strips, PNG, MP4 clips (a <video>
# element needs video/mp4 to play a clip served by URL).
_MEDIA_TYPES = {".png": "image/png", ".mp4": "video/mp4"}


def evidence_media_type(path: Path | str) -> str:
    """The content type of an evidence file by its suffix (``image/jpeg`` unless it is a PNG or an MP4).

    Example:
        >>> evidence_media_type("cam-1-v3.clip.mp4"), evidence_media_type("cam-1-v3.strip.jpg")
        ('video/mp4', 'image/jpeg')
    """
    return _MEDIA_TYPES.get(Path(path).suffix.lower(), "image/jpeg")


def evidence_url(base_url: str, case_id: int, evidence_id: int) -> str:
    """Public URL of one evidence image: ``{base_url}/cases/{case_id}/evidence/{evidence_id}``.

    Case systems fetch the images themselves, so the URL must be reachable from them; `base_url` is the
    service's public address (no trailing slash needed).
    """
    return f"{base_url.rstrip('/')}/cases/{case_id}/evidence/{evidence_id}"
