"""detector.track_history: per-track rings of crops, bounded in samples, tracks and bytes, spread over a track's life."""

from __future__ import annotations

import numpy as np
import pytest

from detector.track_history import TrackHistory, _most_even_drop, crop_around
from detector.types import Detections

FRAME_HW = (240, 320)


def frame(value: int = 60) -> np.ndarray:
    """A grey frame with a white square at (100..140, 80..120): what the crops must show inside their box."""
    image = np.full((*FRAME_HW, 3), value, np.uint8)
    image[80:120, 100:140] = 255
    return image


def tracked(*tracks: tuple[int, tuple[float, float, float, float]]) -> Detections:
    """Tracked detections, one per (track id, xyxy)."""
    n = len(tracks)
    return Detections(xyxy=np.array([b for _, b in tracks], np.float32).reshape(-1, 4),
                      confidence=np.full(n, 0.9, np.float32), class_id=np.zeros(n, int),
                      tracker_id=np.array([t for t, _ in tracks], int))


SQUARE = (100.0, 80.0, 140.0, 120.0)


@pytest.mark.parametrize("times_s, max_samples, min_gap_s, kept_s", [
    ([0, 1, 2, 3], 10, 2.0, [0, 2]),                                  # no sample sooner than min_gap_s
    ([0, 2, 4, 6, 8], 3, 2.0, [0, 4, 6]),                              # full: thinned evenly, the first kept
    ([0, 100, 101, 102, 300], 4, 1.0, [0, 100, 102, 300]),             # the closest pair loses one when a new one comes
])
def test_samples_are_spread_over_the_whole_life_of_the_track(times_s, max_samples, min_gap_s, kept_s):
    history = TrackHistory(max_samples=max_samples, min_gap_s=min_gap_s)
    image = frame()
    for t_s in times_s:
        history.update(float(t_s), image, tracked((7, SQUARE)))
    assert [s.t_s for s in history.samples(7)] == kept_s
    assert history.nbytes == sum(len(s.jpeg) for s in history.samples(7))


@pytest.mark.parametrize("max_samples", [3, 5, 10])
def test_an_hour_at_half_a_hertz_is_covered_evenly(max_samples):
    history = TrackHistory(max_samples=max_samples)
    image = frame()
    for t_s in range(0, 3601, 2):
        history.update(float(t_s), image, tracked((7, SQUARE)))
    kept_s = [s.t_s for s in history.samples(7)]
    gaps_s = np.diff(kept_s)
    assert len(kept_s) == max_samples and kept_s[0] == 0.0  # first sight is kept for good
    assert 3600 - kept_s[-1] <= gaps_s.mean()                 # ... and the latest is recent
    assert gaps_s.max() <= 2 * gaps_s.min(), kept_s           # no stretch of the hour left without a look


def test_a_full_ring_encodes_only_at_its_mean_spacing():
    history = TrackHistory(max_samples=4, min_gap_s=1.0)
    image = frame()
    taken = []
    for t_s in range(0, 1000):
        before = history.samples(7)
        history.update(float(t_s), image, tracked((7, SQUARE)))
        if history.samples(7) != before:
            taken.append(t_s)
    assert len(taken) < 25, taken  # an encode per frame would be 1000; the spacing doubles as the track ages


def test_the_crop_shows_the_box_where_it_says():
    history = TrackHistory(max_side_px=1000)
    history.update(0.0, frame(), tracked((3, SQUARE)))
    (sample,) = history.samples(3)
    image = sample.image()
    x1, y1, x2, y2 = (round(v) for v in sample.box_xyxy)
    assert image[y1 + 2:y2 - 2, x1 + 2:x2 - 2].min() > 230  # the white square fills its box
    assert image[:y1 - 2].max() < 100 and image[y2 + 2:].max() < 100  # grey around it: context was kept


@pytest.mark.parametrize("box, frame_hw, max_side_px, crop_hw, box_in_crop", [
    ((90, 40, 110, 60), (100, 200), 1000, (56, 56), (18.0, 18.0, 38.0, 38.0)),  # 50 % + 8 px each side
    ((0, 0, 20, 20), (100, 200), 1000, (38, 38), (0.0, 0.0, 20.0, 20.0)),       # clipped at the frame's corner
    ((0, 0, 200, 100), (100, 200), 100, (50, 100), (0.0, 0.0, 100.0, 50.0)),    # downscaled to max_side_px
])
def test_crop_around(box, frame_hw, max_side_px, crop_hw, box_in_crop):
    crop, inside = crop_around(np.zeros((*frame_hw, 3), np.uint8), box, max_side_px=max_side_px)
    assert crop.shape[:2] == crop_hw and inside == box_in_crop


def test_a_box_outside_the_frame_is_refused_by_crop_around_and_skipped_by_the_history():
    with pytest.raises(ValueError, match="outside the 320x240 frame"):
        crop_around(frame(), (400, 300, 450, 350))
    history = TrackHistory()
    history.update(0.0, frame(), tracked((1, (400, 300, 450, 350))))
    assert history.samples(1) == ()


@pytest.mark.parametrize("bound", ["max_tracks", "max_bytes"])
def test_the_track_seen_longest_ago_is_forgotten_first_at_a_bound(bound):
    # One sample per track (min_gap_s): the bound is met by the third track's first crop.
    history = TrackHistory(max_tracks=2, min_gap_s=100) if bound == "max_tracks" else None
    if history is None:  # room for about two tracks' crops
        probe = TrackHistory()
        probe.update(0.0, frame(), tracked((1, SQUARE)))
        history = TrackHistory(max_bytes=int(2.5 * probe.nbytes), min_gap_s=100)
    image = frame()
    history.update(0.0, image, tracked((1, SQUARE), (2, SQUARE)))
    history.update(10.0, image, tracked((2, SQUARE)))                # 2 seen again, 1 not
    history.update(20.0, image, tracked((2, SQUARE), (3, SQUARE)))   # 3 arrives: 1 goes
    assert history.samples(1) == () and history.samples(2) and history.samples(3)
    assert history.nbytes <= history.max_bytes


def test_tracks_not_seen_for_forget_after_s_are_forgotten_and_untracked_boxes_ignored():
    history = TrackHistory(forget_after_s=60)
    image = frame()
    history.update(0.0, image, tracked((1, SQUARE)))
    history.update(30.0, image, tracked((2, SQUARE)))
    history.update(61.0, image, tracked((2, SQUARE)))
    assert history.samples(1) == () and len(history) == 1
    untracked = Detections(xyxy=np.array([SQUARE], np.float32), confidence=np.array([0.9], np.float32),
                           class_id=np.array([0]))
    history.update(62.0, image, untracked)
    assert len(history) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"max_samples": 2}, "at least 3"),
    ({"max_tracks": 0}, "must be positive"),
    ({"max_side_px": 8}, "at least 16"),
])
def test_bad_bounds_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackHistory(**kwargs)


@pytest.mark.parametrize("times_s, dropped", [
    ([0, 10, 11, 30, 40], 1),
    ([0, 10, 20, 21, 40], 2),  # 20 goes: 10..21 is the smallest merged gap
    ([0, 5, 10, 15], 1),  # a tie: the older one goes
])
def test_most_even_drop(times_s, dropped):
    assert _most_even_drop(times_s) == dropped
