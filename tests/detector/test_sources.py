"""detector.sources without RTSP: guard, sampling, clocks, files, folders, pushes and MJPEG over real HTTP."""

from __future__ import annotations

import struct
import threading
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.sources import (
    FILE_EPOCH, FileSource, FrameGuard, ImageFolderSource, MjpegHttpSource, PushRejected, PushSource, RtspSource,
    SampleClock, SourceError, SourceState, StreamClock, exif_datetime, filename_datetime, iter_multipart,
    jpeg_size, open_source,
)

try:
    import av
except ImportError:  # the non-video sources are still tested
    av = None
needs_av = pytest.mark.skipif(av is None, reason="video sources need PyAV (pip install av)")

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=timezone.utc)
RNG = np.random.default_rng(7)


# --- builders ----------------------------------------------------------------------------------------

def scene(k: int, width_px: int = 64, height_px: int = 48) -> np.ndarray:
    """A textured picture that differs for every k (never black, never equal to another k)."""
    y, x = np.mgrid[0:height_px, 0:width_px]
    image = np.stack([(x * 4 + k * 7) % 256, (y * 5 + k * 3) % 256, ((x + y) * 3 + k * 11) % 256], axis=2)
    return image.astype(np.uint8)


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def with_exif(data: bytes, when: str, offset: str | None = None, subsec: str | None = None) -> bytes:
    """`data` (a JPEG) with an APP1 EXIF block holding DateTimeOriginal (and optional offset / sub-seconds)."""
    tags = [(0x9003, (when + "\x00").encode())]
    if offset:
        tags.append((0x9011, (offset + "\x00").encode()))
    if subsec:
        tags.append((0x9291, (subsec + "\x00").encode()))
    tags.sort()
    # TIFF header, IFD0 with one entry (ExifIFD pointer) at 8, the Exif IFD after it, values after that.
    exif_ifd_at = 8 + 2 + 12 + 4
    values_at = exif_ifd_at + 2 + 12 * len(tags) + 4
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, exif_ifd_at) + struct.pack("<I", 0)
    entries, values = b"", b""
    for tag, raw in tags:
        if len(raw) <= 4:
            entries += struct.pack("<HHI", tag, 2, len(raw)) + raw.ljust(4, b"\x00")
        else:
            entries += struct.pack("<HHII", tag, 2, len(raw), values_at + len(values))
            values += raw
    exif_ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + exif_ifd + values
    payload = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def write_video(path: Path, pts_s: list[float], width_px: int = 96, height_px: int = 64, gop: int = 10,
                images: list[np.ndarray] | None = None, lossless: bool = False) -> Path:
    """An H.264 mp4 whose frames are shown at exactly `pts_s` (variable frame rate when irregular); the
    pictures are `images`, or a different `scene` each; `lossless` makes equal pictures decode equal."""
    container = av.open(str(path), "w")
    options = {"g": str(gop), "bf": "0", "preset": "ultrafast", **({"qp": "0"} if lossless else {})}
    stream = container.add_stream("libx264", rate=25, options=options)
    stream.width, stream.height, stream.pix_fmt = width_px, height_px, "yuv420p"
    stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    for k, t in enumerate(pts_s):
        image = scene(k, width_px, height_px) if images is None else images[k]
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = int(round(t * 1000))
        frame.time_base = Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


# --- the black/frozen guard ----------------------------------------------------------------------------

NOISE = RNG.integers(0, 256, (72, 128, 3), dtype=np.uint8)
DARK_NIGHT = np.clip(RNG.normal(6, 5, (72, 128, 3)), 0, 255).astype(np.uint8)  # dark but with content


