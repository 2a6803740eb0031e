"""`MjpegHttpSource`: a camera serving HTTP multipart MJPEG (``multipart/x-mixed-replace``)."""

from __future__ import annotations

import base64
import http.client
import socket
import threading
import time
from typing import Callable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from detector.errors import ImageReadError
from detector.imageio import decode_image
from detector.sources.base import DEFAULT_BACKOFF_S, LiveSourceBase, SampleClock, StaleStream, redact_url
from detector.sources.guard import FrameGuard
from detector.types import Frame

__all__ = ["MjpegHttpSource", "MjpegProtocolError", "iter_multipart", "image_error_reason"]


class MjpegProtocolError(ConnectionError):
    """The server's multipart stream is malformed (no boundary, oversized part, endless headers)."""


def image_error_reason(error: ImageReadError) -> str:
    """The health counter name for an image that failed to decode: "truncated", "empty", "oversized" or
    "corrupt"."""
    message = str(error)
    if "exceeds the limit" in message:
        return "oversized"
    if "truncated" in message:
        return "truncated"
    if "empty" in message:
        return "empty"
    return "corrupt"


def iter_multipart(read: Callable[[int], bytes], boundary: str, max_part_bytes: int = 8_000_000,
                   chunk_bytes: int = 65536) -> Iterator[tuple[dict[str, str], bytes]]:
    """Split a multipart byte stream into (headers, body) parts as the bytes arrive.

    Parts with a ``Content-Length`` are cut by length (robust against a boundary string inside the data);
    parts without one end at the next boundary. Tolerates boundaries declared with or without their
    leading ``--`` (cameras disagree) and any preamble before the first boundary.

    Args:
        read: Returns up to n bytes, b"" at the end of the stream (e.g. ``HTTPResponse.read1``).
        boundary: The ``boundary`` parameter of the Content-Type header.
        max_part_bytes: A longer part raises `MjpegProtocolError` instead of growing memory without bound.

    Example:
        >>> import io
        >>> data = (b"--b\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: 3\\r\\n\\r\\nabc\\r\\n"
        ...         b"--b\\r\\n\\r\\nxyz\\r\\n--b--")
        >>> [body for _, body in iter_multipart(io.BytesIO(data).read, "b")]
        [b'abc', b'xyz']
    """
    token = boundary.strip().strip('"').lstrip("-").encode("latin-1") or boundary.encode("latin-1")
    delimiter = b"--" + token
    buf = bytearray()

    def fill() -> bool:
        chunk = read(chunk_bytes)
        if not chunk:
            return False
        buf.extend(chunk)
        return True

    while True:
        idx = buf.find(delimiter)
        while idx < 0:
            if len(buf) > max_part_bytes:
                raise MjpegProtocolError(f"no multipart boundary within {max_part_bytes} bytes")
            if not fill():
                return
            idx = buf.find(delimiter)
        del buf[: idx + len(delimiter)]
        while len(buf) < 2:
            if not fill():
                return
        if buf[:2] == b"--":
            return  # the closing boundary
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > 65536:
                raise MjpegProtocolError("multipart part headers longer than 64 KiB")
            if not fill():
                return
            end = buf.find(b"\r\n\r\n")
        headers = {}
        for line in bytes(buf[:end]).decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        del buf[: end + 4]
        length_text = headers.get("content-length", "")
        if length_text.isdigit():
            length = int(length_text)
            if length > max_part_bytes:
                raise MjpegProtocolError(f"multipart part of {length} bytes exceeds {max_part_bytes}")
            while len(buf) < length:
                if not fill():
                    return  # the stream ended inside a part: nothing whole to deliver
            body = bytes(buf[:length])
            del buf[:length]
        else:
            idx = buf.find(delimiter)
            while idx < 0:
                if len(buf) > max_part_bytes:
                    raise MjpegProtocolError(f"multipart part longer than {max_part_bytes} bytes")
                if not fill():
                    # The server closed after this part: it may be whole (the decoder checks), so deliver it.
                    body = bytes(buf).rstrip(b"\r\n")
                    if body:
                        yield headers, body
                    return
                idx = buf.find(delimiter)
            body = bytes(buf[:idx]).rstrip(b"-")
            if body.endswith(b"\r\n"):
                body = body[:-2]
            del buf[:idx]
        yield headers, body


