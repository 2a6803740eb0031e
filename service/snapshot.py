"""Camera snapshots: the latest frame of a camera with its zones drawn, as JPEG (no web code here).

Each zone is outlined in the colour of its kind, lightly filled, and labelled ``<id> - <kind>`` on a solid
tab at the top-left corner of its bounding box, so reviewers see what the pipeline uses. Colours are BGR and
stable per kind (`ZONE_COLORS`; the web zone editor uses the same ones).

Example:
    >>> import numpy as np
    >>> from service.config import ZoneConfig
    >>> image = np.zeros((360, 640, 3), np.uint8)
    >>> zone = ZoneConfig(id="z1", kind="no_vending", polygon=[(0.1, 0.1), (0.9, 0.1), (0.5, 0.9)])
    >>> drawn = draw_zones(image, [zone])
    >>> drawn.shape, int(image.sum())   # a copy; the frame itself is untouched
    ((360, 640, 3), 0)
    >>> encode_jpeg(drawn)[:3]
    b'\\xff\\xd8\\xff'
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from detector.zones import ZoneKind
from service.config import ZoneConfig

__all__ = ["ZONE_COLORS", "draw_zones", "encode_jpeg", "zone_color"]

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


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR image.

    Raises:
        ValueError: OpenCV could not encode it (empty image).
    """
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return buffer.tobytes()