@pytest.mark.parametrize("previous, image, expected", [
    (None, np.zeros((72, 128, 3), np.uint8), "black"),
    (None, np.full((72, 128, 3), 5, np.uint8), "black"),
    (None, np.full((72, 128, 3), 128, np.uint8), "uniform"),             # decoder grey smear
    (None, np.full((72, 128, 3), 250, np.uint8), "uniform"),             # blown out / blank pattern
    (None, NOISE, None),
    (None, DARK_NIGHT, None),                                            # dark is not black when it has texture
    (NOISE, NOISE.copy(), "frozen"),                                     # byte-identical repeat
    (NOISE, np.where(np.arange(128)[None, :, None] == 3, NOISE ^ 1, NOISE).astype(np.uint8), None),  # 1 column off
    (NOISE, NOISE[:64], None),                                           # another size is another picture
    (np.zeros((72, 128, 3), np.uint8), np.zeros((72, 128, 3), np.uint8), "black"),  # refused frames are no reference
])
def test_frame_guard_table(previous, image, expected):
    guard = FrameGuard()
    if previous is not None:
        guard.check(previous)
    assert guard.check(image) == expected


def test_frame_guard_pixel_change_off_the_sampling_grid_is_not_frozen():
    guard = FrameGuard(stride_px=8)
    changed = NOISE.copy()
    changed[1, 1, 0] ^= 0xFF  # not on the strided grid: only the whole-image CRC sees it
    assert guard.check(NOISE) is None
    assert guard.check(changed) is None
    assert guard.check(changed.copy()) == "frozen"


def test_frame_guard_disabled_and_options():
    assert FrameGuard.disabled().check(np.zeros((8, 8, 3), np.uint8)) is None
    assert FrameGuard(reject_uniform=False).check(np.full((8, 8, 3), 128, np.uint8)) is None
    guard = FrameGuard(reject_frozen=False)
    assert guard.check(NOISE) is None and guard.check(NOISE) is None


# --- sampling and clocks -------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_fps, times_s, kept_s", [
    (1.0, [0.0, 0.4, 0.96, 1.04, 1.5, 2.0, 2.2], [0.0, 1.04, 2.0]),
    (2.0, [0.0, 0.3, 0.5, 0.9, 1.0, 1.2, 1.7], [0.0, 0.5, 1.0, 1.7]),
    (1.0, [0.0, 4.8, 5.0, 9.6], [0.0, 4.8, 5.0, 9.6]),          # sparse frames: each crossing keeps one
    (1.0, [10.0, 10.99991, 11.5], [10.0, 10.99991]),            # rational rounding tolerated
    (None, [0.0, 0.01, 0.02], [0.0, 0.01, 0.02]),
])
def test_sample_clock_table(sample_fps, times_s, kept_s):
    clock = SampleClock(sample_fps)
    assert [t for t in times_s if clock.offer(t)] == kept_s


@pytest.mark.parametrize("last_s, kept_s", [
    (0.1, [1.0, 2.0, 3.0, 4.0]),   # 0.9 s after the last sample: keep this keyframe, then every keyframe
    (0.7, [2.0, 3.0, 4.0]),        # only 0.3 s after: wait for the next keyframe
])
def test_sample_clock_rephase_to_keyframes(last_s, kept_s):
    clock = SampleClock(1.0)
    clock.take(last_s)             # grid 0.1, 1.1, 2.1 ... or 0.7, 1.7, ...: out of phase with keyframes
    clock.rephase(1.0)             # keyframes at whole seconds from now on
    assert [t for t in [1.0, 2.0, 3.0, 4.0] if clock.offer(t)] == kept_s


def test_sample_clock_refuses_bad_rate():
    with pytest.raises(ValueError, match="sample_fps"):
        SampleClock(0)


def test_stream_clock_removes_network_jitter_and_never_runs_ahead():
    clock = StreamClock()
    rng = np.random.default_rng(3)
    wall0 = 1_780_000_000.0
    out = []
    for k in range(250):  # 10 s at 25 fps, each packet 20..150 ms late
        pts_s = 100.0 + k * 0.04
        wall_s = wall0 + k * 0.04 + 0.02 + rng.uniform(0, 0.13)
        clock.observe(pts_s, wall_s)
        out.append((clock.ts_s(pts_s, now_s=wall_s), wall_s))
    ts = np.array([t for t, _ in out])
    assert all(t <= w for t, w in out)                       # never in the future
    assert (np.diff(ts) > 0).all()                           # strictly increasing
    steady = np.diff(ts[50:])
    assert np.allclose(steady, 0.04, atol=1e-3)              # spacing follows pts, not arrival jitter
    assert 0.015 <= out[-1][1] - ts[-1] - 0.0 <= 0.16        # close to receipt time


