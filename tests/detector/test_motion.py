"""Motion gate: static noise is skipped, objects and gaps are inferred, re-verification is forced on time."""

from __future__ import annotations

import numpy as np
import pytest

from detector.motion import MotionDecision, MotionGate, MotionGateConfig

HEIGHT_PX, WIDTH_PX = 360, 640


def scene(seed: int = 0) -> np.ndarray:
    """A textured street-like background: smooth gradients plus some blocks (float, 0..255)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT_PX, 0:WIDTH_PX].astype(np.float32)
    image = 60 + 80 * (x / WIDTH_PX) + 40 * (y / HEIGHT_PX)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, WIDTH_PX - 80)), int(rng.integers(0, HEIGHT_PX - 60))
        image[y0:y0 + 60, x0:x0 + 80] += float(rng.uniform(-40, 40))
    return np.repeat(image[:, :, None], 3, axis=2)


BACKGROUND = scene()


def frame(k: int, gain: float = 1.0, offset: float = 0.0, noise_sigma: float = 6.0,
          with_object: bool = False) -> np.ndarray:
    """Sample `k` of the scene: sensor noise (different each sample), optional brightness and an object."""
    image = BACKGROUND * gain + offset
    if with_object:
        image[200:300, 100:180] = (30.0, 200.0, 230.0)  # a stall-sized box (3.5% of the frame)
    image = image + np.random.default_rng(1000 + k).normal(0, noise_sigma, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def decisions(samples: list[tuple[float, np.ndarray]], **config) -> list[MotionDecision]:
    gate = MotionGate(MotionGateConfig(**config))
    return [gate.update(image, ts_s) for ts_s, image in samples]


@pytest.mark.parametrize(
    "name, samples, expected",
    [
        ("static scene with sensor noise is skipped",
         [(float(t), frame(t)) for t in range(6)],
         ["first", "still", "still", "still", "still", "still"]),
        ("an object appearing is inferred, then skipped while it stands still",
         [(0.0, frame(0)), (1.0, frame(1)), (2.0, frame(2, with_object=True)), (3.0, frame(3, with_object=True))],
         ["first", "still", "motion", "still"]),
        ("an object leaving is inferred",
         [(0.0, frame(0, with_object=True)), (1.0, frame(1, with_object=True)), (2.0, frame(2))],
         ["first", "still", "motion"]),
        ("a brightness ramp (clouds, dusk, auto-exposure) is skipped",
         [(float(t), frame(t, gain=1.0 - 0.06 * t, offset=-3.0 * t)) for t in range(8)],
         ["first"] + ["still"] * 7),
        ("a sudden exposure jump is skipped",
         [(0.0, frame(0)), (1.0, frame(1, gain=1.35, offset=10.0))],
         ["first", "still"]),
        ("re-verification is forced every reverify_interval_s of frame time",
         [(float(t), frame(t)) for t in range(0, 22)],
         ["first"] + ["still"] * 9 + ["reverify"] + ["still"] * 9 + ["reverify", "still"]),
        ("a gap in the timestamps is inferred",
         [(0.0, frame(0)), (1.0, frame(1)), (9.0, frame(2)), (10.0, frame(3))],
         ["first", "still", "gap", "still"]),
        ("a clock going backwards counts as a gap",
         [(100.0, frame(0)), (101.0, frame(1)), (50.0, frame(2))],
         ["first", "still", "gap"]),
        ("a frame-size change starts over",
         [(0.0, frame(0)), (1.0, frame(1)[:, :320].copy())],
         ["first", "first"]),
    ],
)
def test_gate_table(name: str, samples, expected: list[str]) -> None:
    got = decisions(samples, reverify_interval_s=10.0, max_gap_s=5.0)
    assert [d.reason for d in got] == expected, name
    assert [d.infer for d in got] == [r != "still" for r in expected], name


def test_changed_frac_reflects_the_object_size() -> None:
    gate = MotionGate()
    gate.update(frame(0), 0.0)
    still = gate.update(frame(1), 1.0)
    moved = gate.update(frame(2, with_object=True), 2.0)
    assert still.changed_frac < 0.001
    # The object covers 3.5% of the frame; blur spreads its edges a little.
    assert 0.025 < moved.changed_frac < 0.06


def test_slow_change_accumulates_against_the_last_inferred_frame() -> None:
    """An object fading in over many samples is caught: each sample is compared with the last inferred one."""
    gate = MotionGate(MotionGateConfig(reverify_interval_s=600.0))
    gate.update(frame(0), 0.0)
    reasons = []
    for t in range(1, 11):
        alpha = t / 10
        image = (frame(t).astype(np.float32) * (1 - alpha) + frame(t, with_object=True) * alpha).astype(np.uint8)
        reasons.append(gate.update(image, float(t)).reason)
    assert "motion" in reasons
    assert reasons[0] == "still"  # a 10% step on its own is below the pixel threshold


def test_force_infers_a_still_sample_as_reverify() -> None:
    gate = MotionGate()
    gate.update(frame(0), 0.0)
    assert gate.update(frame(1), 1.0, force=True) == MotionDecision(True, pytest.approx(0.0, abs=1e-3), "reverify")
    assert gate.last_inferred_s == 1.0


def test_reset_makes_the_next_sample_first() -> None:
    gate = MotionGate()
    gate.update(frame(0), 0.0)
    gate.reset()
    assert gate.update(frame(1), 1.0).reason == "first"


@pytest.mark.parametrize("field, value", [("blur_px", 4), ("min_changed_frac", 1.5), ("reverify_interval_s", -1.0),
                                          ("width_px", 8.5), ("max_gap_s", float("nan"))])
def test_config_is_bounded(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        MotionGateConfig(**{field: value})
