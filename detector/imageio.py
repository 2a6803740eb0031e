"""Reading images from files and bytes with clear errors (missing, unreadable, truncated, not an image)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detector.errors import ImageReadError

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE_PX", "decode_image", "header_size_px", "jpeg_size",
           "read_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Largest image decoded by default: 4K and 8K frames and survey-camera stills (a 45 MP Zenmuse P1 is 8192 x
# 5460) fit; a few KB of hostile JPEG or PNG can declare 65535 x 65535 (12 GB once decoded), refused here from
# the header before any allocation. Pushed camera frames have their own, lower limit (settings.max_push_pixels).
MAX_IMAGE_PIXELS = 100_000_000
MAX_IMAGE_SIDE_PX = 16_384


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a JPEG's start-of-frame marker, without decoding; None if not found.

    Example:
        >>> import cv2, numpy as np
        >>> jpeg_size(cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1].tobytes())
        (40, 30)
    """
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if marker in (0xDA, 0xD9):
            return None
        i += 2 + length
    return None


def header_size_px(data: bytes) -> tuple[int, int] | None:
    """(width, height) a JPEG or PNG declares in its header, without decoding; None for other formats or when
    the header does not say.

    Example:
        >>> import cv2, numpy as np
        >>> header_size_px(cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes())
        (40, 30)
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        return jpeg_size(data)
    return None


def decode_image(data: bytes, name: str = "image", *, max_pixels: int = MAX_IMAGE_PIXELS,
                 max_side_px: int = MAX_IMAGE_SIDE_PX) -> np.ndarray:
    """Decode JPEG/PNG/... bytes to HxWx3 uint8 BGR.

    A JPEG missing its end-of-image marker is refused: OpenCV would silently return it with the missing
    rows grey, and a half-grey frame must never reach a detector (it hides objects and fakes motion).
    A JPEG or PNG declaring more than `max_pixels` pixels or a side over `max_side_px` is refused from its
    header, before anything is allocated. Other formats (BMP, WebP, TIFF) are decoded under OpenCV's own
    pixel limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, 2^30 by default) and checked after decoding.

    Raises:
        ImageReadError: Empty, truncated, undecodable, or too large (the message names the size and the limit).
    """
    if not data:
        raise ImageReadError(f"{name}: empty file")
    size = header_size_px(data)
    if size is not None:
        _check_size(name, size, max_pixels, max_side_px)
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"{name}: not a decodable image (corrupt or unsupported format)")
    if size is None:
        _check_size(name, (image.shape[1], image.shape[0]), max_pixels, max_side_px)
    return image


def _check_size(name: str, size: tuple[int, int], max_pixels: int, max_side_px: int) -> None:
    w, h = size
    if w * h > max_pixels or max(w, h) > max_side_px:
        raise ImageReadError(f"{name}: {w}x{h} pixels exceeds the limit ({max_pixels} pixels, {max_side_px} per "
                             f"side)")


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
