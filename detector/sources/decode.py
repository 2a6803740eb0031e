"""Keyframe-aware decoding of sampled frames with PyAV, shared by files and RTSP cameras.

At 1 sample per second from a 25 fps camera, 24 of 25 decoded pictures would be thrown away. When the
stream's keyframes come at least as often as samples are needed, only keyframe packets are decoded (each is
self-contained, so skipping everything between them is free and nothing is ever decoded from a missing
reference); when keyframes are sparser, every packet is decoded and only the sampled pictures are converted
to BGR. The choice is re-made at every keyframe from the intervals actually seen, so a camera that changes
its GOP is followed. After a (re)connect or a decode error nothing is decoded until the next keyframe, so the
grey smears a decoder produces from missing references never come out.

What decoding costs is counted in a `DecodeTiming` (sums of `time.perf_counter` and of the reader thread's CPU
time, `time.thread_time`: about a microsecond per picture), so a service can show where each camera's
core-milliseconds go (measured in benchmarks/results/streams.md: a 1280x720 25 fps stream
sampled at 1 fps costs about 7 ms of a core per second with a 1 s GOP, keyframes only, and about 26 ms when the
GOP is longer than the sample interval and every picture has to be decoded; converting every picture to BGR
as well would cost 45 ms).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from detector.sources.base import SampleClock, SourceError

__all__ = ["DecodeTiming", "DecodeTotals", "VideoDecoder", "require_av", "DECODE_MODES"]

DECODE_MODES = ("auto", "keyframes", "all")


@dataclass(frozen=True)
class DecodeTotals:
    """What decoding one stream has cost so far (a snapshot of `DecodeTiming`).

    Attributes:
        decode_s: Wall seconds inside the codec (``codec.decode``).
        convert_s: Wall seconds converting sampled pictures to BGR (``frame.to_ndarray``).
        packets: Packets fed to `VideoDecoder.feed`.
        decoded: Pictures the codec produced.
        converted: Pictures converted to BGR (the sampled ones).
        decode_cpu_s: CPU seconds of the reader thread inside the codec (one decoding thread: all of it);
            on a busy machine wall time also counts the time other threads held the core, this does not.
        convert_cpu_s: CPU seconds of the conversions.
    """

    decode_s: float = 0.0
    convert_s: float = 0.0
    packets: int = 0
    decoded: int = 0
    converted: int = 0
    decode_cpu_s: float = 0.0
    convert_cpu_s: float = 0.0

    @property
    def cpu_s(self) -> float:
        """CPU seconds of decoding and conversion together."""
        return self.decode_cpu_s + self.convert_cpu_s

    def minus(self, earlier: "DecodeTotals") -> "DecodeTotals":
        """The cost between `earlier` and this snapshot.

        Example:
            >>> DecodeTotals(0.5, 0.1, 30, 2, 2).minus(DecodeTotals(0.2, 0.05, 5, 1, 1)).packets
            25
        """
        return DecodeTotals(*(a - b for a, b in zip(self._values(), earlier._values())))

    def plus(self, other: "DecodeTotals") -> "DecodeTotals":
        """Both together (several sources)."""
        return DecodeTotals(*(a + b for a, b in zip(self._values(), other._values())))

    def _values(self) -> tuple:
        return (self.decode_s, self.convert_s, self.packets, self.decoded, self.converted, self.decode_cpu_s,
                self.convert_cpu_s)


class DecodeTiming:
    """Running sums of decoding cost; written by one reader thread, read by anyone (`snapshot`).

    One per source: a reconnected stream gets a new `VideoDecoder` but keeps adding to the same sums.

    Example:
        >>> timing = DecodeTiming()
        >>> timing.add(DecodeTotals(decode_s=0.006, convert_s=0.001, packets=25, decoded=1, converted=1))
        >>> timing.snapshot().decoded
        1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = DecodeTotals()

    def add(self, cost: DecodeTotals) -> None:
        with self._lock:
            self._totals = self._totals.plus(cost)

    def snapshot(self) -> DecodeTotals:
        with self._lock:
            return self._totals


_ONE_PACKET = DecodeTotals(packets=1)


def require_av() -> Any:
    """Import PyAV, or raise a `SourceError` saying how to install it."""
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the environment
        raise SourceError("video sources need PyAV: pip install av") from None
    return av


