"""What decoding costs, counted by `VideoDecoder` into a `DecodeTiming`: only sampled pictures are converted to
BGR, keyframe decoding decodes only the sampled keyframes, and every sample keeps its own pts-derived time."""

from __future__ import annotations

import pytest

from detector.sources.base import SampleClock
from detector.sources.decode import DecodeTiming, DecodeTotals, VideoDecoder
from tests.detector.test_sources import write_video

FPS = 25
SECONDS = 4


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    # 4 s at 25 fps, a keyframe every second (as street cameras send), no B-frames.
    path = tmp_path_factory.mktemp("decode") / "gop1s.mp4"
    return write_video(path, [k / FPS for k in range(FPS * SECONDS)], gop=FPS)


def decode(path, mode: str, sample_fps: float | None, timing: DecodeTiming | None = None):
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoder = VideoDecoder(stream, SampleClock(sample_fps), lambda pts_s: pts_s, lambda reason: None, mode,
                               timing=timing)
        for packet in container.demux(stream):
            out.extend((index, ts_s) for index, ts_s, _image in decoder.feed(packet))
    return out, decoder.timing.snapshot()


# Keyframes at 0, 1, 2, 3 s; one sample a second. "all" decodes every picture but converts only the samples;
# "keyframes" decodes only the keyframes that are due; "auto" decodes everything until it has seen two keyframe
# intervals (at 2 s), then keyframes only. Without sampling every picture is decoded and converted.
@pytest.mark.parametrize("mode, sample_fps, decoded, converted", [
    ("all", 1.0, FPS * SECONDS, SECONDS),
    ("keyframes", 1.0, SECONDS, SECONDS),
    ("auto", 1.0, 2 * FPS + 2, SECONDS),
    ("all", None, FPS * SECONDS, FPS * SECONDS),
])
def test_only_what_is_sampled_is_converted(video, mode, sample_fps, decoded, converted):
    samples, totals = decode(video, mode, sample_fps)
    assert len(samples) == converted
    assert (totals.packets, totals.decoded, totals.converted) == (FPS * SECONDS, decoded, converted)
    assert totals.decode_s > 0 and totals.convert_s > 0 and totals.cpu_s > 0
    assert totals.decode_cpu_s <= totals.decode_s + 0.05  # CPU of one thread cannot exceed wall time by much


@pytest.mark.parametrize("mode", ["all", "keyframes", "auto"])
def test_a_sample_keeps_its_own_presentation_time(video, mode):
    samples, _ = decode(video, mode, 1.0)
    assert [round(ts_s, 6) for _, ts_s in samples] == [0.0, 1.0, 2.0, 3.0]
    assert [index for index, _ in samples] == [0, FPS, 2 * FPS, 3 * FPS]


def test_one_timing_adds_up_over_decoders(video):
    # A reconnected camera gets a new decoder; its source keeps one DecodeTiming.
    timing = DecodeTiming()
    decode(video, "keyframes", 1.0, timing)
    first = timing.snapshot()
    decode(video, "keyframes", 1.0, timing)
    second = timing.snapshot()
    assert second.minus(first).decoded == first.decoded == SECONDS
    assert second.packets == 2 * FPS * SECONDS


def test_totals_arithmetic():
    a = DecodeTotals(0.5, 0.1, 30, 2, 2, 0.4, 0.08)
    b = DecodeTotals(0.2, 0.05, 5, 1, 1, 0.1, 0.02)
    assert a.minus(b)._values() == pytest.approx((0.3, 0.05, 25, 1, 1, 0.3, 0.06))
    assert a.minus(b).plus(b)._values() == pytest.approx(a._values())
    assert a.cpu_s == pytest.approx(0.48)
