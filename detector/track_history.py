"""A small, bounded memory of how each track looked over time: the raw material of time-lapse evidence.

A violation is reported when it becomes due (minutes after the object arrived), and the frame of that moment
shows only that it is there *now*. To show that it has been there all along, each camera keeps, per track, a
few downscaled JPEG crops spread evenly over the track's life: the first is kept for good (the object at first
sight), and when the ring is full the sample whose removal leaves the most even spacing is dropped, so the
samples cover the whole dwell however long it gets, never its last minutes only.

Memory bound (defaults): at most ``max_samples`` = 10 crops per track, each at most ``max_side_px`` = 320 px
on its longer side (JPEG quality 80: typically 5-25 KB), for at most ``max_tracks`` = 48 tracks and never more
than ``max_bytes`` = 8 MiB of JPEG in all per camera; the track seen longest ago is forgotten first when a bound
is reached. Crops are encoded only when a sample is taken: at most every ``min_gap_s`` at first, and once the
ring is full only when the time since the last sample reaches the ring's mean spacing, so a track that stands
for hours costs a few encodes an hour.

Times are frame timestamps (seconds since the epoch, as ``Frame.ts_s``), never frame counts.

Example:
    >>> import numpy as np
    >>> from detector.types import Detections
    >>> history = TrackHistory(max_samples=3, min_gap_s=1.0)
    >>> image = np.zeros((120, 160, 3), np.uint8)
    >>> boxes = Detections(xyxy=np.array([[40, 30, 80, 90]], np.float32), confidence=np.array([0.9], np.float32),
    ...                    class_id=np.array([0]), tracker_id=np.array([7]))
    >>> for t_s in (0.0, 0.5, 1.0, 2.0, 3.0):
    ...     history.update(t_s, image, boxes)
    >>> [s.t_s for s in history.samples(7)]  # 0.5 s was too soon; then thinned evenly, the first kept
    [0.0, 2.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detector.types import Detections

__all__ = ["TrackHistory", "TrackSample", "crop_around"]


@dataclass(frozen=True)
class TrackSample:
    """One remembered look at a track.

    Attributes:
        t_s: Frame timestamp, seconds since the epoch (``Frame.ts_s``).
        jpeg: The crop around the track's box, JPEG bytes (downscaled).
        box_xyxy: The track's box within the crop, crop pixels (x1, y1, x2, y2).
    """

    t_s: float
    jpeg: bytes
    box_xyxy: tuple[float, float, float, float]

    def image(self) -> np.ndarray:
        """The crop decoded (HxWx3 uint8 BGR)."""
        return cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)


def crop_around(image: np.ndarray, xyxy: np.ndarray | tuple[float, float, float, float], pad_frac: float = 0.5,
                max_side_px: int = 320) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The region around a box with some of its surroundings, downscaled, and the box within it.

    The padding (``pad_frac`` of the box's longer side on each side, plus 8 px) shows where the object stands, so
    the panels of a strip can be seen to show the same place.

    Args:
        image: HxWx3 uint8 frame.
        xyxy: The box, frame pixels.
        pad_frac: Padding on each side, as a fraction of the box's longer side.
        max_side_px: The crop is scaled down (never up) so that its longer side is at most this.

    Returns:
        The crop (a new array) and the box in its pixels.

    Raises:
        ValueError: The box does not overlap the frame.

    Example:
        >>> crop, box = crop_around(np.zeros((100, 200, 3), np.uint8), (90, 40, 110, 60), max_side_px=1000)
        >>> crop.shape, box
        ((56, 56, 3), (18.0, 18.0, 38.0, 38.0))
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    pad = pad_frac * max(x2 - x1, y2 - y1) + 8
    cx1, cy1 = max(0, int(np.floor(x1 - pad))), max(0, int(np.floor(y1 - pad)))
    cx2, cy2 = min(w, int(np.ceil(x2 + pad))), min(h, int(np.ceil(y2 + pad)))
    if cx2 <= cx1 or cy2 <= cy1:
        raise ValueError(f"box {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f} lies outside the {w}x{h} frame")
    crop = image[cy1:cy2, cx1:cx2]
    scale = min(1.0, max_side_px / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    else:
        crop = crop.copy()
    box = ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
    return crop, tuple(round(v, 2) for v in box)  # type: ignore[return-value]


@dataclass
class _Ring:
    samples: list[TrackSample]
    last_seen_s: float
    nbytes: int = 0


class TrackHistory:
    """Per-track rings of downscaled crops for one camera (see the module docstring for the bounds).

    Not thread-safe: one camera worker updates and reads it.

    Args:
        max_samples: Crops kept per track (at least 3: first sight, midway, last).
        max_tracks: Tracks remembered at once.
        max_bytes: JPEG bytes kept in all.
        max_side_px: Longer side of a kept crop.
        min_gap_s: Least time between two samples of a track.
        forget_after_s: A track not seen for this long is forgotten.
        jpeg_quality: Quality of the kept crops.
    """

    def __init__(self, max_samples: int = 10, max_tracks: int = 48, max_bytes: int = 8 * 2 ** 20,
                 max_side_px: int = 320, min_gap_s: float = 2.0, forget_after_s: float = 900.0,
                 jpeg_quality: int = 80) -> None:
        if max_samples < 3:
            raise ValueError(f"max_samples must be at least 3 (first, midway, last), got {max_samples}")
        if max_tracks < 1 or max_bytes < 1 or max_side_px < 16:
            raise ValueError(f"max_tracks, max_bytes must be positive and max_side_px at least 16, got "
                             f"{max_tracks}, {max_bytes}, {max_side_px}")
        self.max_samples = max_samples
        self.max_tracks = max_tracks
        self.max_bytes = max_bytes
        self.max_side_px = max_side_px
        self.min_gap_s = float(min_gap_s)
        self.forget_after_s = float(forget_after_s)
        self.jpeg_quality = int(jpeg_quality)
        self._rings: dict[int, _Ring] = {}
        self._nbytes = 0

    @property
    def nbytes(self) -> int:
        """JPEG bytes held now."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._rings)

    def samples(self, track_id: int) -> tuple[TrackSample, ...]:
        """The samples of a track, oldest first (empty for a track not remembered)."""
        ring = self._rings.get(int(track_id))
        return () if ring is None else tuple(ring.samples)

    def update(self, t_s: float, image: np.ndarray, detections: Detections) -> None:
        """Take this frame's samples of the tracked boxes that are due one, and forget stale tracks.

        Args:
            t_s: The frame's timestamp, seconds (``Frame.ts_s``); frames come in time order.
            image: The frame (HxWx3 uint8 BGR).
            detections: Tracked detections of the frame (boxes without a ``tracker_id`` are ignored).
        """
        if detections.tracker_id is not None:
            for track_id, box in zip(detections.tracker_id.tolist(), detections.xyxy):
                self._see(int(track_id), float(t_s), image, box)
        for track_id in [k for k, r in self._rings.items() if t_s - r.last_seen_s > self.forget_after_s]:
            self._forget(track_id)

    def _see(self, track_id: int, t_s: float, image: np.ndarray, box: np.ndarray) -> None:
        ring = self._rings.get(track_id)
        if ring is None:
            if len(self._rings) >= self.max_tracks:
                self._forget(min(self._rings, key=lambda k: self._rings[k].last_seen_s))
            ring = self._rings[track_id] = _Ring([], t_s)
        ring.last_seen_s = t_s
        if not self._due(ring.samples, t_s):
            return
        try:
            crop, box_in_crop = crop_around(image, box, max_side_px=self.max_side_px)
        except ValueError:  # a box remembered off-frame: nothing to show, and nothing lost
            return
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        sample = TrackSample(t_s, buf.tobytes(), box_in_crop)
        ring.samples.append(sample)
        ring.nbytes += len(sample.jpeg)
        self._nbytes += len(sample.jpeg)
        if len(ring.samples) > self.max_samples:
            self._drop(ring, _most_even_drop([s.t_s for s in ring.samples]))
        while self._nbytes > self.max_bytes and len(self._rings) > 1:
            self._forget(min((k for k in self._rings if k != track_id), key=lambda k: self._rings[k].last_seen_s))
        while self._nbytes > self.max_bytes and len(ring.samples) > 1:  # one track alone over the budget
            self._drop(ring, 1 if len(ring.samples) > 2 else 0)

    def _due(self, samples: list[TrackSample], t_s: float) -> bool:
        if not samples:
            return True
        gap_s = t_s - samples[-1].t_s
        if len(samples) < self.max_samples:
            return gap_s >= self.min_gap_s
        # Full: a new sample only once the ring's mean spacing has passed, so that the encodes thin out as the
        # track ages instead of one per frame each followed by a drop.
        mean_gap_s = (samples[-1].t_s - samples[0].t_s) / (len(samples) - 1)
        return gap_s >= max(self.min_gap_s, mean_gap_s)

    def _drop(self, ring: _Ring, index: int) -> None:
        gone = ring.samples.pop(index)
        ring.nbytes -= len(gone.jpeg)
        self._nbytes -= len(gone.jpeg)

    def _forget(self, track_id: int) -> None:
        ring = self._rings.pop(track_id)
        self._nbytes -= ring.nbytes


def _most_even_drop(times_s: list[float]) -> int:
    """The interior sample whose removal leaves the smallest merged gap (first and last are always kept).

    Example:
        >>> _most_even_drop([0.0, 10.0, 11.0, 30.0, 40.0])  # dropping 10.0 leaves 0..11, the smallest gap
        1
    """
    gaps = [times_s[i + 1] - times_s[i - 1] for i in range(1, len(times_s) - 1)]
    return 1 + int(np.argmin(gaps))
