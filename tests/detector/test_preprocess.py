import numpy as np
import pytest

from detector.runtime.card import InputSpec
from detector.runtime.preprocess import make_blob, prepare_image, to_frame_xyxy


def spec(**kw) -> InputSpec:
    base = dict(width_px=640, height_px=640, channel_order="rgb", scale=1 / 255)
    return InputSpec(**{**base, **kw})


@pytest.mark.parametrize(
    "frame_wh, kw, pad_xy, scale_xy",
    [
        ((1280, 720), {}, (0, 140), (0.5, 0.5)),
        ((720, 1280), {}, (140, 0), (0.5, 0.5)),
        ((1280, 720), {"align": "top_left"}, (0, 0), (0.5, 0.5)),
        ((640, 640), {}, (0, 0), (1.0, 1.0)),
        ((1280, 720), {"resize": "stretch"}, (0, 0), (0.5, 640 / 720)),
    ],
)
def test_letterbox_geometry_and_inverse(frame_wh, kw, pad_xy, scale_xy):
    s = spec(**kw)
    image = np.zeros((frame_wh[1], frame_wh[0], 3), np.uint8)
    prepared, t = prepare_image(image, s)
    assert prepared.shape == (640, 640, 3)
    assert (t.pad_x_px, t.pad_y_px) == pad_xy
    assert (t.scale_x, t.scale_y) == pytest.approx(scale_xy)
    # A box mapped into the input and back comes home.
    box = np.array([[100, 50, 300, 400]], np.float32)
    into = box * [t.scale_x, t.scale_y, t.scale_x, t.scale_y] + [t.pad_x_px, t.pad_y_px, t.pad_x_px, t.pad_y_px]
    np.testing.assert_allclose(to_frame_xyxy(into.astype(np.float32), t), box, atol=1e-3)


def test_letterbox_pads_with_the_card_value():
    prepared, _ = prepare_image(np.zeros((720, 1280, 3), np.uint8), spec(pad_value=77))
    assert prepared[0, 0].tolist() == [77, 77, 77] and prepared[320, 320].tolist() == [0, 0, 0]


@pytest.mark.parametrize("order, scale, first_channel_value", [("rgb", 1 / 255, 30 / 255), ("bgr", 1.0, 10.0)])
def test_blob_channel_order_and_scale(order, scale, first_channel_value):
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 30  # B=10, R=30
    blob = make_blob([image, image], spec(width_px=64, height_px=64, channel_order=order, scale=scale))
    assert blob.shape == (2, 3, 64, 64) and blob.dtype == np.float32
    assert blob[0, 0, 0, 0] == pytest.approx(first_channel_value)


def test_boxes_are_clipped_to_the_frame():
    _, t = prepare_image(np.zeros((720, 1280, 3), np.uint8), spec())
    out = to_frame_xyxy(np.array([[-50, 100, 700, 600]], np.float32), t)
    assert out.tolist() == [[0, 0, 1280, 720]]
