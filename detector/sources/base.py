"""What every source shares: the `Source` protocol, its `SourceHealth`, time-based sampling, the bounded
output queue, the worker thread with its stop event and heartbeat, and the reconnect loop of live sources.

The shape follows Frigate's camera workers: one thread per source, a bounded queue whose overflow is
counted (live sources drop the oldest frame so latency never grows; files block so no sample is lost), a stop
event that may be shared by a whole service, a heartbeat a supervisor can watch, and state reported through
a health snapshot rather than logs.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, ClassVar, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from detector.errors import StreetwatchError
from detector.sources.guard import FrameGuard
from detector.types import Frame

__all__ = [
    "Source", "SourceState", "SourceHealth", "SourceError", "SampleClock", "SourceBase", "LiveSourceBase",
    "one_line", "redact_url", "DEFAULT_BACKOFF_S", "MAX_RECONNECT_WAIT_S", "reconnect_wait_s",
]

#: The longest wait between two reconnect attempts of a live source, jitter included. Recovery promise: a camera
#: that comes back is tried again within this wait plus one attempt (bounded by the source's open timeout), so
#: with the defaults (5 s each) frames resume within about 10 s of the stream's return, however long the outage.
#: (A ladder that grew to 15 s ±20 % once made a recovery take 16.8 s: issue 17.)
MAX_RECONNECT_WAIT_S = 5.0

#: Default reconnect ladder of the live sources: quick first retries (a camera that restarts is back at once),
#: then 4 s (its largest jittered wait, 4.8 s, stays under `MAX_RECONNECT_WAIT_S`). The rung repeats so that the
#: whole ladder, which decides when a source is reported "failed", spans about 8 s of attempts.
DEFAULT_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 4.0)


def reconnect_wait_s(failures: int, backoff_s: Sequence[float], jitter: float, u: float) -> float:
    """Seconds to wait before the next connection attempt of a live source.

    Args:
        failures: Consecutive attempts that produced no frame (0 after a session that delivered frames).
        backoff_s: The ladder; rung ``failures - 1`` is used (rung 0 for 0 failures), the last one repeats.
        jitter: Relative spread: the rung is scaled by ``1 + jitter * (2u - 1)``, within [1 - jitter, 1 + jitter].
        u: A uniform random number in [0, 1] (the caller's random generator; tests pass fixed values).

    Returns:
        The jittered rung, never above `MAX_RECONNECT_WAIT_S`.

    Example:
        >>> [reconnect_wait_s(f, DEFAULT_BACKOFF_S, 0.2, 0.5) for f in range(7)]
        [0.5, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
        >>> reconnect_wait_s(9, (4.5,), 0.2, 1.0)  # 5.4 s jittered, clamped
        5.0
    """
    rung_s = backoff_s[min(max(failures - 1, 0), len(backoff_s) - 1)]
    return min(rung_s * (1.0 + jitter * (2.0 * u - 1.0)), MAX_RECONNECT_WAIT_S)


class SourceError(StreetwatchError):
    """A source cannot be opened or read at all (missing file, not a video, unknown scheme)."""


class SourceState(str, Enum):
    """Where a source is in its life; `SourceHealth.since` says since when."""

    CONNECTING = "connecting"      # first connection attempt (or waiting for the first pushed frame)
    STREAMING = "streaming"        # frames are flowing
    STALE = "stale"                # silent for `read_timeout_s`, or nothing usable for `stale_after_s`:
    #                                about to close and reconnect
    RECONNECTING = "reconnecting"  # connection lost or refused; retrying after a back-off
    ENDED = "ended"                # end of file/folder, or stopped
    FAILED = "failed"              # unusable: cannot open a file, an internal error, or a camera unreachable
    #                                through the whole back-off ladder (live sources keep retrying)


@dataclass(frozen=True)
class SourceHealth:
    """A snapshot of one source, for a health endpoint, a supervisor or a test.

    Attributes:
        source_id: The source's id (URLs without credentials).
        kind: "file", "rtsp", "mjpeg", "folder" or "push".
        state: See `SourceState`.
        connected: True while a connection (or file) is open and delivering.
        since: When `state` was entered (UTC).
        fps_in: Frames arriving at the source per second of wall time, over the last few seconds.
        fps_sampled: Frames emitted per second of wall time, over the last few seconds.
        frames_in: Frames received (video packets, MJPEG parts, files, pushes) since the start.
        frames_sampled: Frames emitted into the output queue.
        frames_dropped: Emitted frames discarded unread because the consumer was behind (live sources only).
        frames_rejected: Frames refused, total; `rejected_reasons` splits it by reason ("black", "uniform",
            "frozen", "corrupt", "truncated", "decode_error", "out_of_order", ...).
        reconnects: Connection attempts after the first one.
        last_frame_ts: Timestamp of the last emitted frame.
        last_error: The last problem, one line (credentials removed), or None.
        heartbeat_ts: When the worker last showed it was alive (UTC); a stuck worker stops updating it.
        decode_mode: "keyframes" or "all" for video sources (what the decoder currently decodes), else None.
        history: The last state changes, oldest first, as (state, since) pairs.
    """

    source_id: str
    kind: str
    state: SourceState
    connected: bool
    since: datetime
    fps_in: float
    fps_sampled: float
    frames_in: int
    frames_sampled: int
    frames_dropped: int
    frames_rejected: int
    rejected_reasons: Mapping[str, int]
    reconnects: int
    last_frame_ts: datetime | None
    last_error: str | None
    heartbeat_ts: datetime | None
    decode_mode: str | None = None
    history: tuple[tuple[SourceState, datetime], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (ISO 8601 times, state names as strings)."""
        iso = lambda t: None if t is None else t.isoformat()  # noqa: E731
        return {
            "source_id": self.source_id, "kind": self.kind, "state": self.state.value, "connected": self.connected,
            "since": iso(self.since), "fps_in": round(self.fps_in, 2), "fps_sampled": round(self.fps_sampled, 2),
            "frames_in": self.frames_in, "frames_sampled": self.frames_sampled,
            "frames_dropped": self.frames_dropped, "frames_rejected": self.frames_rejected,
            "rejected_reasons": dict(self.rejected_reasons), "reconnects": self.reconnects,
            "last_frame_ts": iso(self.last_frame_ts), "last_error": self.last_error,
            "heartbeat_ts": iso(self.heartbeat_ts), "decode_mode": self.decode_mode,
            "history": [[s.value, iso(t)] for s, t in self.history],
        }


@runtime_checkable
class Source(Protocol):
    """Frames in: anything that yields `Frame` objects and reports its health.

    Example:
        >>> from detector.sources import open_source
        >>> with open_source("footage.mp4", sample_fps=1.0) as source:  # doctest: +SKIP
        ...     for frame in source:
        ...         print(frame.index, frame.ts, source.health().state)
    """

    source_id: str

    def start(self) -> "Source": ...

    def stop(self, timeout_s: float = 1.0) -> None: ...

    def read(self, timeout_s: float | None = None) -> Frame | None: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def health(self) -> SourceHealth: ...


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An error as one line without credentials: ``"TypeName: message"`` collapsed and truncated."""
    if isinstance(error, BaseException):
        message = str(error) or repr(error)
        text = message if isinstance(error, StreetwatchError) else f"{type(error).__name__}: {message}"
    else:
        text = error
    text = redact_url(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """Remove ``user:password@`` from every URL in `text` (ids, errors and health never carry secrets).

    Example:
        >>> redact_url("rtsp://admin:secret@10.0.0.5:554/stream1")
        'rtsp://10.0.0.5:554/stream1'
    """
    return _USERINFO.sub(r"\g<scheme>", text)


class SampleClock:
    """Time-based sampling: keeps a frame when its timestamp reaches the next point of a 1/sample_fps grid.

    The grid is anchored at the first kept frame, and after each kept frame the next sample time is the first
    grid point after it, so irregular frame rates, dropped frames and sparse keyframes never shift the grid
    or make the rate exceed `sample_fps`. Timestamps, never frame counts, decide.

    Args:
        sample_fps: Samples per second; None keeps every frame.

    Example:
        >>> clock = SampleClock(sample_fps=1.0)
        >>> kept = [t for t in [0.0, 0.4, 0.96, 1.04, 1.5, 2.0, 2.2] if clock.offer(t)]
        >>> kept
        [0.0, 1.04, 2.0]
    """

    #: Tolerance for timestamps converted from rationals (1.0 may arrive as 0.99999999).
    EPSILON_S = 1e-4

    def __init__(self, sample_fps: float | None):
        if sample_fps is not None and not sample_fps > 0:
            raise ValueError(f"sample_fps must be > 0 (or None for every frame), got {sample_fps}")
        self.interval_s = None if sample_fps is None else 1.0 / float(sample_fps)
        self._anchor_s: float | None = None
        self._next_s: float | None = None
        self._last_taken_s: float | None = None

    def due(self, t_s: float, slack_s: float = 0.0) -> bool:
        """Whether a frame at `t_s` would be kept (does not advance the clock).

        `slack_s` accepts a frame up to that much before the sample time: when only some frames can be had
        (keyframes) and their timestamps jitter (live streams), the one nearest the sample time is taken
        instead of waiting a whole keyframe interval for the next.
        """
        if self._next_s is None or self.interval_s is None:
            return True
        return t_s >= self._next_s - max(self.EPSILON_S, slack_s)

    def take(self, t_s: float) -> None:
        """Record that the frame at `t_s` was kept: the next sample time is the first grid point after it."""
        if self.interval_s is None:
            return
        if self._anchor_s is None or t_s < self._anchor_s:
            self._anchor_s = t_s
        steps = int(np.floor((t_s - self._anchor_s) / self.interval_s + self.EPSILON_S)) + 1
        self._next_s = self._anchor_s + steps * self.interval_s
        self._last_taken_s = t_s

    def rephase(self, t_s: float) -> None:
        """Move the grid so that one of its points falls on `t_s` (a keyframe).

        Keyframe-only decoding can only sample at keyframes; when they come exactly once per interval but
        out of phase with the grid, one sample would be skipped at the switch. The frame at `t_s` becomes due
        when at least half an interval has passed since the last kept frame, so the rate never exceeds
        twice `sample_fps` for that one step, and follows the keyframes afterwards.
        """
        if self.interval_s is None or self._last_taken_s is None:
            return
        self._anchor_s = t_s
        early = t_s - self._last_taken_s < 0.5 * self.interval_s
        self._next_s = t_s + self.interval_s if early else t_s

    def offer(self, t_s: float, slack_s: float = 0.0) -> bool:
        """`due` and, if so, `take`: True when the frame at `t_s` is kept."""
        if not self.due(t_s, slack_s):
            return False
        self.take(t_s)
        return True


class _RateMeter:
    """Events per second of wall time over the last `window_s` seconds (monotonic clock)."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._first_s: float | None = None
        self._lock = threading.Lock()

    def tick(self, now_s: float | None = None) -> None:
        now_s = time.monotonic() if now_s is None else now_s
        with self._lock:
            if self._first_s is None:
                self._first_s = now_s
            self._times.append(now_s)
            while now_s - self._times[0] > self.window_s:
                self._times.popleft()

    def rate(self, now_s: float | None = None) -> float:
        now_s = time.monotonic() if now_s is None else now_s
        with self._lock:
            if self._first_s is None:
                return 0.0
            count = sum(1 for t in self._times if now_s - t <= self.window_s)
            # Count over the window (or the time since the first event, at least 1 s): unbiased for slow
            # rates like 1 fps, and a stream that stopped decays to 0.
            return count / max(min(self.window_s, now_s - self._first_s), 1.0)


class _FrameQueue:
    """A bounded queue of frames: drop-oldest (live) or blocking (files), closable, counting drops."""

    def __init__(self, maxsize: int, drop_oldest: bool):
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, frame: Frame, should_stop: Callable[[], bool]) -> tuple[bool, int]:
        """Queue `frame`; returns (queued, frames dropped to make room)."""
        with self._cond:
            if self._closed:
                return False, 0
            dropped = 0
            if self.drop_oldest:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    dropped += 1
            else:
                while len(self._items) >= self.maxsize:
                    # Short waits: a shared stop event set elsewhere cannot notify this condition.
                    self._cond.wait(0.1)
                    if self._closed or should_stop():
                        return False, 0
            self._items.append(frame)
            self._cond.notify_all()
            return True, dropped

    def get(self, timeout_s: float | None) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout=timeout_s):
                return None
            return self._items.popleft() if self._items else None

    def close(self, discard: bool = False) -> None:
        """No more frames will come; readers get what is queued (nothing when `discard`), then None."""
        with self._cond:
            self._closed = True
            if discard:
                self._items.clear()
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        with self._cond:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SourceBase:
    """Shared machinery of all sources: lifecycle, output queue, guard, counters and health.

    Subclasses implement `_run()` (the worker thread's body), may implement `_open()` (synchronous checks
    in `start()`, so a missing file raises at once) and `_interrupt()` (unblock the worker on `stop()`), and
    call `_emit()` for each candidate frame.

    Args:
        source_id: Id stamped on every frame.
        live: Live sources drop the oldest queued frame when the consumer is behind; others block.
        queue_size: Capacity of the output queue.
        guard: The black/frozen frame guard (default `FrameGuard()`); `FrameGuard.disabled()` lets all pass.
        stop_event: An event shared with the rest of a service: setting it stops this source as `stop()` does.
    """

    kind: ClassVar[str] = "source"
    _HISTORY_LEN: ClassVar[int] = 16

    def __init__(self, source_id: str, *, live: bool, queue_size: int, guard: FrameGuard | None = None,
                 stop_event: threading.Event | None = None):
        self.source_id = source_id
        self.live = live
        self._queue = _FrameQueue(queue_size, drop_oldest=live)
        self._guard = guard if guard is not None else FrameGuard()
        self._stop = threading.Event()
        self._shared_stop = stop_event
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = SourceState.CONNECTING
        self._since = _utc_now()
        self._history: deque[tuple[SourceState, datetime]] = deque([(self._state, self._since)],
                                                                   maxlen=self._HISTORY_LEN)
        self._connected = False
        self._last_error: str | None = None
        self._heartbeat_s: float | None = None
        self._decode_mode: str | None = None
        self._frames_in = 0
        self._frames_sampled = 0
        self._frames_dropped = 0
        self._rejected: Counter[str] = Counter()
        self._reconnects = 0
        self._last_frame_ts: datetime | None = None
        self._rate_in = _RateMeter()
        self._rate_out = _RateMeter()
        self._fatal: StreetwatchError | None = None  # raised to the consumer of a non-live source at its end

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "SourceBase":
        """Open the source and start its worker thread (idempotent); returns self."""
        if self._thread is None:
            self._open()
            self._beat()
            self._thread = threading.Thread(target=self._main, name=f"source:{self.source_id}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the worker and discard queued frames; returns within about `timeout_s`.

        A worker blocked inside FFmpeg (connecting, reading) cannot be interrupted from outside; it ends by
        itself within the source's open/read timeout, emits nothing more, and is a daemon thread. To stop many
        sources at once, set their shared `stop_event` first, then call `stop()` on each.
        """
        self._stop.set()
        self._queue.close(discard=True)
        self._interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        with self._lock:
            failed = self._state is SourceState.FAILED
        if not failed:
            self._set_state(SourceState.ENDED, connected=False)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or (self._shared_stop is not None and self._shared_stop.is_set())

    @property
    def finished(self) -> bool:
        """True when no frame will ever come again (ended, failed or stopped, and the queue is empty)."""
        return self._queue.drained

    def queue_depth(self) -> int:
        """Frames waiting to be read (a consumer that keeps up sees 0 or 1)."""
        return len(self._queue)

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame, or None when none arrived within `timeout_s` or the source has finished.

        Raises:
            SourceError: A file or folder source failed (unreadable, internal error) after its last frame.
                Live sources never raise here; their problems are in `health()`.
        """
        if self._thread is None:
            self.start()
        frame = self._queue.get(timeout_s)
        if frame is None and self._fatal is not None and self._queue.drained:
            raise self._fatal
        return frame

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the source finishes or is stopped (live sources: until stopped)."""
        while True:
            frame = self.read(timeout_s=0.25)
            if frame is not None:
                yield frame
            elif self.finished or self.stopping:
                return

    def __enter__(self) -> "SourceBase":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- health ----------------------------------------------------------------------------------

    def health(self) -> SourceHealth:
        """A consistent snapshot of counters and state."""
        with self._lock:
            return SourceHealth(
                source_id=self.source_id, kind=self.kind, state=self._state, connected=self._connected,
                since=self._since, fps_in=self._rate_in.rate(), fps_sampled=self._rate_out.rate(),
                frames_in=self._frames_in, frames_sampled=self._frames_sampled,
                frames_dropped=self._frames_dropped, frames_rejected=sum(self._rejected.values()),
                rejected_reasons=dict(self._rejected), reconnects=self._reconnects,
                last_frame_ts=self._last_frame_ts, last_error=self._last_error,
                heartbeat_ts=None if self._heartbeat_s is None else Frame.utc_from_s(self._heartbeat_s),
                decode_mode=self._decode_mode, history=tuple(self._history),
            )

    # --- for subclasses --------------------------------------------------------------------------

    def _open(self) -> None:
        """Synchronous part of `start()`; raise `SourceError` for problems the caller must see at once."""

    def _run(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Unblock the worker after `stop()` (close a socket, ...)."""

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported through health and, for files, raised by read()
            self._set_state(SourceState.FAILED, connected=False, error=f"internal error: {one_line(exc)}")
            if not self.live:
                fatal = SourceError(f"{self.source_id}: {one_line(exc)}")
                fatal.__cause__ = exc
                self._fatal = fatal
        finally:
            with self._lock:
                self._connected = False
                done = self._state not in (SourceState.FAILED, SourceState.ENDED)
            if done:
                self._set_state(SourceState.ENDED)
            self._queue.close(discard=self.stopping)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` unless stopped; True when stopping."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Short slices: a shared stop event cannot wake our own event.
            self._stop.wait(min(remaining, 0.1 if self._shared_stop is not None else remaining))
            self._beat()
        return True

    def _beat(self) -> None:
        self._heartbeat_s = time.time()

    def _set_state(self, state: SourceState, *, connected: bool | None = None, error: BaseException | str | None = None
                   ) -> None:
        with self._lock:
            if state is not self._state:
                self._state = state
                self._since = _utc_now()
                self._history.append((state, self._since))
            if connected is not None:
                self._connected = connected
            if error is not None:
                self._last_error = one_line(error)

    def _note_error(self, error: BaseException | str) -> None:
        """Record a problem in `last_error` without changing state (a corrupt part, a refused push)."""
        with self._lock:
            self._last_error = one_line(error)

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def _count_in(self, n: int = 1) -> None:
        self._frames_in += n
        self._rate_in.tick()

    def _reject(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def _emit(self, image: np.ndarray, ts: datetime, index: int) -> bool:
        """Guard, wrap and queue one frame; True when it was queued."""
        reason = self._guard.check(image)
        if reason is not None:
            self._reject(reason)
            return False
        frame = Frame(source_id=self.source_id, index=index, ts=ts, image=image)
        queued, dropped = self._queue.put(frame, lambda: self.stopping)
        if not queued:
            return False
        with self._lock:
            self._frames_dropped += dropped
            self._frames_sampled += 1
            self._last_frame_ts = ts
        self._rate_out.tick()
        return True


class StaleStream(Exception):
    """Raised inside a live session when the watchdog fires: no data, or no usable frame, for too long."""


class LiveSourceBase(SourceBase):
    """A network camera: connect, stream, and on any failure reconnect with exponential back-off and jitter.

    Subclasses implement `_session()`: connect, then emit frames until the connection is lost (return or
    raise one of `NETWORK_ERRORS`); it must call `_mark_usable()` whenever a frame was emitted and may raise
    `StaleStream`. Errors in that list never reach the consumer: they become `last_error` and a reconnect.
    Any other exception is a bug and ends the source as "failed".

    Args:
        stale_after_s: Data arrives but no usable frame for this long (beyond one sample interval) → "stale",
            reconnect. (A silent connection is caught by the subclass's read timeout.)
        backoff_s: Waits between consecutive failed attempts; the last one repeats. After the whole ladder
            fails the state is "failed" (the source still retries at the last back-off). Each rung is at most
            `MAX_RECONNECT_WAIT_S`, so a camera that returns is tried again within that long.
        jitter: Each wait is scaled by a random factor in [1 - jitter, 1 + jitter] so cameras that dropped
            together do not reconnect in lock-step (and clamped to `MAX_RECONNECT_WAIT_S`).
    """

    NETWORK_ERRORS: ClassVar[tuple[type[BaseException], ...]] = (OSError, EOFError, TimeoutError)

    def __init__(self, source_id: str, *, stale_after_s: float, backoff_s: Sequence[float], jitter: float = 0.2,
                 queue_size: int = 2, guard: FrameGuard | None = None, stop_event: threading.Event | None = None):
        super().__init__(source_id, live=True, queue_size=queue_size, guard=guard, stop_event=stop_event)
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        backoff_s = tuple(float(b) for b in backoff_s)
        if not backoff_s or min(backoff_s) < 0 or max(backoff_s) > MAX_RECONNECT_WAIT_S:
            raise ValueError(f"backoff_s must be a non-empty sequence of seconds within [0, {MAX_RECONNECT_WAIT_S:g}] "
                             f"(a returning camera must be tried again soon), got {backoff_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be within [0, 1), got {jitter}")
        self.stale_after_s = float(stale_after_s)
        self.backoff_s = backoff_s
        self.jitter = jitter
        self._rng = random.Random()
        self._session_emitted = False

    def _session(self) -> None:
        raise NotImplementedError

    def _mark_usable(self) -> None:
        """Called after a frame was emitted: the connection works (resets the back-off ladder)."""
        if not self._session_emitted:
            self._session_emitted = True
            self._set_state(SourceState.STREAMING, connected=True)

    def _run(self) -> None:
        failures = 0  # consecutive attempts that produced no frame
        attempt = 0
        while not self.stopping:
            if attempt:
                with self._lock:
                    self._reconnects += 1
            attempt += 1
            self._session_emitted = False
            self._beat()
            error: BaseException | str | None
            try:
                self._session()
                error = "stream ended (connection closed by the camera)"
            except StaleStream as exc:
                error = exc
                self._set_state(SourceState.STALE, connected=False, error=exc)
            except self.NETWORK_ERRORS as exc:
                error = exc
            if self.stopping:
                break
            failures = 0 if self._session_emitted else failures + 1
            state = SourceState.FAILED if failures >= len(self.backoff_s) else SourceState.RECONNECTING
            self._set_state(state, connected=False, error=error)
            if self._wait(reconnect_wait_s(failures, self.backoff_s, self.jitter, self._rng.random())):
                break
            if state is SourceState.FAILED:
                continue  # stays "failed" while retrying at the longest back-off
            self._set_state(SourceState.RECONNECTING)