def test_stream_clock_reanchors_when_pts_restart():
    clock = StreamClock()
    for k in range(50):
        clock.observe(k * 0.04, 1000.0 + k * 0.04)
    last = clock.ts_s(49 * 0.04, now_s=1000.0 + 49 * 0.04)
    for k in range(100):  # the camera restarted its pts at 0, wall time goes on
        wall_s = 1002.0 + k * 0.04
        clock.observe(k * 0.04, wall_s)
        ts = clock.ts_s(k * 0.04, now_s=wall_s)
        assert ts > last
        last = ts
    assert abs(last - (1002.0 + 99 * 0.04)) < 0.01


# --- FileSource ---------------------------------------------------------------------------------------

@needs_av
@pytest.mark.parametrize("name, duration_s, frame_period_s", [
    ("parking-lot-cars.mp4", 30.16, 0.08),
    ("people-walking.mp4", 139.4, 0.1),
])
@pytest.mark.parametrize("sample_fps", [1.0, 2.0])
def test_file_source_samples_real_footage_by_presentation_time(shared_dir, name, duration_s, frame_period_s,
                                                               sample_fps):
    path = shared_dir / "footage" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    start = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
    source = FileSource(path, sample_fps=sample_fps, start_ts=start)
    frames = list(source)
    health = source.health()
    assert health.state is SourceState.ENDED and health.frames_dropped == 0 and health.last_error is None
    assert abs(len(frames) - duration_s * sample_fps) <= 1
    offsets_s = np.array([(f.ts - start).total_seconds() for f in frames])
    assert offsets_s[0] == pytest.approx(0.0, abs=1e-3)
    steps_s = np.diff(offsets_s)
    assert np.all(np.abs(steps_s - 1 / sample_fps) <= frame_period_s + 1e-3)
    # ts is the presentation time: the decoded frame number times the (constant) frame period here.
    assert np.allclose(offsets_s, [f.index * frame_period_s for f in frames], atol=2e-3)
    assert all(f.ts.tzinfo is not None and f.image.dtype == np.uint8 and f.image.shape[2] == 3 for f in frames)


@needs_av
def test_file_source_keyframe_decoding_matches_full_decoding(shared_dir):
    path = shared_dir / "footage" / "people-walking.mp4"  # keyframe every 1 s, B-frames
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    keyed = FileSource(path, sample_fps=1.0, start_ts=T0)
    keyed_frames = [(f.index, f.ts) for f in keyed]
    full = FileSource(path, sample_fps=1.0, start_ts=T0, decode_mode="all")
    full_frames = [(f.index, f.ts) for f in full]
    assert keyed.health().decode_mode == "keyframes" and full.health().decode_mode == "all"
    assert keyed_frames == full_frames


@needs_av
def test_keyframe_sampling_tolerates_live_timestamp_jitter(shared_dir):
    path = shared_dir / "footage" / "people-walking.mp4"  # a keyframe every 1.0 s
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    from detector.sources.decode import VideoDecoder

    container = av.open(str(path))
    stream = container.streams.video[0]
    jitter = iter(np.random.default_rng(5).uniform(-0.003, 0.003, 10_000))
    decoder = VideoDecoder(stream, SampleClock(1.0), lambda pts_s: 1000.0 + pts_s + next(jitter), print, "keyframes")
    kept_s = [ts_s for packet in container.demux(stream) for _, ts_s, _ in decoder.feed(packet)]
    container.close()
    assert len(kept_s) == 140  # every keyframe, though some arrive a few ms "early"
    assert np.all(np.abs(np.diff(kept_s) - 1.0) < 0.01)


@needs_av
def test_file_source_variable_frame_rate_uses_timestamps_not_counts(tmp_path):
    # 10 frames in the first second, nothing for 4 s, then 5 frames a second: index / fps would be wrong.
    pts_s = [k * 0.1 for k in range(10)] + [5.0 + k * 0.2 for k in range(10)]
    path = write_video(tmp_path / "vfr.mp4", pts_s)
    frames = list(FileSource(path, sample_fps=1.0, start_ts=T0))
    got_s = [round((f.ts - T0).total_seconds(), 3) for f in frames]
    assert got_s == [0.0, 5.0, 6.0]
    assert [f.index for f in frames] == [0, 10, 15]


