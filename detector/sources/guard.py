"""The last gate before a frame leaves a source: no black, blank or frozen frames reach the detector.

Decoders emit uniform grey or black pictures after a reconnect or a lost reference, and frozen cameras repeat
the same picture for hours. Fed to the pipeline, the first hide every object (tracks end, cases close) and
the second fake stationary objects forever (dwell grows on a picture that stopped). Both are refused here and
counted, per reason, in the source's health.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FrameGuard", "REJECT_BLACK", "REJECT_UNIFORM", "REJECT_FROZEN"]

REJECT_BLACK = "black"
REJECT_UNIFORM = "uniform"
REJECT_FROZEN = "frozen"


@dataclass
class FrameGuard:
    """Refuses (nearly) uniform frames and byte-identical repeats of the previous accepted frame.

    Statistics are taken on a strided view (every `stride_px`-th pixel in both directions), so a check costs
    well under a millisecond on 1080p; a repeat is confirmed on every byte (CRC-32 of the whole image, after
    the strided pixels already matched).

    Attributes:
        black_mean_max: A frame whose mean is below this and whose std is below `uniform_std_max` is "black".
        uniform_std_max: A frame whose pixel standard deviation is below this is "uniform" (grey smear,
            blank test pattern, covered lens) whatever its mean.
        reject_uniform: Refuse uniform non-black frames too (black ones are always refused).
        reject_frozen: Refuse a frame byte-identical to the previous accepted one.
        stride_px: Sampling step for the statistics.

    Example:
        >>> import numpy as np
        >>> guard = FrameGuard()
        >>> noisy = np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8)
        >>> guard.check(np.zeros((72, 128, 3), np.uint8)), guard.check(noisy), guard.check(noisy.copy())
        ('black', None, 'frozen')
    """

    black_mean_max: float = 8.0
    uniform_std_max: float = 3.0
    reject_uniform: bool = True
    reject_frozen: bool = True
    stride_px: int = 8
    _last_sample: np.ndarray | None = field(default=None, init=False, repr=False)
    _last_crc: int | None = field(default=None, init=False, repr=False)
    _last_shape: tuple | None = field(default=None, init=False, repr=False)

    @classmethod
    def disabled(cls) -> "FrameGuard":
        """A guard that lets every frame through (for measurements and for sources already guarded upstream)."""
        return cls(black_mean_max=0.0, uniform_std_max=0.0, reject_uniform=False, reject_frozen=False)

    def check(self, image: np.ndarray) -> str | None:
        """The reason to refuse `image` ("black", "uniform", "frozen"), or None when it may be emitted.

        An accepted image becomes the reference for the next "frozen" check; refused ones do not.
        """
        sample = image[:: self.stride_px, :: self.stride_px]
        std = float(sample.std())
        if std < self.uniform_std_max:
            if float(sample.mean()) < self.black_mean_max:
                return REJECT_BLACK
            if self.reject_uniform:
                return REJECT_UNIFORM
        crc = None
        if self.reject_frozen:
            same_sample = (self._last_sample is not None and image.shape == self._last_shape
                           and np.array_equal(sample, self._last_sample))
            # Only hash the whole image when the cheap strided comparison already says "same".
            crc = zlib.crc32(np.ascontiguousarray(image)) if same_sample else None
            if same_sample and crc == self._last_crc:
                return REJECT_FROZEN
        self._remember(image, sample, crc)
        return None

    def reset(self) -> None:
        """Forget the reference frame (the next frame cannot be "frozen")."""
        self._last_sample = self._last_crc = self._last_shape = None

    def _remember(self, image: np.ndarray, sample: np.ndarray, crc: int | None) -> None:
        if not self.reject_frozen:
            return
        # A copy: consumers may draw on the frame they received, and the reference must stay what was sent.
        self._last_sample = sample.copy()
        self._last_shape = image.shape
        self._last_crc = crc if crc is not None else zlib.crc32(np.ascontiguousarray(image))
