"""`RtspSource`: an RTSP camera read with PyAV (FFmpeg), sampled, watched and reconnected."""

from __future__ import annotations

import socket
import threading
import time
from typing import Sequence
from urllib.parse import urlsplit

from detector.sources.base import DEFAULT_BACKOFF_S, LiveSourceBase, SampleClock, StaleStream, redact_url
from detector.sources.decode import DECODE_MODES, DecodeTiming, VideoDecoder, require_av
from detector.sources.guard import FrameGuard
from detector.types import Frame

__all__ = ["RtspSource", "StreamClock"]

TRANSPORTS = ("tcp", "udp", "udp_multicast", "http", "https")


class StreamClock:
    """Wall-clock timestamps for a live stream: time of receipt, smoothed with the stream's own pts.

    Receipt times jitter with the network (packets only ever arrive late), while pts deltas are exact but
    have an arbitrary origin. The offset wall − pts is kept at its smallest recent value (the least-delayed
    packet), so ``ts = pts + offset`` follows the camera's clock without network jitter; it may creep up by
    `drift_ppm` to follow a camera clock that runs slow, and is re-anchored when pts jump (a stream
    restart) — at once when packets look early, after `confirm_s` when they look late (a long stall looks
    the same for a moment). Timestamps never go backwards and are never in the future.

    Args:
        resync_s: A deviation larger than this is a discontinuity, not jitter.
        confirm_s: How long (stream time) a late deviation must persist before re-anchoring.
        drift_ppm: How fast the offset may grow, in microseconds per second of stream time.

    Example:
        >>> clock = StreamClock()
        >>> clock.observe(pts_s=0.0, wall_s=1000.30); clock.observe(pts_s=0.04, wall_s=1000.32)
        >>> round(clock.ts_s(0.04, now_s=1000.5), 3)  # the second packet was less delayed: offset 1000.28
        1000.32
    """

    def __init__(self, resync_s: float = 1.0, confirm_s: float = 2.0, drift_ppm: float = 100.0):
        self.resync_s = resync_s
        self.confirm_s = confirm_s
        self.drift = drift_ppm * 1e-6
        self._offset_s: float | None = None
        self._last_pts_s: float | None = None
        self._pending: tuple[float, float] | None = None  # (pts_s when a late deviation began, min offset)
        self._last_ts_s = float("-inf")

    def observe(self, pts_s: float, wall_s: float) -> None:
        """A packet with presentation time `pts_s` arrived at `wall_s` (seconds since the epoch)."""
        offset_s = wall_s - pts_s
        if self._offset_s is None or offset_s < self._offset_s - self.resync_s:
            self._anchor(offset_s, pts_s)
            return
        if offset_s > self._offset_s + self.resync_s:
            start_s, low_s = self._pending or (pts_s, offset_s)
            self._pending = (start_s, min(low_s, offset_s))
            if pts_s - start_s >= self.confirm_s or pts_s < start_s:
                self._anchor(self._pending[1], pts_s)
            return
        self._pending = None
        allowed_s = self._offset_s + self.drift * max(0.0, pts_s - (self._last_pts_s or pts_s))
        self._offset_s = min(offset_s, allowed_s)
        self._last_pts_s = pts_s

    def ts_s(self, pts_s: float, now_s: float | None = None) -> float:
        """Seconds since the epoch for a frame with presentation time `pts_s`."""
        now_s = time.time() if now_s is None else now_s
        ts_s = now_s if self._offset_s is None else min(pts_s + self._offset_s, now_s)
        ts_s = max(ts_s, self._last_ts_s + 1e-6)
        self._last_ts_s = ts_s
        return ts_s

    def _anchor(self, offset_s: float, pts_s: float) -> None:
        self._offset_s = offset_s
        self._last_pts_s = pts_s
        self._pending = None


