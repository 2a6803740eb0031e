"""`FileSource`: a video file (dashcam, drone, recorded camera), sampled by its own presentation times."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from detector.sources.base import SampleClock, SourceBase, SourceError, SourceState, one_line
from detector.sources.decode import DECODE_MODES, VideoDecoder, require_av
from detector.sources.guard import FrameGuard
from detector.types import Frame

__all__ = ["FileSource", "FILE_EPOCH"]

#: Start time of a file that carries no recording time: obviously not a real time, and the same on every run.
FILE_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class FileSource(SourceBase):
    """Frames sampled from a video file, stamped with the file's own clock.

    ``ts`` = `start_ts` + the frame's presentation time in the stream (not index / fps, which is wrong for
    variable frame rates and after dropped frames). Every sample is delivered: when the consumer is slower,
    decoding waits (no drops), unless `realtime` makes the file act as a camera.

    Decoding is keyframe-aware (see `detector.sources.decode`): with keyframes at least as frequent as
    samples only keyframes are decoded, otherwise every frame is decoded and only samples are converted.

    Args:
        path: The video file (anything FFmpeg reads: mp4, mkv, ts, avi, ...).
        sample_fps: Samples per second of video time; None keeps every frame.
        start_ts: Time of the first frame (timezone-aware). Default: the container's ``creation_time`` tag
            (when cameras and drones wrote it, it is when recording started), else `FILE_EPOCH` (1970-01-01
            UTC) so results are reproducible and plainly not wall-clock; with `realtime`, the time `start()`
            is called. The file's mtime is never used: copying a file changes it.
        realtime: Pace output to the file's clock, as a camera would deliver it (demos, tests); the output
            queue then drops the oldest frame when the consumer is behind, like a live source.
        loop: Start again at the end of the file, forever (a camera never ends); timestamps keep counting on
            (each pass starts where the previous one ended), so dwell times and sampling stay continuous.
        speed: With `realtime`, play this many times faster than real time (frame timestamps still follow
            the file's clock, so a 30 s dwell passes in 30 / speed seconds of wall time).
        source_id: Id on each frame; default the file name.
        decode_mode: "auto", "keyframes" or "all" (see `VideoDecoder`).
        queue_size: Output queue capacity.
        guard: Black/frozen frame guard (default `FrameGuard()`).
        stop_event: A service-wide stop event.

    Raises:
        SourceError: From `start()` (or the first `read()`) when the file is missing or is not a video.

    Example:
        >>> with FileSource("footage.mp4", sample_fps=1.0) as source:  # doctest: +SKIP
        ...     times = [frame.ts for frame in source]
    """

    kind = "file"

    def __init__(self, path: Path | str, sample_fps: float | None = 1.0, start_ts: datetime | None = None,
                 realtime: bool = False, *, loop: bool = False, speed: float = 1.0, source_id: str | None = None,
                 decode_mode: str = "auto", queue_size: int = 4, guard: FrameGuard | None = None,
                 stop_event: threading.Event | None = None):
        self.path = Path(path)
        super().__init__(source_id or self.path.name, live=realtime, queue_size=queue_size, guard=guard,
                         stop_event=stop_event)
        if decode_mode not in DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {decode_mode!r}")
        if start_ts is not None and start_ts.tzinfo is None:
            raise ValueError("start_ts must be timezone-aware (UTC); naive datetimes are ambiguous")
        self.sample_fps = sample_fps
        self.start_ts = start_ts
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.realtime = realtime
        self.loop = loop
        self.speed = float(speed)
        self.decode_mode = decode_mode
        self._clock = SampleClock(sample_fps)
        self._container: Any = None
        self._stream: Any = None

    def _open(self) -> None:
        self._open_container()
        if self.start_ts is None:
            self.start_ts = (datetime.now(timezone.utc) if self.realtime
                             else _creation_time(self._container) or FILE_EPOCH)
        self._set_state(SourceState.CONNECTING, connected=True)

    def _open_container(self) -> None:
        av = require_av()
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.path}: not a readable video ({one_line(exc)})") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.path}: no video stream")
        self._container = container
        self._stream = container.streams.video[0]

    def _run(self) -> None:
        av = require_av()
        start_s = self.start_ts.timestamp()
        offset_s = 0.0  # stream time at which the current pass starts (loop)
        first_index = 0
        pace_origin: tuple[float, float] | None = None  # (monotonic time, ts_s) of the first emitted frame
        self._set_state(SourceState.STREAMING)
        while True:
            decoder = VideoDecoder(self._stream, self._clock, lambda pts_s, o=offset_s: start_s + o + pts_s,
                                   self._reject, self.decode_mode, first_index=first_index)
            end_s = 0.0  # where this pass ends on the stream clock: the last frame's time plus its duration
            try:
                for packet in self._container.demux(self._stream):
                    if self.stopping:
                        return
                    self._beat()
                    if packet.size:
                        self._count_in()
                        if packet.pts is not None:
                            duration_s = float((packet.duration or 0) * packet.time_base) or decoder.frame_period_s
                            end_s = max(end_s, decoder.pts_s(packet.pts) + duration_s)
                    for index, ts_s, image in decoder.feed(packet):
                        if self.realtime:
                            if pace_origin is None:
                                pace_origin = (time.monotonic(), ts_s)
                            due_s = pace_origin[0] + (ts_s - pace_origin[1]) / self.speed
                            if self._wait(due_s - time.monotonic()):
                                return
                        self._emit(image, Frame.utc_from_s(ts_s), index)
                        if self.stopping:
                            return
                    self._decode_mode = decoder.mode
            except av.FFmpegError as exc:
                # A damaged file ends early: what was read is delivered, the reason stays in health.
                self._set_state(SourceState.ENDED, connected=False, error=f"{self.path.name}: {one_line(exc)}")
                return
            finally:
                self._container.close()
            if not self.loop or end_s <= 0 or self.stopping:
                break
            offset_s += end_s
            first_index = decoder.next_index
            self._open_container()
        self._set_state(SourceState.ENDED, connected=False)


def _creation_time(container: Any) -> datetime | None:
    """The container's ``creation_time`` tag as UTC (mp4 stores it in UTC), or None."""
    tags = [container.metadata] + [s.metadata for s in container.streams.video]
    for tag in (t.get("creation_time") for t in tags):
        if not tag:
            continue
        try:
            ts = datetime.fromisoformat(tag.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        if ts.year <= 1970:
            continue  # muxers write 1904/1970 zero dates when the time is unknown
        return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    return None
