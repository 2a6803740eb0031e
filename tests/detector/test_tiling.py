import numpy as np
import pytest

from detector.runtime.tiling import Tile, TilingConfig, merge_tiled, plan_tiles
from tests.conftest import make_detections


@pytest.mark.parametrize(
    "width, height, tile, overlap, n_tiles",
    [
        (416, 416, 416, 0.2, 1),  # frame fits one tile
        (300, 200, 416, 0.2, 1),  # frame smaller than a tile
        (1000, 416, 416, 0.2, 3),
        (3840, 2160, 640, 0.2, 8 * 4),  # ceil((3840-128)/512) x ceil((2160-128)/512)
        (3840, 2160, 416, 0.25, 12 * 7),
    ],
)
def test_plan_tiles_covers_the_frame_with_the_requested_overlap(width, height, tile, overlap, n_tiles):
    tiles = plan_tiles(width, height, tile, overlap)
    assert len(tiles) == n_tiles
    covered = np.zeros((height, width), bool)
    for t in tiles:
        covered[t.y0:t.y1, t.x0:t.x1] = True
        assert t.x1 - t.x0 == min(tile, width) and t.y1 - t.y0 == min(tile, height)
    assert covered.all()
    xs = sorted({t.x0 for t in tiles})
    if len(xs) > 1:
        assert min(b - a for a, b in zip(xs, xs[1:])) <= tile * (1 - overlap) + 1


FRAME_W, FRAME_H = 1000, 416
LEFT, RIGHT = Tile(0, 0, 416, 416), Tile(292, 0, 708, 416)


def test_cut_fragment_is_absorbed_by_the_whole_box_from_the_neighbouring_tile():
    # A 100 px bike at x 380..480: whole in RIGHT (292..708), cut at x=416 in LEFT.
    left = make_detections([(380, 100, 416, 200, 0.70, 1)])
    right = make_detections([(380, 100, 480, 200, 0.60, 1)])
    merged = merge_tiled([left, right], [LEFT, RIGHT], FRAME_W, FRAME_H, nms_iou=0.45)
    assert merged.xyxy.tolist() == [[380, 100, 480, 200]]
    # The whole box keeps its own score: the fragment's higher one was for the part it saw.
    assert merged.confidence.tolist() == pytest.approx([0.60])
    assert "tile_cut" not in merged.data


def test_two_fragments_cut_by_different_borders_become_their_union():
    # A 210 px object at x 250..460 is wider than the 124 px overlap: each tile sees only a part of it.
    left = make_detections([(250, 100, 416, 200, 0.5, 1)])
    right = make_detections([(292, 100, 460, 200, 0.6, 1)])
    merged = merge_tiled([left, right], [LEFT, RIGHT], FRAME_W, FRAME_H, nms_iou=0.45)
    assert merged.xyxy.tolist() == [[250, 100, 460, 200]]
    assert merged.confidence.tolist() == pytest.approx([0.6])


@pytest.mark.parametrize(
    "left_rows, right_rows, expected",
    [
        # different classes never merge
        ([(380, 100, 416, 200, 0.7, 1)], [(380, 100, 480, 200, 0.6, 2)], 2),
        # two whole boxes side by side (parked bikes) both survive
        ([(300, 100, 350, 200, 0.7, 1)], [(355, 100, 405, 200, 0.6, 1)], 2),
        # a small whole box inside a big whole box (nobody cut): kept, IoS alone is not a reason to merge
        ([(100, 100, 300, 300, 0.7, 1), (150, 150, 200, 200, 0.6, 1)], [], 2),
        # same whole object seen in both tiles: NMS keeps one
        ([(320, 100, 400, 200, 0.7, 1)], [(321, 101, 401, 201, 0.65, 1)], 1),
    ],
)
def test_merge_table(left_rows, right_rows, expected):
    merged = merge_tiled([make_detections(left_rows), make_detections(right_rows)], [LEFT, RIGHT],
                         FRAME_W, FRAME_H, nms_iou=0.45)
    assert len(merged) == expected


def test_full_frame_pass_boxes_are_never_treated_as_cut():
    big = make_detections([(0, 0, 900, 400, 0.9, 3)])
    merged = merge_tiled([make_detections([]), big], [LEFT, None], FRAME_W, FRAME_H, nms_iou=0.45)
    assert len(merged) == 1


@pytest.mark.parametrize("kwargs", [dict(overlap_frac=0.95), dict(overlap_frac=-0.1), dict(tile_px=8)])
def test_tiling_config_bounds(kwargs):
    with pytest.raises(ValueError):
        TilingConfig(**kwargs)