@needs_av
def test_file_source_default_start_is_the_recording_time_or_the_epoch(shared_dir, tmp_path):
    path = shared_dir / "footage" / "parking-lot-cars.mp4"
    if path.is_file():
        first = FileSource(path, sample_fps=1.0).read(timeout_s=10)
        assert first.ts == datetime(2018, 4, 19, 22, 46, tzinfo=timezone.utc)  # the mp4's creation_time
    plain = write_video(tmp_path / "plain.mp4", [k * 0.1 for k in range(5)])
    source = FileSource(plain, sample_fps=1.0)
    assert source.read(timeout_s=10).ts == FILE_EPOCH
    source.stop()


@needs_av
def test_file_source_realtime_paces_output_like_a_camera(tmp_path):
    path = write_video(tmp_path / "rt.mp4", [k * 0.1 for k in range(16)])
    source = FileSource(path, sample_fps=2.0, start_ts=T0, realtime=True).start()
    arrivals = []
    for _frame in source:
        arrivals.append(time.monotonic())
    assert len(arrivals) == 4  # 0.0, 0.5, 1.0, 1.5 s of video
    assert arrivals[-1] - arrivals[0] == pytest.approx(1.5, abs=0.25)


@needs_av
def test_file_source_loop_continues_the_clock_and_speed_paces_faster(tmp_path):
    path = write_video(tmp_path / "loop.mp4", [k * 0.1 for k in range(10)])  # 1.0 s of video at 10 fps
    source = FileSource(path, sample_fps=4.0, start_ts=T0, realtime=True, loop=True, speed=2.0).start()
    frames, arrivals = [], []
    for frame in source:
        frames.append(frame)
        arrivals.append(time.monotonic())
        if len(frames) == 10:
            break
    source.stop()
    offsets = [round((f.ts - T0).total_seconds(), 2) for f in frames]
    # One pass lasts 0.94 s (the last frame at 0.9 s is shown for the muxer's 40 ms); each pass starts where the
    # previous one ended, so time never goes back, and sampling keeps its 0.25 s grid across the seams.
    assert offsets == [0.0, 0.3, 0.5, 0.8, 1.04, 1.34, 1.54, 1.84, 2.08, 2.28]
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert arrivals[-1] - arrivals[0] == pytest.approx(2.28 / 2.0, abs=0.3)  # twice as fast as the clock
    with pytest.raises(ValueError):
        FileSource(path, speed=0)


def _decode_packets(path: Path, first_packet: int = 0, corrupt: set[int] = frozenset(), mode: str = "all"):
    """{pts_s: (index, image)} from feeding the file's packets to a VideoDecoder, starting at `first_packet`
    (a reader joining mid-GOP, as after a reconnect) and flagging `corrupt` packets as damaged."""
    from detector.sources.decode import VideoDecoder

    container = av.open(str(path))
    stream = container.streams.video[0]
    rejected: list[str] = []
    decoder = VideoDecoder(stream, SampleClock(None), lambda pts_s: pts_s, rejected.append, mode,
                           first_index=first_packet)
    out = {}
    for k, packet in enumerate(container.demux(stream)):
        if k < first_packet:
            continue
        if k in corrupt:
            packet.is_corrupt = True
        for index, ts_s, image in decoder.feed(packet):
            out[round(ts_s, 3)] = (index, image)
    container.close()
    return out, rejected


