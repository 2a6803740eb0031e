"""Motion gating: skip inference on samples where nothing in the picture changed.

A street camera sampled at 1 fps shows the same parked stall and the same bikes for minutes. `MotionGate`
compares each sample with the last sample the detector actually saw and says whether running the detector
again is worth it. The comparison is made on a small, blurred, grey copy of the frame whose brightness is
normalised to the reference (median level and contrast), so sensor noise and global illumination changes (clouds,
auto-exposure, dusk) do not count as motion, while an object appearing, leaving or moving does.

Comparing with the last *inferred* frame rather than the previous sample (or a slowly adapting background)
means slow changes accumulate until they trigger inference: the detections carried forward always describe
a picture close to the current one.

The gate never skips forever: inference is forced every `reverify_interval_s` (so stationary objects are
re-verified and a track can end), for the first frame, after a frame-size change and after a gap in the
timestamps. All times come from frame timestamps, never from frame counts.

Example:
    >>> import numpy as np
    >>> gate = MotionGate(MotionGateConfig(reverify_interval_s=10.0))
    >>> still = np.full((72, 128, 3), 100, np.uint8)
    >>> [gate.update(still, float(t)).reason for t in range(11)][::5]
    ['first', 'still', 'reverify']
    >>> moved = still.copy(); moved[20:60, 30:70] = 250
    >>> d = gate.update(moved, 11.0)
    >>> d.infer, d.reason, round(d.changed_frac, 2)
    (True, 'motion', 0.19)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import cv2
import numpy as np

__all__ = ["MotionDecision", "MotionGate", "MotionGateConfig", "MotionReason"]

MotionReason = Literal["motion", "reverify", "first", "gap", "still"]

# Contrast below this (grey-level interquartile range) is treated as flat: scaling a near-uniform picture to
# the reference's contrast would amplify its noise into "motion".
_MIN_SPREAD = 2.0


def _level_and_spread(small: np.ndarray) -> tuple[float, float]:
    """Median and interquartile range of the grey levels.

    Robust statistics rather than mean and standard deviation: an object covering a fifth of the frame would
    shift the mean and make the whole picture look changed after normalisation; it barely moves the median.
    """
    q25, q50, q75 = np.percentile(small, (25, 50, 75))
    return float(q50), float(q75 - q25)


@dataclass(frozen=True)
class MotionGateConfig:
    """Motion gate settings; every field is bounded (see `LIMITS`) and checked on construction.

    Attributes:
        width_px: Width the frame is scaled down to before comparing (aspect ratio kept). Small is fast and
            averages sensor noise away; 160 px keeps a bike at 1280 px (about 60 px wide) as several pixels.
        blur_px: Gaussian blur kernel size (odd) applied after scaling, against noise and compression blocks.
        pixel_delta: A pixel has changed when its normalised grey level differs from the reference by more
            than this (0..255).
        min_changed_frac: Inference runs when at least this fraction of the frame has changed.
        reverify_interval_s: Inference is forced when the last inferred sample is at least this old, so
            objects carried forward are re-checked (a stall packed away while nothing else moved).
        max_gap_s: A sample more than this after the previous one (a reconnect, a stall of the stream, or a
            clock jump backwards) is always inferred: the old reference says nothing about it.

    Example:
        >>> MotionGateConfig(reverify_interval_s=30).min_changed_frac
        0.003
        >>> MotionGateConfig(blur_px=4)
        Traceback (most recent call last):
        ...
        ValueError: MotionGateConfig: blur_px must be odd, got 4
    """

    width_px: int = 160
    blur_px: int = 5
    pixel_delta: float = 20.0
    min_changed_frac: float = 0.003
    reverify_interval_s: float = 10.0
    max_gap_s: float = 5.0

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "width_px": (16, 1920),
        "blur_px": (1, 31),
        "pixel_delta": (1.0, 254.0),
        "min_changed_frac": (0.0, 1.0),
        "reverify_interval_s": (0.0, 3600.0),
        "max_gap_s": (0.0, 3600.0),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = self.LIMITS[f.name]
            if f.type == "int" and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
                raise ValueError(f"MotionGateConfig: {f.name} must be an integer, got {value!r}")
            if (not isinstance(value, (int, float, np.number)) or isinstance(value, bool)
                    or not math.isfinite(value) or not lo <= value <= hi):
                raise ValueError(f"MotionGateConfig: {f.name} must lie within [{lo}, {hi}], got {value!r}")
        if self.blur_px % 2 == 0:
            raise ValueError(f"MotionGateConfig: blur_px must be odd, got {self.blur_px}")


@dataclass(frozen=True)
class MotionDecision:
    """The gate's verdict on one sample.

    Attributes:
        infer: Whether to run the detector on this sample.
        changed_frac: Fraction of the (scaled) frame that differs from the last inferred frame; 1.0 when
            there is no comparable reference ("first").
        reason: "first" (no reference yet, or the frame size changed), "gap" (timestamps jumped),
            "motion" (enough changed), "reverify" (forced: the last inference is too old) or "still" (skip).
    """

    infer: bool
    changed_frac: float
    reason: MotionReason


class MotionGate:
    """Decides per sample whether the detector must run; one instance per camera (it holds state).

    Args:
        config: Gate settings (defaults when None).
    """

    def __init__(self, config: MotionGateConfig | None = None) -> None:
        self.config = config or MotionGateConfig()
        self._reference: np.ndarray | None = None  # normalised small grey image of the last inferred frame
        self._ref_median = 0.0
        self._ref_spread = 0.0
        self._last_inferred_s: float | None = None
        self._last_ts_s: float | None = None

    def reset(self) -> None:
        """Forget the reference: the next sample is inferred as "first"."""
        self._reference = None
        self._last_inferred_s = None
        self._last_ts_s = None

    @property
    def last_inferred_s(self) -> float | None:
        """Timestamp (s) of the last sample the gate let through, or None."""
        return self._last_inferred_s

    def update(self, image: np.ndarray, ts_s: float, force: bool = False) -> MotionDecision:
        """Judge one sample and, when it is to be inferred, make it the new reference.

        Args:
            image: HxWx3 BGR (or HxW grey) uint8 frame.
            ts_s: The frame's timestamp in seconds.
            force: Infer regardless of motion (the caller needs fresh detections); reported as "reverify"
                when nothing else would have triggered inference.

        Returns:
            The decision. The caller must run the detector when ``infer`` is True: the gate assumes it did.
        """
        ts_s = float(ts_s)
        cfg = self.config
        small = self._small_grey(image)
        previous_s, self._last_ts_s = self._last_ts_s, ts_s

        if self._reference is None or self._reference.shape != small.shape:
            return self._inferred(small, ts_s, 1.0, "first")
        changed_frac = self._changed_frac(small)
        if previous_s is None or ts_s - previous_s > cfg.max_gap_s or ts_s < previous_s:
            return self._inferred(small, ts_s, changed_frac, "gap")
        if changed_frac >= cfg.min_changed_frac and changed_frac > 0.0:
            return self._inferred(small, ts_s, changed_frac, "motion")
        # A small tolerance: sampled timestamps jitter around the interval (9.9996 s for 10 s).
        if force or ts_s - self._last_inferred_s >= cfg.reverify_interval_s - 1e-3:
            return self._inferred(small, ts_s, changed_frac, "reverify")
        return MotionDecision(False, changed_frac, "still")

    # --- internals ---------------------------------------------------------------------------------

    def _small_grey(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height_px, width_px = image.shape[:2]
        width_small = min(self.config.width_px, width_px)
        height_small = max(1, round(height_px * width_small / width_px))
        # INTER_AREA averages whole blocks of pixels: most of the sensor noise is gone before the blur.
        small = cv2.resize(image, (width_small, height_small), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self.config.blur_px > 1:
            small = cv2.GaussianBlur(small, (self.config.blur_px, self.config.blur_px), 0)
        return small

    def _changed_frac(self, small: np.ndarray) -> float:
        # Map the sample's brightness and contrast onto the reference's (a global gain and offset, which is
        # what auto-exposure, clouds and dusk amount to), then count pixels that still differ.
        median, spread = _level_and_spread(small)
        gain = self._ref_spread / spread if spread >= _MIN_SPREAD and self._ref_spread >= _MIN_SPREAD else 1.0
        normalised = (small - median) * gain + self._ref_median
        changed = cv2.absdiff(normalised, self._reference) > self.config.pixel_delta
        return float(np.count_nonzero(changed)) / changed.size

    def _inferred(self, small: np.ndarray, ts_s: float, changed_frac: float, reason: MotionReason) -> MotionDecision:
        self._reference = small
        self._ref_median, self._ref_spread = _level_and_spread(small)
        self._last_inferred_s = ts_s
        return MotionDecision(True, changed_frac, reason)