class RtspSource(LiveSourceBase):
    """A live RTSP camera: one reader thread, sampled frames, drop-oldest output, watchdog and reconnects.

    Read with PyAV over `transport` (TCP by default: no packet loss, so no smeared pictures, and it passes
    NAT). Decoding is keyframe-aware (see `detector.sources.decode`): a 25 fps camera with a 1 s GOP sampled at
    1 fps decodes one picture per second. After every (re)connect nothing is emitted before a keyframe.

    ``ts`` is the wall-clock time of receipt, smoothed with the stream's pts (`StreamClock`).
    Network problems never raise into the consumer: they show in `health()` (state, `last_error`,
    `reconnects`) while the source reconnects with back-off. States: connecting → streaming → (stale →)
    reconnecting → streaming ...; "failed" after a whole back-off ladder without a frame (still retrying).

    Args:
        url: ``rtsp://[user:password@]host[:port]/path``; credentials never appear in ids, errors or health.
        sample_fps: Samples per second; None keeps every frame.
        transport: "tcp" (default), "udp", "udp_multicast", "http" or "https" (RTSP over HTTP tunnelling).
        open_timeout_s: Limit for connecting and starting the stream.
        read_timeout_s: Limit for one blocking read: a silent camera is "stale" after this long. It also
            bounds how long a stopped reader thread lingers.
        stale_after_s: Data arrives but no usable frame came out (decode errors, black or frozen pictures)
            for this long, plus one sample interval and one keyframe interval (keyframe decoding and sparse
            GOPs space frames out) → "stale", close and reconnect.
        backoff_s: Waits between failed attempts (the last repeats), scaled by ±`jitter`; each at most
            `MAX_RECONNECT_WAIT_S` (5 s), so a camera that comes back is streaming again within about
            that plus `open_timeout_s` (issue 17: recovery ≤ 10 s, however long the outage was).
        source_id: Id on each frame; default the URL without credentials.
        decode_mode: "auto", "keyframes" or "all" (see `VideoDecoder`).
        queue_size: Output queue capacity; when full the oldest frame is dropped (counted).
        jitter: Relative random spread of back-off waits.
        guard: Black/frozen frame guard (default `FrameGuard()`).
        stop_event: A service-wide stop event.
        options: Extra FFmpeg options (strings), merged over the defaults.

    Example:
        >>> source = RtspSource("rtsp://10.0.0.5/stream1", sample_fps=1.0).start()  # doctest: +SKIP
        >>> frame = source.read(timeout_s=10)  # doctest: +SKIP
        >>> source.health().state, source.health().reconnects  # doctest: +SKIP
        (<SourceState.STREAMING: 'streaming'>, 0)
        >>> source.stop()  # doctest: +SKIP
    """

    kind = "rtsp"

    def __init__(self, url: str, sample_fps: float | None = 1.0, transport: str = "tcp", open_timeout_s: float = 5.0,
                 read_timeout_s: float = 5.0, stale_after_s: float = 5.0,
                 backoff_s: Sequence[float] = DEFAULT_BACKOFF_S, *, source_id: str | None = None,
                 decode_mode: str = "auto", queue_size: int = 2, jitter: float = 0.2, guard: FrameGuard | None = None,
                 stop_event: threading.Event | None = None, options: dict[str, str] | None = None):
        super().__init__(source_id or redact_url(url), stale_after_s=stale_after_s, backoff_s=backoff_s,
                         jitter=jitter, queue_size=queue_size, guard=guard, stop_event=stop_event)
        if decode_mode not in DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {decode_mode!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        if not (open_timeout_s > 0 and read_timeout_s > 0):
            raise ValueError("open_timeout_s and read_timeout_s must be > 0")
        av = require_av()
        self.url = url
        self.sample_fps = sample_fps
        self.transport = transport
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.decode_mode = decode_mode
        self._clock = SampleClock(sample_fps)
        self._next_index = 0
        # What decoding has cost, over every session (per-stage timing: service.workers, benchmarks/streams.py).
        self.decode_timing = DecodeTiming()
        self.NETWORK_ERRORS = (OSError, EOFError, TimeoutError, av.FFmpegError)
        self.options = {
            "rtsp_transport": transport,
            # Socket I/O timeout (microseconds): a silent TCP connection errors instead of hanging.
            "timeout": str(int(self.read_timeout_s * 1e6)),
            # Video only: the camera does not send audio we would only discard.
            "allowed_media_types": "video",
            # Start within about a second: SPS/PPS come in the SDP. (Not "fflags=nobuffer": it throws away the
            # packets read while probing, the first keyframe among them, delaying the first frame by a GOP.)
            "analyzeduration": "1000000",
            "probesize": "500000",
            **(options or {}),
        }

    def _session(self) -> None:
        av = require_av()
        host = urlsplit(self.url).hostname
        if host:
            try:
                # Resolve first: FFmpeg reports a failed lookup as a bare "Input/output error".
                socket.getaddrinfo(host, None)
            except socket.gaierror as exc:
                raise ConnectionError(f"cannot resolve camera host {host}: {exc.strerror}") from None
        try:
            container = av.open(self.url, options=self.options, timeout=(self.open_timeout_s, self.read_timeout_s))
        except av.ExitError:
            raise TimeoutError(f"no answer from the camera within {self.open_timeout_s:g} s") from None
        try:
            if not container.streams.video:
                raise ConnectionError("the camera offers no video stream")
            stream = container.streams.video[0]
            clock = StreamClock()
            decoder = VideoDecoder(stream, self._clock, clock.ts_s, self._reject, self.decode_mode,
                                   first_index=self._next_index, timing=self.decode_timing)
            if self.stopping:
                return
            self._set_connected(True)
            last_usable_s = time.monotonic()
            try:
                for packet in container.demux(stream):
                    now_s = time.monotonic()
                    self._beat()
                    if self.stopping:
                        return
                    if packet.size == 0:
                        return  # end of stream: the camera closed the session
                    self._count_in()
                    pts = packet.pts if packet.pts is not None else packet.dts
                    if pts is not None:
                        clock.observe(decoder.pts_s(pts), time.time())
                    for index, ts_s, image in decoder.feed(packet):
                        if self._emit(image, Frame.utc_from_s(ts_s), index):
                            self._mark_usable()
                            last_usable_s = now_s
                    self._next_index = decoder.next_index
                    self._decode_mode = decoder.mode
                    self._watchdog(now_s, last_usable_s, decoder)
            except (av.ExitError, TimeoutError):
                # A read blocked for read_timeout_s (PyAV's interrupt, or the socket timeout).
                raise StaleStream(f"no data from the camera for {self.read_timeout_s:g} s") from None
        finally:
            container.close()

    def _watchdog(self, now_s: float, last_usable_s: float, decoder: VideoDecoder) -> None:
        """Data flows but nothing usable comes out (decode errors, black or frozen pictures): reconnect."""
        key_interval_s = decoder.key_interval_s if decoder.key_interval_s is not None else self.stale_after_s
        limit_s = self.stale_after_s + (self._clock.interval_s or 0.0) + key_interval_s
        if now_s - last_usable_s > limit_s:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.health().rejected_reasons.items())) or "none"
            raise StaleStream(f"no usable frame for {limit_s:.0f} s (rejected so far: {reasons})")