@needs_av
@pytest.mark.parametrize("first_packet, corrupt, expected_first_s, gap_s", [
    (0, set(), 0.0, None),
    (10, set(), 1.0, None),                  # joined mid-GOP: nothing before the keyframe at 1.0 s
    (0, {30}, 0.0, (1.2, 2.0)),               # damaged packet: nothing until the next keyframe at 2.0 s
    (0, {60, 61}, 0.0, (2.4, 3.0)),
])
def test_decoder_emits_nothing_without_a_clean_reference(tmp_path, first_packet, corrupt, expected_first_s, gap_s):
    path = write_video(tmp_path / "gop.mp4", [k * 0.04 for k in range(100)], width_px=160, height_px=96, gop=25)
    clean, _ = _decode_packets(path)
    got, rejected = _decode_packets(path, first_packet, corrupt)
    assert min(got) == expected_first_s
    assert rejected == ["corrupt_packet"] * len(corrupt)
    if gap_s is not None:
        assert not [t for t in got if gap_s[0] <= t < gap_s[1]]
        assert gap_s[1] in got
    for ts_s, (index, image) in got.items():
        assert index == clean[ts_s][0]
        assert np.array_equal(image, clean[ts_s][1])  # bit-exact: no concealment smears


@needs_av
def test_shared_stop_event_stops_every_source(tmp_path):
    path = write_video(tmp_path / "ten_s.mp4", [k * 0.1 for k in range(100)])
    shutdown = threading.Event()  # one event for a whole service, as in Frigate
    sources = [FileSource(path, sample_fps=2.0, realtime=True, stop_event=shutdown, source_id=f"cam{i}").start()
               for i in range(2)]
    assert all(source.read(timeout_s=5) is not None for source in sources)
    t0 = time.monotonic()
    shutdown.set()
    leftovers = [list(source) for source in sources]
    assert time.monotonic() - t0 < 1.0
    assert all(len(frames) <= 1 for frames in leftovers)
    deadline = time.monotonic() + 2
    while any(s.health().state is not SourceState.ENDED for s in sources) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(s.health().state is SourceState.ENDED and not s.health().connected for s in sources)


@needs_av
def test_file_source_missing_or_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        FileSource(tmp_path / "nope.mp4").start()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="not a readable video"):
        FileSource(bad).start()


@needs_av
def test_file_source_stop_mid_file_returns_promptly(shared_dir):
    path = shared_dir / "footage" / "people-walking.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    source = FileSource(path, sample_fps=5.0).start()
    assert source.read(timeout_s=10) is not None
    t0 = time.monotonic()
    source.stop()
    assert time.monotonic() - t0 < 1.0
    assert source.health().state is SourceState.ENDED


# --- ImageFolderSource --------------------------------------------------------------------------------