class VideoDecoder:
    """Feeds demuxed packets of one video stream to its decoder and returns the sampled BGR pictures.

    Args:
        stream: A PyAV video stream (its codec context is configured here).
        clock: Decides which timestamps are kept.
        to_ts_s: Maps a presentation time in seconds (stream clock) to the frame's timestamp in seconds since
            the Unix epoch (files: start time + pts; cameras: smoothed wall-clock).
        reject: Called with a reason for every picture or packet refused here ("decode_error", "corrupt",
            "corrupt_packet").
        decode_mode: "auto" (keyframes only when they are frequent enough), "keyframes" (always; the sample
            rate then follows the GOP) or "all" (decode every packet).
        first_index: Index of the first frame of this stream (live sources continue across reconnects).
        timing: Where decoding cost is added up (a new `DecodeTiming` when None; see `timing`).

    Example:
        >>> import av  # doctest: +SKIP
        >>> container = av.open("footage.mp4"); stream = container.streams.video[0]  # doctest: +SKIP
        >>> decoder = VideoDecoder(stream, SampleClock(1.0), lambda pts_s: pts_s, reject=print)  # doctest: +SKIP
        >>> for packet in container.demux(stream):  # doctest: +SKIP
        ...     for index, ts_s, image in decoder.feed(packet):
        ...         ...
    """

    #: How many recent keyframe intervals decide the mode (the largest wins: be safe with irregular GOPs).
    KEYFRAME_HISTORY = 3

    def __init__(self, stream: Any, clock: SampleClock, to_ts_s: Callable[[float], float],
                 reject: Callable[[str], None], decode_mode: str = "auto", first_index: int = 0,
                 timing: DecodeTiming | None = None):
        if decode_mode not in DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {decode_mode!r}")
        self._av = require_av()
        self.stream = stream
        self.codec = stream.codec_context
        # One decoding thread: frame threading delays output by one frame per thread (latency, and with
        # keyframe-only decoding by seconds); many cameras are parallel by themselves.
        self.codec.thread_count = 1
        self.time_base = stream.time_base
        self.clock = clock
        self.to_ts_s = to_ts_s
        self.reject = reject
        self.decode_mode = decode_mode
        rate = stream.guessed_rate or stream.average_rate
        self.frame_period_s = 1.0 / float(rate) if rate else 0.04
        self._start_pts = stream.start_time or 0
        self._need_keyframe = True
        self._last_key_s: float | None = None
        self._key_intervals_s: deque[float] = deque(maxlen=self.KEYFRAME_HISTORY)
        self._keyframes_only = decode_mode == "keyframes"
        self._packets = first_index
        self._out_index = first_index
        self._key_index_by_pts: OrderedDict[int, int] = OrderedDict()
        self.timing = timing if timing is not None else DecodeTiming()

    @property
    def mode(self) -> str:
        """What is decoded now: "keyframes" or "all"."""
        return "keyframes" if self._keyframes_only else "all"

    @property
    def key_interval_s(self) -> float | None:
        """The largest recent interval between keyframes (stream seconds), None until two were seen."""
        return max(self._key_intervals_s) if self._key_intervals_s else None

    @property
    def next_index(self) -> int:
        """Index the next packet would get (where a reconnected stream continues)."""
        return self._packets

    def pts_s(self, pts: int) -> float:
        return float((pts - self._start_pts) * self.time_base)

    def feed(self, packet: Any) -> list[tuple[int, float, np.ndarray]]:
        """Decode what sampling needs from one packet; returns [(index, ts_s, BGR image)] in time order."""
        if packet.size == 0:  # the demuxer's end-of-stream marker
            return self.flush()
        index = self._packets
        self._packets += 1
        self.timing.add(_ONE_PACKET)
        if packet.is_corrupt:
            # The demuxer knows this packet is damaged (lost RTP/TS data): everything predicted from it
            # would be smeared, so stop decoding until the next keyframe.
            self.reject("corrupt_packet")
            self._need_keyframe = True
            self.codec.flush_buffers()
            return []
        pts = packet.pts if packet.pts is not None else packet.dts
        if packet.is_keyframe:
            self._on_keyframe(pts, index)
        elif self._need_keyframe:
            return []  # no reference yet: decoding would produce grey smears
        if not self._keyframes_only:
            return self._decode(packet)
        if not packet.is_keyframe or pts is None:
            return []
        ts_s = self.to_ts_s(self.pts_s(pts))
        # Half a keyframe interval of slack: keyframes are the only candidates, take the one nearest the
        # sample time even when live timestamps jitter it a millisecond early.
        slack_s = 0.5 * (self.key_interval_s or 0.0)
        if not self.clock.due(ts_s, slack_s):
            return []  # a keyframe not needed for sampling is not even decoded
        return self._decode(packet, drain=True, key_index=index, slack_s=slack_s)

    def flush(self) -> list[tuple[int, float, np.ndarray]]:
        """Pictures still held by the decoder (call at the end of a file)."""
        if self._keyframes_only or self._need_keyframe:
            return []
        return self._decode(None)

    # --- internals -------------------------------------------------------------------------------

    def _on_keyframe(self, pts: int | None, index: int) -> None:
        if pts is not None:
            key_s = self.pts_s(pts)
            if self._last_key_s is not None and key_s > self._last_key_s:
                self._key_intervals_s.append(key_s - self._last_key_s)
            self._last_key_s = key_s
            self._key_index_by_pts[pts] = index
            while len(self._key_index_by_pts) > 8:
                self._key_index_by_pts.popitem(last=False)
        self._need_keyframe = False
        if self.decode_mode != "auto":
            return
        keyframes_only = self._keyframes_suffice()
        if self._keyframes_only and not keyframes_only:
            self.codec.flush_buffers()  # keyframe decoding drained and flushed already; start clean
        elif keyframes_only and not self._keyframes_only:
            self._drop_pending()
            if pts is not None:
                self.clock.rephase(self.to_ts_s(self.pts_s(pts)))
        self._keyframes_only = keyframes_only

    def _keyframes_suffice(self) -> bool:
        """Keyframes are at least as frequent as samples (with half a frame of slack for timestamp jitter)."""
        if self.clock.interval_s is None or len(self._key_intervals_s) < 2:
            return False  # every frame wanted, or the GOP is not known yet
        return max(self._key_intervals_s) <= self.clock.interval_s + 0.5 * self.frame_period_s

    def _drop_pending(self) -> None:
        # Switching to keyframes: pictures the decoder still holds (B-frame reordering) are from before
        # this keyframe; they were already considered or are older than the next sample, so drop them.
        try:
            self.codec.decode(None)
        except self._av.FFmpegError:
            pass
        self.codec.flush_buffers()

    def _decode(self, packet: Any, drain: bool = False, key_index: int | None = None, slack_s: float = 0.0
                ) -> list[tuple[int, float, np.ndarray]]:
        started_s, started_cpu_s = time.perf_counter(), time.thread_time()
        try:
            frames = list(self.codec.decode(packet))
            if drain:
                # Keyframe-only decoding: the decoder would hold this picture until later packets arrive
                # (reordering delay); drain it now and reset, so it comes out without latency.
                if not frames:
                    frames = list(self.codec.decode(None))
                self.codec.flush_buffers()
        except self._av.FFmpegError:
            self.timing.add(DecodeTotals(decode_s=time.perf_counter() - started_s,
                                         decode_cpu_s=time.thread_time() - started_cpu_s))
            self.reject("decode_error")
            self._need_keyframe = True
            self.codec.flush_buffers()
            return []
        self.timing.add(DecodeTotals(decode_s=time.perf_counter() - started_s, decoded=len(frames),
                                     decode_cpu_s=time.thread_time() - started_cpu_s))
        out = []
        for frame in frames:
            if key_index is not None:
                index = key_index
            else:
                if frame.key_frame and frame.pts in self._key_index_by_pts:
                    self._out_index = self._key_index_by_pts[frame.pts]
                index = self._out_index
                self._out_index += 1
            if frame.is_corrupt:
                # Concealed errors: parts of the picture are guesses, and so is everything predicted from it
                # (the rest of this batch and what the decoder holds). Drop it all; resume at a keyframe.
                self.reject("corrupt")
                self._need_keyframe = True
                self.codec.flush_buffers()
                break
            if frame.pts is None:
                continue
            ts_s = self.to_ts_s(self.pts_s(frame.pts))
            if not self.clock.offer(ts_s, slack_s):
                continue
            # Only the sampled picture is converted (a 720p YUV→BGR conversion costs about as much as decoding
            # a P-frame); its timestamp is its own pts, never the time the sample was due.
            convert_started_s, convert_started_cpu_s = time.perf_counter(), time.thread_time()
            image = frame.to_ndarray(format="bgr24")
            self.timing.add(DecodeTotals(convert_s=time.perf_counter() - convert_started_s, converted=1,
                                         convert_cpu_s=time.thread_time() - convert_started_cpu_s))
            out.append((index, ts_s, image))
        return out

