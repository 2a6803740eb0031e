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

import cv2
import numpy as np

from service.evidence import ZONE_COLORS, draw_zones, zone_color

__all__ = ["ZONE_COLORS", "draw_zones", "encode_jpeg", "zone_color"]

def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR image.

    Raises:
        ValueError: OpenCV could not encode it (empty image).
    """
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return buffer.tobytes()