class MjpegHttpSource(LiveSourceBase):
    """A live HTTP MJPEG camera: each multipart part is one JPEG.

    Parts are split as they stream in (`iter_multipart`); only parts whose receipt time reaches the next
    sample time are decoded, so unsampled parts cost almost nothing. Each decoded part goes through
    `detector.imageio.decode_image`, so corrupt and truncated JPEGs are refused and counted, never emitted
    half grey. ``ts`` is the wall-clock time of receipt (MJPEG carries no timestamps). Reconnects, stale
    watchdog, drop-oldest output and health behave as in `RtspSource`.

    Args:
        url: ``http(s)://[user:password@]host[:port]/path`` (Basic authentication from the URL).
        sample_fps: Samples per second; None keeps every part.
        open_timeout_s: Limit for connecting and receiving the response headers.
        read_timeout_s: Limit for one blocking read (a silent camera is "stale" after it).
        stale_after_s: No usable frame for this long (plus one sample interval) → "stale", reconnect.
        backoff_s: Waits between failed attempts (the last repeats), scaled by ±`jitter`; each at most
            `MAX_RECONNECT_WAIT_S` (5 s), so a camera that comes back is streaming again within about
            that plus `open_timeout_s` (issue 17: recovery ≤ 10 s, however long the outage was).
        source_id: Id on each frame; default the URL without credentials.
        max_part_bytes: Larger parts are a protocol error (reconnect), bounding memory.
        queue_size: Output queue capacity; when full the oldest frame is dropped (counted).
        jitter: Relative random spread of back-off waits.
        guard: Black/frozen frame guard (default `FrameGuard()`).
        stop_event: A service-wide stop event.

    Example:
        >>> with MjpegHttpSource("http://10.0.0.7/video.mjpg", sample_fps=1.0) as source:  # doctest: +SKIP
        ...     frame = source.read(timeout_s=5)
    """

    kind = "mjpeg"

    def __init__(self, url: str, sample_fps: float | None = 1.0, open_timeout_s: float = 5.0,
                 read_timeout_s: float = 5.0, stale_after_s: float = 5.0,
                 backoff_s: Sequence[float] = DEFAULT_BACKOFF_S, *, source_id: str | None = None,
                 max_part_bytes: int = 8_000_000, queue_size: int = 2, jitter: float = 0.2,
                 guard: FrameGuard | None = None, stop_event: threading.Event | None = None):
        super().__init__(source_id or redact_url(url), stale_after_s=stale_after_s, backoff_s=backoff_s,
                         jitter=jitter, queue_size=queue_size, guard=guard, stop_event=stop_event)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact_url(url)}")
        self.url = url
        self.sample_fps = sample_fps
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.max_part_bytes = int(max_part_bytes)
        self._clock = SampleClock(sample_fps)
        self._index = 0
        self._last_ts_s = float("-inf")
        self._sock: socket.socket | None = None
        self.NETWORK_ERRORS = (OSError, EOFError, TimeoutError, http.client.HTTPException)

    def _connect(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        parts = urlsplit(self.url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=self.open_timeout_s)
        headers = {"User-Agent": "streetwatch", "Accept": "multipart/x-mixed-replace, */*"}
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(secret).decode("ascii")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        response = None
        try:
            conn.request("GET", target, headers=headers)
            # Keep the socket: once the response owns the connection, `conn.sock` is None, and `stop()` must be
            # able to shut it down to wake a blocked read.
            self._sock = conn.sock
            if self.stopping:
                self._interrupt()
            response = conn.getresponse()
            if response.status != 200:
                raise ConnectionError(f"HTTP {response.status} {response.reason}")
            content_type = response.getheader("Content-Type", "")
            media_type, _, params = content_type.partition(";")
            if not media_type.strip().lower().startswith("multipart/"):
                raise MjpegProtocolError(f"not an MJPEG stream (Content-Type: {content_type or 'none'})")
            boundary = ""
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key.lower() == "boundary":
                    boundary = value.strip().strip('"')
            if not boundary:
                raise MjpegProtocolError(f"no boundary in Content-Type: {content_type}")
        except BaseException:
            self._sock = None
            if response is not None:
                response.close()
            conn.close()
            raise
        return conn, response, boundary

    def _session(self) -> None:
        conn, response, boundary = self._connect()
        try:
            if self.stopping:
                return
            if self._sock is not None:
                self._sock.settimeout(self.read_timeout_s)
            self._set_connected(True)
            last_usable_s = time.monotonic()
            try:
                for _headers, body in iter_multipart(response.read1, boundary, self.max_part_bytes):
                    now_s = time.monotonic()
                    self._beat()
                    if self.stopping:
                        return
                    self._count_in()
                    index, self._index = self._index, self._index + 1
                    ts_s = max(time.time(), self._last_ts_s + 1e-6)
                    if self._clock.due(ts_s):
                        try:
                            image = decode_image(body, name="MJPEG part")
                        except ImageReadError as exc:
                            self._reject(image_error_reason(exc))
                            self._note_error(exc)
                        else:
                            if self._emit(image, Frame.utc_from_s(ts_s), index):
                                self._clock.take(ts_s)
                                self._last_ts_s = ts_s
                                self._mark_usable()
                                last_usable_s = now_s
                    limit_s = self.stale_after_s + (self._clock.interval_s or 0.0)
                    if now_s - last_usable_s > limit_s:
                        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.health().rejected_reasons.items()))
                        raise StaleStream(f"no usable frame for {limit_s:.0f} s (rejected so far: {reasons or 'none'})")
            except TimeoutError:  # socket.timeout is TimeoutError
                raise StaleStream(f"no data from the camera for {self.read_timeout_s:g} s") from None
        finally:
            self._sock = None
            response.close()
            conn.close()

    def _interrupt(self) -> None:
        sock = self._sock
        if sock is not None:
            try:
                # Wakes a reader blocked in recv() at once, instead of after read_timeout_s.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
