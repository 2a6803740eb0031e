"""Reading images from files and bytes with clear errors (missing, unreadable, truncated, not an image)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detector.errors import ImageReadError

__all__ = ["read_image", "decode_image", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode JPEG/PNG/... bytes to HxWx3 uint8 BGR.

    A JPEG missing its end-of-image marker is refused: OpenCV would silently return it with the missing
    rows grey, and a half-grey frame must never reach a detector (it hides objects and fakes motion).
    """
    if not data:
        raise ImageReadError(f"{name}: empty file")
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"{name}: not a decodable image (corrupt or unsupported format)")
    return image


def read_image(path: Path | str) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_image(data, str(path))
