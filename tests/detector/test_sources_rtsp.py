"""RtspSource against a real RTSP server (GStreamer's, in a subprocess) serving the real footage.

No network mocks: the camera is killed, paused and restarted for real. Skips with the apt packages to
install when GStreamer's RTSP server is unavailable (scripts/install_system_deps.sh).
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from detector.sources import RtspSource, SourceState
from detector.types import Frame
from tests.rtsp_server import free_port, rtsp_server_fixture  # noqa: F401 - the `rtsp_server` fixture

pytest.importorskip("av", reason="RtspSource needs PyAV (pip install av)")


@pytest.fixture
def footage(shared_dir) -> Callable[[str], Path]:
    def get(name: str) -> Path:
        path = shared_dir / "footage" / name
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        return path

    return get


def read_frames(source: RtspSource, count: int, timeout_s: float, after: datetime | None = None) -> list[Frame]:
    """`count` frames (stamped after `after`), or fewer when `timeout_s` passes; the consumer never raises."""
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout_s
    while len(frames) < count and time.monotonic() < deadline:
        frame = source.read(timeout_s=0.5)
        if frame is not None and (after is None or frame.ts > after):
            frames.append(frame)
    return frames


def wait_for(source: RtspSource, predicate: Callable, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate(source.health()):
            return True
        source.read(timeout_s=0.1)  # keep consuming, as a real pipeline would
    return False


def assert_clean(frames: list[Frame]) -> None:
    """Every frame has content, none repeats the previous one byte for byte, time only moves forward."""
    for previous, frame in zip([None, *frames], frames):
        sample = frame.image[::4, ::4].astype(np.float32)
        assert not (sample.mean() < 8 and sample.std() < 3), f"black frame {frame.index}"
        assert sample.std() >= 3, f"uniform frame {frame.index}"
        if previous is not None:
            assert not np.array_equal(frame.image, previous.image), f"frame {frame.index} repeats {previous.index}"
            assert frame.ts > previous.ts


def states(health) -> list[SourceState]:
    return [state for state, _ in health.history]


def test_rtsp_source_survives_a_camera_restart(rtsp_server, footage):
    server = rtsp_server(footage("parking-lot-cars.mp4"))
    source = RtspSource(server.url, sample_fps=2.0, open_timeout_s=2, read_timeout_s=2, stale_after_s=3,
                        backoff_s=(0.2, 0.5, 1.0)).start()
    try:
        before = read_frames(source, 4, timeout_s=15)
        assert len(before) == 4 and source.health().state is SourceState.STREAMING
        assert before[0].width_px == 768 and before[0].height_px == 432
        now = datetime.now(timezone.utc)
        assert all(abs((now - f.ts).total_seconds()) < 5 for f in before)  # wall-clock stamps

        server.kill()  # power cut: no TEARDOWN, the socket just dies
        assert wait_for(source, lambda h: h.state in (SourceState.RECONNECTING, SourceState.FAILED), 10)
        lost = source.health()
        assert not lost.connected and lost.last_error and "\n" not in lost.last_error
        time.sleep(1.0)  # the camera stays off for a while
        server.start()   # and comes back on the same port

        after = read_frames(source, 4, timeout_s=20, after=before[-1].ts)
        health = source.health()
    finally:
        t0 = time.monotonic()
        source.stop()
        assert time.monotonic() - t0 < 3.0
    assert len(after) == 4
    assert health.state is SourceState.STREAMING and health.connected and health.reconnects >= 1
    seen = states(health)
    assert SourceState.RECONNECTING in seen and seen[-1] is SourceState.STREAMING
    assert seen.index(SourceState.RECONNECTING) < len(seen) - 1
    assert_clean(before + after)
    assert after[0].index > before[-1].index  # indices continue across the reconnect


def test_rtsp_source_hung_camera_goes_stale_and_recovers(rtsp_server, footage):
    server = rtsp_server(footage("people-walking.mp4"))  # keyframe every second: keyframe-only decoding
    source = RtspSource(server.url, sample_fps=1.0, open_timeout_s=1, read_timeout_s=1, stale_after_s=1.5,
                        backoff_s=(0.2, 0.5)).start()
    try:
        before = read_frames(source, 4, timeout_s=15)
        assert len(before) == 4
        assert source.health().decode_mode == "keyframes"
        server.pause()  # connection open, no data: only the watchdog can notice
        assert wait_for(source, lambda h: SourceState.STALE in states(h), 8)
        stale = source.health()
        assert "no data" in stale.last_error and not stale.connected
        time.sleep(1.0)
        server.resume()
        after = read_frames(source, 2, timeout_s=20, after=before[-1].ts)
        health = source.health()
    finally:
        source.stop()
    assert len(after) == 2 and health.state is SourceState.STREAMING and health.reconnects >= 1
    seen = states(health)
    assert seen.index(SourceState.STALE) < seen.index(SourceState.RECONNECTING, seen.index(SourceState.STALE))
    assert_clean(before + after)
    steps_s = np.diff([f.ts.timestamp() for f in before])
    assert np.all(np.abs(steps_s - 1.0) < 0.15)  # 1 fps from pts, not from arrival jitter


def test_rtsp_source_frozen_camera_goes_stale(rtsp_server, tmp_path):
    from tests.detector.test_sources import scene, write_video

    # A camera stuck on one picture: every decoded frame is byte-identical to the first.
    frozen = write_video(tmp_path / "frozen.mp4", [k * 0.1 for k in range(100)], width_px=320, height_px=240,
                         gop=10, images=[scene(0, 320, 240)] * 100, lossless=True)
    server = rtsp_server(frozen)
    source = RtspSource(server.url, sample_fps=2.0, open_timeout_s=2, read_timeout_s=2, stale_after_s=1.0,
                        backoff_s=(0.2,)).start()
    try:
        first = source.read(timeout_s=10)
        assert first is not None
        assert wait_for(source, lambda h: SourceState.STALE in states(h), 10)
        health = source.health()
    finally:
        source.stop()
    assert "no usable frame" in health.last_error and "frozen" in health.last_error
    assert health.rejected_reasons.get("frozen", 0) >= 3 and health.frames_sampled == 1


@pytest.mark.parametrize("url", [
    "rtsp://admin:hunter2@127.0.0.1:{port}/cam",  # nothing listens: refused at once
    "rtsp://admin:hunter2@camera.invalid/cam",    # no such host
])
def test_rtsp_source_unreachable_camera_fails_without_raising(url):
    source = RtspSource(url.format(port=free_port()), open_timeout_s=1, read_timeout_s=1,
                        backoff_s=(0.05, 0.1, 0.1)).start()
    try:
        assert wait_for(source, lambda h: h.state is SourceState.FAILED, 15)
        health = source.health()
        assert source.read(timeout_s=0.1) is None
    finally:
        t0 = time.monotonic()
        source.stop()
        stop_s = time.monotonic() - t0
    assert stop_s < 1.5
    assert not health.connected and health.reconnects >= 2 and health.frames_sampled == 0
    assert health.last_error and "\n" not in health.last_error and "hunter2" not in health.last_error
    assert "hunter2" not in health.source_id
    assert SourceState.RECONNECTING in states(health)


def test_rtsp_source_stop_while_blocked_in_connect_returns_promptly():
    # A camera that accepts the TCP connection and never answers: the reader is stuck inside FFmpeg.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        source = RtspSource(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam", open_timeout_s=2,
                            read_timeout_s=2).start()
        time.sleep(0.3)
        assert source.health().state is SourceState.CONNECTING
        t0 = time.monotonic()
        source.stop()
        assert time.monotonic() - t0 < 1.5
        health = source.health()
        assert health.state is SourceState.ENDED and not health.connected
        # The worker leaves by itself once FFmpeg's open timeout fires, and reports nothing more.
        deadline = time.monotonic() + 5
        while any(t.name == f"source:{source.source_id}" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "reader thread outlived its open timeout"
            time.sleep(0.1)
        assert source.health().state is SourceState.ENDED and source.read(timeout_s=0.1) is None


def test_rtsp_source_drops_oldest_for_a_slow_consumer(rtsp_server, footage):
    server = rtsp_server(footage("people-walking.mp4"))
    source = RtspSource(server.url, sample_fps=5.0, queue_size=2, open_timeout_s=2, read_timeout_s=2).start()
    try:
        assert source.read(timeout_s=15) is not None
        latencies_s = []
        consumed = 1
        for _ in range(4):
            time.sleep(1.0)  # a consumer (detector) far slower than 5 fps
            frame = source.read(timeout_s=5)
            assert frame is not None
            consumed += 1
            latencies_s.append((datetime.now(timezone.utc) - frame.ts).total_seconds())
        health = source.health()
    finally:
        source.stop()
    assert health.frames_dropped >= 8
    assert health.frames_sampled - health.frames_dropped - consumed <= 2  # only the queue holds the rest
    assert max(latencies_s) < 1.0, latencies_s  # latency stays bounded instead of growing by ~0.8 s a read
