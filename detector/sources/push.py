"""`PushSource`: JPEG frames posted to the service by a camera or gateway (no thread, no connection)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Callable

from detector.errors import ImageReadError, StreetwatchError
from detector.imageio import decode_image, jpeg_size
from detector.sources.base import SampleClock, SourceBase, SourceHealth, SourceState
from detector.sources.guard import FrameGuard
from detector.sources.mjpeg import image_error_reason
from detector.types import Frame

__all__ = ["PushSource", "PushRejected", "jpeg_size"]


class PushRejected(StreetwatchError):
    """A pushed frame was refused; `reason` is a short code for the API, `str()` a one-line explanation.

    Reasons: "oversized", "not_jpeg", "bad_ts", "future_ts", "out_of_order", "truncated", "corrupt", "empty", "black",
    "uniform", "frozen", "stopped".
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class PushSource(SourceBase):
    """Frames pushed as JPEG bytes with their capture time; consumed like any other source.

    `push()` checks cheap things first (size, JPEG signature, timestamp order, declared pixel count) and
    decodes last, so a flood of bad requests costs little. Timestamps must increase strictly: a retried or
    reordered request is refused as "out_of_order" rather than fed twice or backwards into dwell times. A
    timestamp more than `max_future_s` ahead of the clock is refused as "future_ts" and not remembered: one
    frame stamped in the year 9999 would otherwise make every later, correct frame "out_of_order".
    When the consumer is behind, the oldest queued frame is dropped (counted): latency never grows.

    Health: "connecting" until the first accepted frame, "streaming" while frames arrive, "stale" after
    `stale_after_s` without one, "ended" after `stop()`.

    Args:
        camera_id: Id on each frame.
        max_queue: Output queue capacity.
        sample_fps: Keep at most this many frames per second of capture time (others are accepted and
            skipped: `push` returns None); None keeps all.
        max_bytes: Larger uploads are refused as "oversized" before anything is decoded.
        max_pixels: JPEGs declaring more pixels are refused as "oversized" before decoding (decompression
            bombs: a few KB can declare 65535 x 65535).
        stale_after_s: Seconds without an accepted frame after which health says "stale".
        max_future_s: Largest accepted lead of a frame's timestamp over `clock_s` (camera clocks drift a
            little); None accepts any.
        clock_s: The wall clock, seconds since the epoch (tests pass a fake one).
        guard: Black/frozen frame guard (default `FrameGuard()`).
        stop_event: A service-wide stop event.

    Example:
        >>> import cv2, numpy as np
        >>> from datetime import datetime, timezone
        >>> source = PushSource("gate-3").start()
        >>> image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        >>> jpeg = cv2.imencode(".jpg", image)[1].tobytes()
        >>> source.push(jpeg, datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)).index
        0
        >>> source.read(timeout_s=1).ts.isoformat()
        '2026-06-01T08:00:00+00:00'
        >>> try:
        ...     source.push(jpeg, datetime(2026, 6, 1, 7, 59, tzinfo=timezone.utc))
        ... except PushRejected as error:
        ...     error.reason
        'out_of_order'
    """

    kind = "push"

    def __init__(self, camera_id: str, max_queue: int = 4, *, sample_fps: float | None = None,
                 max_bytes: int = 10_000_000, max_pixels: int = 40_000_000, stale_after_s: float = 30.0,
                 max_future_s: float | None = 300.0, clock_s: Callable[[], float] = time.time,
                 guard: FrameGuard | None = None, stop_event: threading.Event | None = None):
        super().__init__(camera_id, live=True, queue_size=max_queue, guard=guard, stop_event=stop_event)
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.stale_after_s = float(stale_after_s)
        self.max_future_s = None if max_future_s is None else float(max_future_s)
        self._clock_s = clock_s
        self._clock = SampleClock(sample_fps)
        self._push_lock = threading.Lock()
        self._last_ts: datetime | None = None
        self._last_accept_s: float | None = None
        self._index = 0
        self._started = False

    def start(self) -> "PushSource":
        """Accept pushes (no thread: frames arrive on the caller's thread)."""
        self._started = True
        self._beat()
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        self._queue.close(discard=True)
        self._set_state(SourceState.ENDED, connected=False)

    @property
    def finished(self) -> bool:
        return self.stopping and self._queue.drained

    def read(self, timeout_s: float | None = None) -> Frame | None:
        self._started = True
        return self._queue.get(timeout_s)

    def push(self, jpeg_bytes: bytes, ts: datetime) -> Frame | None:
        """Accept one JPEG taken at `ts`; returns the queued frame, or None when sampling skipped it.

        Raises:
            PushRejected: With `reason` and a one-line message; counted in ``health().rejected_reasons``.
        """
        with self._push_lock:
            self._count_in()
            self._beat()
            try:
                return self._accept(jpeg_bytes, ts)
            except PushRejected as exc:
                self._reject(exc.reason)
                self._note_error(exc)
                raise

    def _accept(self, data: bytes, ts: datetime) -> Frame | None:
        if self.stopping:
            raise PushRejected("stopped", f"{self.source_id}: source is stopped")
        if len(data) > self.max_bytes:
            raise PushRejected("oversized",
                               f"{self.source_id}: {len(data)} bytes exceeds the limit of {self.max_bytes}")
        if data[:3] != b"\xff\xd8\xff":
            raise PushRejected("not_jpeg", f"{self.source_id}: not a JPEG (no JPEG start-of-image marker)")
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise PushRejected("bad_ts", f"{self.source_id}: timestamp must be a timezone-aware datetime, got {ts!r}")
        if self.max_future_s is not None and ts.timestamp() > self._clock_s() + self.max_future_s:
            raise PushRejected("future_ts", f"{self.source_id}: timestamp {ts.isoformat()} is more than "
                                            f"{self.max_future_s:g} s ahead of the server clock (check the "
                                            f"camera's clock)")
        if self._last_ts is not None and ts <= self._last_ts:
            raise PushRejected("out_of_order", f"{self.source_id}: timestamp {ts.isoformat()} is not after the "
                                               f"previous frame's {self._last_ts.isoformat()}")
        size = jpeg_size(data)
        if size is not None and size[0] * size[1] > self.max_pixels:
            raise PushRejected("oversized", f"{self.source_id}: {size[0]}x{size[1]} pixels exceeds the limit "
                                            f"of {self.max_pixels}")
        if not self._clock.due(ts.timestamp()):
            self._last_ts = ts
            return None
        try:
            image = decode_image(data, name=self.source_id)
        except ImageReadError as exc:
            raise PushRejected(image_error_reason(exc), str(exc)) from None
        reason = self._guard.check(image)
        if reason is not None:
            raise PushRejected(reason, f"{self.source_id}: {reason} frame refused")
        frame = Frame(source_id=self.source_id, index=self._index, ts=ts, image=image)
        queued, dropped = self._queue.put(frame, lambda: self.stopping)
        if not queued:
            raise PushRejected("stopped", f"{self.source_id}: source is stopped")
        self._index += 1
        self._clock.take(ts.timestamp())
        self._last_ts = ts
        self._last_accept_s = time.monotonic()
        with self._lock:
            self._frames_dropped += dropped
            self._frames_sampled += 1
            self._last_frame_ts = ts
        self._rate_out.tick()
        self._set_state(SourceState.STREAMING, connected=True)
        return frame

    def health(self) -> SourceHealth:
        # No worker to notice silence: staleness is judged when asked.
        if not self.stopping and self._last_accept_s is not None:
            if time.monotonic() - self._last_accept_s > self.stale_after_s:
                self._set_state(SourceState.STALE, connected=False)
        return super().health()
