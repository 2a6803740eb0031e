"""`open_source`: one entry point from a camera URL or a path to the right `Source`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.imageio import IMAGE_SUFFIXES
from detector.sources.base import SourceBase, SourceError, redact_url
from detector.sources.file import FileSource
from detector.sources.folder import ImageFolderSource
from detector.sources.mjpeg import MjpegHttpSource
from detector.sources.push import PushSource
from detector.sources.rtsp import RtspSource

__all__ = ["open_source"]


def open_source(url_or_path: str | Path, sample_fps: float | None = 1.0, **options: Any) -> SourceBase:
    """The source for a URL or path, not started yet (`start()` it, or use it as a context manager).

    ========================== ==============================================
    ``rtsp://``, ``rtsps://``  `RtspSource`
    ``http://``, ``https://``  `MjpegHttpSource` (multipart MJPEG)
    ``push:CAMERA_ID``         `PushSource` (frames arrive through `push()`)
    a folder                   `ImageFolderSource`
    a file, ``file://``        `FileSource`
    ========================== ==============================================

    Args:
        url_or_path: Where the frames come from.
        sample_fps: Samples per second (None: every frame); for pushes it limits the kept rate.
        **options: Passed to the class (e.g. ``stale_after_s``, ``transport``, ``realtime``, ``ts_from``).

    Raises:
        SourceError: Unknown scheme, or a path that does not exist.

    Example:
        >>> type(open_source("push:gate-3")).__name__
        'PushSource'
        >>> type(open_source("rtsp://10.0.0.5/stream1")).__name__
        'RtspSource'
    """
    text = str(url_or_path)
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower() if sep else ""
    if scheme in ("rtsp", "rtsps"):
        return RtspSource(text, sample_fps, **options)
    if scheme in ("http", "https"):
        return MjpegHttpSource(text, sample_fps, **options)
    if scheme == "push":
        camera_id = rest.lstrip("/")
        if not camera_id:
            raise SourceError("push: needs a camera id, e.g. push:gate-3")
        return PushSource(camera_id, sample_fps=sample_fps, **options)
    if scheme == "file":
        text = rest[2:] if rest.startswith("//") else rest
    elif len(scheme) > 1 and "://" in text:
        raise SourceError(f"unsupported source scheme {scheme!r} in {redact_url(text)} "
                          f"(rtsp://, http(s):// MJPEG, push:ID, a folder or a video file)")
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, sample_fps, **options)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{path}: a single image is not a source; put stills in a folder")
        return FileSource(path, sample_fps, **options)
    raise SourceError(f"{path}: no such file or folder")
