"""Reading chosen moments of a video file: seek to the keyframe before each one, decode forward to it.

Drone footage is sampled by ground distance (`detector.geo.sampling`), so the frames wanted are a few known
timestamps, often seconds apart. Decoding a 4K H.264 flight end to end costs more than the detector on the few
frames it needs; seeking costs one GOP per wanted frame at most. When the wanted frames are closer together than
a GOP, decoding simply continues forward instead of seeking back (a seek would only decode the same packets
again). Containers that cannot seek (raw streams, damaged indexes) fall back to decoding forward, which gives the
same frames more slowly (`VideoSeekReader.stats` says which happened).

Example:
    >>> with VideoSeekReader("flight.mp4") as video:                # doctest: +SKIP
    ...     for frame in video.read_at([0.0, 2.5, 5.0]):
    ...         print(frame.index, round(frame.t_s, 3), frame.image.shape)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from detector.sources.base import SourceError, one_line
from detector.sources.decode import require_av

__all__ = ["DecodedFrame", "VideoInfo", "VideoSeekReader"]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream.

    Attributes:
        width_px: Frame width.
        height_px: Frame height.
        fps: Average frame rate (frames per second).
        duration_s: Length of the stream in seconds (0 when the container does not say).
        n_frames: Frame count when the container says, else ``round(duration_s * fps)``.
        codec: Codec name (``h264``, ``hevc``, ...).
    """

    width_px: int
    height_px: int
    fps: float
    duration_s: float
    n_frames: int
    codec: str


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """One decoded picture at a requested moment.

    Attributes:
        index: Frame number in the stream (``round(t_s * fps)``: presentation order).
        t_s: Its presentation time in seconds from the start of the stream.
        image: HxWx3 uint8 BGR.
        requested_t_s: The time that was asked for; the frame is the first whose presentation time is at least
            that minus half a frame period (the picture nearest to it).
    """

    index: int
    t_s: float
    image: np.ndarray
    requested_t_s: float


@dataclass
class SeekStats:
    """Decoder work, to show what seeking saved.

    Attributes:
        seeks: Keyframe seeks made.
        decoded: Pictures decoded (including those decoded only to reach a wanted one).
        delivered: Pictures returned.
        corrupt: Packets the decoder refused (skipped, counted); the packets after one, up to the next keyframe,
            are skipped too (``reasons["after_corrupt"]``).
        fallback: Why forward decoding replaced seeking, when it did.
    """

    seeks: int = 0
    decoded: int = 0
    delivered: int = 0
    corrupt: int = 0
    fallback: str = ""
    reasons: Counter[str] = field(default_factory=Counter)


class VideoSeekReader:
    """Random access by time to the frames of one video file.

    Args:
        path: The video.
        reseek_gap_s: Seek (instead of decoding forward) when the next wanted time is more than this far ahead
            of the decoder; about one GOP (DJI writes a keyframe every 1–2 s).

    Raises:
        SourceError: The file is missing, unreadable or has no video stream (on construction).
    """

    def __init__(self, path: Path | str, reseek_gap_s: float = 2.0):
        av = require_av()
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        try:
            self._container: Any = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.path}: not a readable video ({one_line(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame threads: 4K H.264 decodes several times faster
        self.reseek_gap_s = float(reseek_gap_s)
        self.stats = SeekStats()
        self.info = self._probe()
        self._frames: Iterator[Any] | None = None
        self._pending: Any = None  # a decoded frame read past the last wanted time, kept for the next one

    # --- public --------------------------------------------------------------------------------------

    def read_at(self, times_s: Sequence[float]) -> Iterator[DecodedFrame]:
        """The frame shown at each wanted time, in ascending time order (duplicates once; times beyond the end
        of the stream yield nothing: compare with what was asked for)."""
        av = require_av()
        period_s = 1.0 / self.info.fps if self.info.fps > 0 else 0.0
        last_index = -1
        for want_s in sorted(set(float(t) for t in times_s)):
            try:
                frame = self._frame_at(want_s, period_s)
            except av.FFmpegError as exc:
                # A damaged file: what was read is delivered; the reason says where it ended.
                self.stats.fallback = self.stats.fallback or f"decode error near {want_s:.2f} s: {one_line(exc)}"
                return
            if frame is None:
                return
            t_s = float(frame.time if frame.time is not None else want_s)
            index = int(round(t_s * self.info.fps)) if self.info.fps > 0 else 0
            if index == last_index:
                continue  # two wanted times fell on one picture
            last_index = index
            self.stats.delivered += 1
            yield DecodedFrame(index, t_s, frame.to_ndarray(format="bgr24"), want_s)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoSeekReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------------

    def _probe(self) -> VideoInfo:
        s = self._stream
        fps = float(s.average_rate or s.guessed_rate or 0.0)
        duration_s = 0.0
        if s.duration is not None and s.time_base is not None:
            duration_s = float(s.duration * s.time_base)
        elif self._container.duration is not None:
            duration_s = self._container.duration / 1_000_000
        n_frames = int(s.frames) if s.frames else int(round(duration_s * fps))
        return VideoInfo(int(s.codec_context.width), int(s.codec_context.height), fps, duration_s, n_frames,
                         str(s.codec_context.name))

    def _decode(self) -> Iterator[Any]:
        av = require_av()
        # After a corrupt packet the pictures that refer to it decode "fine" but smeared, until the next keyframe:
        # skip them (counted), as the live decoder does, rather than place garbage on the map.
        damaged = False
        for packet in self._container.demux(self._stream):
            if damaged and packet.size and not packet.is_keyframe:
                self.stats.reasons["after_corrupt"] += 1
                continue
            damaged = False
            try:
                for frame in packet.decode():
                    self.stats.decoded += 1
                    yield frame
            except av.InvalidDataError:
                self.stats.corrupt += 1
                self.stats.reasons["corrupt_packet"] += 1
                damaged = True

    def _seek(self, want_s: float) -> None:
        av = require_av()
        if self.stats.fallback:
            return
        try:
            target = int(max(0.0, want_s) / float(self._stream.time_base))
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            self.stats.seeks += 1
            self._frames = self._decode()
            self._pending = None
        except (av.FFmpegError, OSError) as exc:
            self.stats.fallback = f"cannot seek ({one_line(exc)}): decoding forward"

    def _frame_at(self, want_s: float, period_s: float) -> Any:
        position_s = None if self._pending is None else float(self._pending.time or 0.0)
        if self._frames is None:
            self._frames = self._decode()
            if want_s > self.reseek_gap_s:
                self._seek(want_s)
        elif position_s is not None and (want_s - position_s > self.reseek_gap_s):
            self._seek(want_s)
        elif position_s is not None and want_s < position_s - period_s:
            self._seek(want_s)  # asked for a moment already passed (should not happen with sorted times)
        best = self._pending
        tolerance_s = period_s / 2.0
        while True:
            if best is not None and best.time is not None and best.time >= want_s - tolerance_s:
                # The first frame at or after the wanted moment (within half a period): it is the one shown then.
                self._pending = best
                return best
            try:
                best = next(self._frames)
            except StopIteration:
                self._pending = None
                return None
