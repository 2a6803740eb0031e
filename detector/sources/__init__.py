"""Frames in, reliably: video files, RTSP and MJPEG cameras, folders of stills and pushed JPEGs.

Every source yields `detector.types.Frame` objects sampled by time (never by frame count) and reports a
`SourceHealth`; live sources reconnect on their own with back-off, drop the oldest frame when the consumer is
behind, and never feed black, blank or frozen frames. `open_source` picks the class from a URL or path.

Example:
    >>> from detector.sources import open_source
    >>> with open_source("rtsp://10.0.0.5/stream1", sample_fps=1.0) as source:  # doctest: +SKIP
    ...     for frame in source:
    ...         print(frame.index, frame.ts, source.health().state)
"""

from detector.sources.base import (
    LiveSourceBase, SampleClock, Source, SourceBase, SourceError, SourceHealth, SourceState, StaleStream, redact_url,
)
from detector.sources.factory import open_source
from detector.sources.file import FILE_EPOCH, FileSource
from detector.sources.folder import ImageFolderSource, exif_datetime, filename_datetime
from detector.sources.guard import FrameGuard
from detector.sources.mjpeg import MjpegHttpSource, iter_multipart
from detector.sources.push import PushRejected, PushSource, jpeg_size
from detector.sources.rtsp import RtspSource, StreamClock

__all__ = [
    "Source", "SourceHealth", "SourceState", "SourceError", "SourceBase", "LiveSourceBase", "StaleStream",
    "SampleClock", "FrameGuard", "StreamClock", "redact_url",
    "FileSource", "FILE_EPOCH", "RtspSource", "MjpegHttpSource", "ImageFolderSource", "PushSource",
    "PushRejected", "open_source", "iter_multipart", "exif_datetime", "filename_datetime", "jpeg_size",
]
