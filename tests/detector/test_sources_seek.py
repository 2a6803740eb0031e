"""Reading chosen moments of a real H.264 file by seeking (detector.sources.seek)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector.sources.base import SourceError
from detector.sources.seek import VideoSeekReader

av = pytest.importorskip("av")
FPS, N_FRAMES, GOP = 25, 250, 25


def frame_code(index: int) -> np.ndarray:
    """A 64x48 picture whose 8 bits of `index` are black/white blocks (survive H.264 compression)."""
    image = np.zeros((48, 64, 3), np.uint8)
    for bit in range(8):
        if index >> bit & 1:
            image[:, bit * 8:(bit + 1) * 8] = 255
    return image


def read_code(image: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if image[24, bit * 8 + 4].mean() > 127)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seek") / "coded.mp4"
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.options = {"g": str(GOP), "bf": "0", "crf": "10"}
    for i in range(N_FRAMES):
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame_code(i), format="bgr24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def test_probe(video):
    with VideoSeekReader(video) as reader:
        info = reader.info
    assert (info.width_px, info.height_px, info.fps, info.n_frames, info.codec) == (64, 48, 25.0, N_FRAMES, "h264")
    assert info.duration_s == pytest.approx(10.0, abs=0.05)


@pytest.mark.parametrize("times_s, expected", [
    ([0.0], [0]),
    ([3.0, 3.04, 7.5, 9.96], [75, 76, 187, 249]),
    ([9.96, 0.0, 5.0], [0, 125, 249]),  # any order in, time order out
    ([4.0, 4.001, 4.01], [100]),  # moments on one picture give it once
    ([2.0, 12.0], [50]),  # past the end: nothing
])
def test_read_at_gives_the_picture_shown_then(video, times_s, expected):
    with VideoSeekReader(video) as reader:
        frames = list(reader.read_at(times_s))
    assert [f.index for f in frames] == expected
    assert [read_code(f.image) for f in frames] == [i % 256 for i in expected]  # the picture itself, decoded
    assert all(f.t_s == pytest.approx(f.index / FPS) for f in frames)


def test_far_apart_moments_are_reached_by_seeking_not_by_decoding_everything(video):
    with VideoSeekReader(video) as reader:
        frames = list(reader.read_at([1.0, 4.0, 7.0, 9.0]))
        stats = reader.stats
    assert [f.index for f in frames] == [25, 100, 175, 225]
    assert stats.seeks >= 2 and stats.fallback == ""  # 4.0 and 7.0 (1.0 and 9.0 are within a GOP-ish gap)
    assert stats.decoded < 2 * GOP * len(frames) < N_FRAMES  # at most a GOP per wanted frame


@pytest.mark.parametrize("name, content, message", [
    ("missing.mp4", None, "no such file"),
    ("text.mp4", b"not a video at all", "not a readable video"),
])
def test_bad_files_are_named(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        VideoSeekReader(path)
