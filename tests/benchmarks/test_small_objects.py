"""The small-object benchmark's frames (deterministic, targets in the width range) and its matching rules."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.small_objects import bin_of, greedy_match, load_assets, parse_configs, small_object_frames


@pytest.mark.parametrize("widths, expected", [
    ([29.9, 30.0, 39.9, 40.0, 54.9, 55.0, 80.0, 80.1], [-1, 0, 0, 1, 1, 2, 2, -1]),
])
def test_width_bins(widths, expected):
    assert bin_of(np.array(widths)).tolist() == expected


@pytest.mark.parametrize("dets, scores, gts, det_matched, gt_matched", [
    ([[0, 0, 10, 10]], [0.9], [[0, 0, 10, 10]], [True], [True]),
    ([[0, 0, 10, 10]], [0.9], [[5, 0, 15, 10]], [False], [False]),                  # IoU 1/3
    ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.9], [[0, 0, 10, 10]], [False, True], [True]),  # one-to-one
    ([[0, 0, 10, 10]], [0.9], [[1, 0, 10, 10], [0, 0, 10, 10]], [True], [False, True]),      # best overlap
    ([], [], [[0, 0, 10, 10]], [], [False]),
])
def test_greedy_match(dets, scores, gts, det_matched, gt_matched):
    d, g = greedy_match(np.array(dets, float).reshape(-1, 4), np.array(scores), np.array(gts, float).reshape(-1, 4))
    assert d.tolist() == det_matched and g.tolist() == gt_matched


def test_frames_are_deterministic_and_targets_small(shared_dir):
    assets = load_assets(shared_dir, max_bike_crops=12)
    a = list(small_object_frames(2, 200, assets))
    b = list(small_object_frames(2, 200, assets))
    targets = 0
    for fa, fb in zip(a, b):
        assert fa.image.shape == (720, 1280, 3)
        assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.xyxy, fb.xyxy)
        w = fa.widths_px[fa.is_target]
        assert ((w >= 30) & (w <= 80)).all()
        assert (fa.class_names[fa.is_target] == "bicycle").all()
        assert fa.visible_fraction.shape == (len(fa.xyxy),)
        assert ((fa.visible_fraction > 0) & (fa.visible_fraction <= 1)).all()
        targets += int(fa.is_target.sum())
    assert targets > 0
    with pytest.raises(ValueError, match="seed must be >= 200"):
        next(small_object_frames(1, 100, assets))


def test_configurations_are_every_model_by_every_mode():
    configs = parse_configs(["street", "v2=var/candidates/street"], ["full", "full@832x480", "tiled"])
    assert [c.name for c in configs] == ["street full@416", "street full@832x480", "street tiled@416+full",
                                         "v2 full@416", "v2 full@832x480", "v2 tiled@416+full"]
    assert {c.path for c in configs} == {None, "var/candidates/street"}
    assert configs[1].input_wh == (832, 480)


@pytest.mark.parametrize("mode", ["tiled@832x480", "full@832", "half", "full@axb"])
def test_a_bad_mode_is_named(mode):
    with pytest.raises(ValueError, match=mode):
        parse_configs(["street"], [mode])