def test_image_folder_source_skips_corrupt_files_and_dates_stills(tmp_path):
    good = [jpeg(scene(k)) for k in range(6)]
    (tmp_path / "img1_20260601_080000.jpg").write_bytes(good[0])
    (tmp_path / "img2_20260601_080010.jpg").write_bytes(good[1][: len(good[1]) // 2])        # truncated
    (tmp_path / "img3_20260601_080020.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage\xff\xd9")  # corrupt
    (tmp_path / "img4.jpg").write_bytes(with_exif(good[2], "2026:06:01 10:00:30", offset="+02:00", subsec="25"))
    (tmp_path / "img5_20260601_075900.jpg").write_bytes(good[3])                              # goes backwards
    (tmp_path / "img10_20260601_080100.jpg").write_bytes(good[5])                             # natural order: last
    (tmp_path / "img6_20260601_080040.jpg").write_bytes(good[4])
    (tmp_path / "img7_20260601_080050.jpg").write_bytes(good[4])                              # duplicate: frozen
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path, ts_from="exif|filename")
    frames = list(source)
    health = source.health()
    assert [f.ts for f in frames] == [T0, T0 + timedelta(seconds=30, microseconds=250000),
                                      T0 + timedelta(seconds=40), T0 + timedelta(seconds=60)]
    assert [f.index for f in frames] == [0, 3, 5, 7]
    assert health.rejected_reasons == {"truncated": 1, "corrupt": 1, "out_of_order": 1, "frozen": 1}
    assert health.frames_in == 8 and health.state is SourceState.ENDED and health.last_error


def test_image_folder_source_frozen_duplicates_and_sampling(tmp_path):
    for k in range(10):  # one still every 0.5 s, the 4th a copy of the 3rd
        (tmp_path / f"cam-{1780300800 + k // 2}{(k % 2) * 500:03d}.jpg").write_bytes(jpeg(scene(k - (k == 3))))
    frames = list(ImageFolderSource(tmp_path, sample_fps=None, ts_from="filename"))
    assert len(frames) == 9
    sampled = list(ImageFolderSource(tmp_path, sample_fps=1.0, ts_from="filename"))
    assert [f.ts.timestamp() for f in sampled] == [1780300800.0 + k for k in range(5)]


def test_image_folder_source_mtime_and_errors(tmp_path):
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", scene(1))[1].tobytes())
    frames = list(ImageFolderSource(tmp_path, ts_from="mtime"))
    assert len(frames) == 1 and frames[0].ts.tzinfo is not None
    with pytest.raises(ValueError, match="ts_from"):
        ImageFolderSource(tmp_path, ts_from="exif|gps")
    with pytest.raises(SourceError, match="no such folder"):
        ImageFolderSource(tmp_path / "missing").start()


@pytest.mark.parametrize("name, expected", [
    ("IMG_20260601_081500.jpg", datetime(2026, 6, 1, 8, 15, tzinfo=timezone.utc)),
    ("cam1-2026-06-01T08-15-00.123.jpg", datetime(2026, 6, 1, 8, 15, 0, 123000, tzinfo=timezone.utc)),
    ("20260601081500123.jpg", datetime(2026, 6, 1, 8, 15, 0, 123000, tzinfo=timezone.utc)),
    ("snap_1780301700.jpg", datetime(2026, 6, 1, 8, 15, tzinfo=timezone.utc)),
    ("snap_1780301700250.jpg", datetime(2026, 6, 1, 8, 15, 0, 250000, tzinfo=timezone.utc)),
    ("IMG_0042.jpg", None),
    ("20261399_250000.jpg", None),  # not a date
])
def test_filename_datetime_table(name, expected):
    assert filename_datetime(name) == expected


def test_exif_datetime_reads_original_time_offset_and_subseconds():
    data = with_exif(jpeg(scene(0)), "2026:06:01 16:15:00", offset="+08:00", subsec="5")
    assert exif_datetime(data) == datetime(2026, 6, 1, 8, 15, 0, 500000, tzinfo=timezone.utc)
    local = timezone(timedelta(hours=8))
    assert exif_datetime(with_exif(jpeg(scene(0)), "2026:06:01 16:15:00"), tz=local) == datetime(
        2026, 6, 1, 8, 15, tzinfo=timezone.utc)
    assert exif_datetime(jpeg(scene(0))) is None
    assert exif_datetime(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00") is None  # malformed: None, no error


# --- PushSource ---------------------------------------------------------------------------------------

def _bomb_header() -> bytes:
    """A tiny JPEG header declaring 60000 x 60000 pixels."""
    data = bytearray(jpeg(scene(0)))
    i = 2
    while data[i + 1] != 0xC0:
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


@pytest.mark.parametrize("payload, ts_offset_s, reason", [
    (lambda: jpeg(scene(5))[:-200], 1, "truncated"),
    (lambda: b"\xff\xd8\xff\xe0" + bytes(RNG.integers(0, 256, 500, dtype=np.uint8)) + b"\xff\xd9", 1, "corrupt"),
    (lambda: cv2.imencode(".png", scene(5))[1].tobytes(), 1, "not_jpeg"),
    (lambda: b"GIF89a....", 1, "not_jpeg"),
    (lambda: jpeg(scene(5)) + b"\x00" * 300_000, 1, "oversized"),
    (_bomb_header, 1, "oversized"),
    (lambda: jpeg(scene(5)), -1, "out_of_order"),
    (lambda: jpeg(scene(5)), 0, "out_of_order"),          # a retried request: same timestamp
    (lambda: jpeg(scene(0)), 1, "frozen"),                 # the same picture again
    (lambda: jpeg(np.zeros((48, 64, 3), np.uint8)), 1, "black"),
])
def test_push_source_refuses_with_a_reason(payload, ts_offset_s, reason):
    source = PushSource("gate-3", max_bytes=200_000).start()
    accepted = source.push(jpeg(scene(0)), T0)
    assert accepted is not None and accepted.ts == T0
    with pytest.raises(PushRejected) as info:
        source.push(payload(), T0 + timedelta(seconds=ts_offset_s))
    assert info.value.reason == reason
    assert "\n" not in str(info.value) and str(info.value)
    health = source.health()
    assert health.rejected_reasons == {reason: 1} and health.frames_sampled == 1
    assert health.last_error == str(info.value)
    # The source still works, and the refused frame did not move the clock.
    assert source.push(jpeg(scene(9)), T0 + timedelta(seconds=2)).ts == T0 + timedelta(seconds=2)


def test_push_source_naive_timestamp_refused():
    source = PushSource("gate-3").start()
    with pytest.raises(PushRejected) as info:
        source.push(jpeg(scene(1)), datetime(2026, 6, 1, 8, 0))
    assert info.value.reason == "bad_ts"


def test_push_source_frames_come_out_in_order_and_drop_oldest_when_full():
    source = PushSource("gate-3", max_queue=3).start()
    assert source.health().state is SourceState.CONNECTING
    for k in range(8):
        source.push(jpeg(scene(k)), T0 + timedelta(seconds=k))
    out = [source.read(timeout_s=0.1) for _ in range(4)]
    assert [f.ts for f in out[:3]] == [T0 + timedelta(seconds=k) for k in (5, 6, 7)] and out[3] is None
    health = source.health()
    assert health.frames_dropped == 5 and health.frames_sampled == 8 and health.state is SourceState.STREAMING
    assert health.last_frame_ts == T0 + timedelta(seconds=7)
    source.stop()
    assert source.health().state is SourceState.ENDED
    with pytest.raises(PushRejected, match="stopped"):
        source.push(jpeg(scene(20)), T0 + timedelta(seconds=20))


def test_push_source_sampling_and_staleness():
    source = PushSource("gate-3", sample_fps=1.0, stale_after_s=0.2).start()
    kept = [source.push(jpeg(scene(k)), T0 + timedelta(seconds=k * 0.25)) for k in range(9)]
    assert [f.ts for f in kept if f is not None] == [T0 + timedelta(seconds=s) for s in (0, 1, 2)]
    time.sleep(0.3)
    assert source.health().state is SourceState.STALE


def test_jpeg_size_reads_the_header_only():
    assert jpeg_size(jpeg(np.zeros((30, 40, 3), np.uint8) + 90)) == (40, 30)
    assert jpeg_size(b"\xff\xd8\xff") is None


# --- MJPEG over a real HTTP server --------------------------------------------------------------------

@pytest.mark.parametrize("chunk_bytes", [1, 7, 65536])
@pytest.mark.parametrize("boundary_param, delimiter", [("frame", b"--frame"), ("--frame", b"--frame"),
                                                       ("frame", b"----frame")])
def test_iter_multipart_split_reads_and_boundary_styles(chunk_bytes, boundary_param, delimiter):
    parts = [jpeg(scene(k)) for k in range(3)]
    stream = b"preamble\r\n"
    for k, body in enumerate(parts):
        length = f"Content-Length: {len(body)}\r\n" if k != 1 else ""  # one part without a length
        stream += delimiter + b"\r\nContent-Type: image/jpeg\r\n" + length.encode() + b"\r\n" + body + b"\r\n"
    stream += delimiter + b"--\r\n"
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = stream[pos:pos + min(n, chunk_bytes)]
        pos += len(chunk)
        return chunk

    got = list(iter_multipart(read, boundary_param))
    assert [body for _, body in got] == parts
    assert got[0][0]["content-type"] == "image/jpeg"


class _MjpegCamera:
    """A local HTTP server streaming multipart MJPEG; the first connection carries bad parts, then closes."""

    def __init__(self, first_parts: list[bytes], later_parts: list[bytes], with_length: bool, fps: float = 40.0):
        camera = self
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                camera.connections += 1
                parts = first_parts if camera.connections == 1 else later_parts
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=camframe")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    for body in parts:
                        head = b"--camframe\r\nContent-Type: image/jpeg\r\n"
                        if with_length:
                            head += f"Content-Length: {len(body)}\r\n".encode()
                        self.wfile.write(head + b"\r\n" + body + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1 / fps)
                    if camera.connections > 1:
                        time.sleep(3)  # later connections stay open and silent
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://user:secret@127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("with_length", [True, False])
def test_mjpeg_source_skips_bad_parts_and_reconnects(with_length):
    good = [jpeg(scene(k)) for k in range(12)]
    corrupt = b"\xff\xd8\xff\xe0" + bytes(RNG.integers(0, 256, 800, dtype=np.uint8)) + b"\xff\xd9"
    first = [good[0], good[1], corrupt, good[2], good[3][:-300], good[4], good[4],
             jpeg(np.zeros((48, 64, 3), np.uint8)), good[5]]
    later = good[6:10]  # without Content-Length a part ends when the next boundary arrives
    with _MjpegCamera(first, later, with_length) as camera:
        source = MjpegHttpSource(camera.url, sample_fps=None, backoff_s=(0.1,), queue_size=64).start()
        frames = []
        deadline = time.monotonic() + 20
        while len(frames) < 8 and time.monotonic() < deadline:
            frame = source.read(timeout_s=0.5)
            if frame is not None:
                frames.append(frame)
        health = source.health()
        t0 = time.monotonic()
        source.stop()
        assert time.monotonic() - t0 < 1.0  # the blocked read is interrupted, not waited out
    assert len(frames) == 8
    assert health.rejected_reasons == {"corrupt": 1, "truncated": 1, "frozen": 1, "black": 1}
    assert health.reconnects >= 1 and health.frames_in >= 12
    assert "secret" not in health.source_id and health.source_id.startswith("http://127.0.0.1:")
    for previous, frame in zip(frames, frames[1:]):
        assert frame.ts > previous.ts and not np.array_equal(frame.image, previous.image)
    expected = [cv2.imdecode(np.frombuffer(good[k], np.uint8), cv2.IMREAD_COLOR) for k in (0, 1, 2, 4, 5, 6, 7, 8)]
    assert all(np.array_equal(f.image, e) for f, e in zip(frames, expected))


def test_mjpeg_source_not_mjpeg_and_unreachable():
    class Plain(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html></html>")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = MjpegHttpSource(f"http://127.0.0.1:{server.server_address[1]}/", backoff_s=(0.05, 0.05)).start()
        deadline = time.monotonic() + 10
        while source.health().state is not SourceState.FAILED and time.monotonic() < deadline:
            time.sleep(0.05)
        health = source.health()
        source.stop()
    finally:
        server.shutdown()
        server.server_close()
    assert health.state is SourceState.FAILED
    assert "not an MJPEG stream (Content-Type: text/html)" in health.last_error


# --- open_source ----------------------------------------------------------------------------------------

@needs_av
def test_open_source_chooses_by_scheme(tmp_path, shared_dir):
    video = write_video(tmp_path / "v.mp4", [0.0, 0.1])
    assert isinstance(open_source("rtsp://admin:pw@10.0.0.5/s1"), RtspSource)
    assert open_source("rtsp://admin:pw@10.0.0.5/s1").source_id == "rtsp://10.0.0.5/s1"
    assert isinstance(open_source("http://10.0.0.7/video.mjpg", stale_after_s=3), MjpegHttpSource)
    assert isinstance(open_source("push:gate-3"), PushSource)
    assert open_source("push:gate-3").source_id == "gate-3"
    assert isinstance(open_source(tmp_path), ImageFolderSource)
    assert isinstance(open_source(video), FileSource)
    assert isinstance(open_source(f"file://{video}", realtime=True), FileSource)
    with pytest.raises(SourceError, match="unsupported source scheme 'srt'"):
        open_source("srt://admin:pw@10.0.0.5:9000")
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(SourceError, match="push: needs a camera id"):
        open_source("push:")
    with pytest.raises(TypeError):
        open_source("rtsp://10.0.0.5/s1", ts_from="exif")  # options belong to the chosen class


def test_health_to_dict_is_json_ready():
    import json

    source = PushSource("gate-3").start()
    source.push(jpeg(scene(1)), T0)
    data = source.health().to_dict()
    assert json.loads(json.dumps(data))["state"] == "streaming"
    assert data["last_frame_ts"] == T0.isoformat()
