"""Central types that flow through the pipeline: `Frame` in, `Detections` through every stage.

`Detections` is columnar (after roboflow/supervision): one numpy array per field, one row per box.
Every stage takes a `Detections` and returns one, so there is exactly one representation of "boxes"
in the project, and masks select rows consistently across all columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

__all__ = ["Frame", "FrameGeo", "FRAME_GEO_ANGLE_SOURCES", "Detections"]

# Where a drone frame's yaw or pitch came from, most trusted first (see `detector.geo.telemetry`).
FRAME_GEO_ANGLE_SOURCES: tuple[str, ...] = ("gimbal", "flight", "track", "config")


@dataclass(frozen=True)
class FrameGeo:
    """Where a camera was when a frame was taken (drones; fixed cameras may carry their position).

    Attributes:
        lat_deg: WGS84 latitude in degrees.
        lon_deg: WGS84 longitude in degrees.
        alt_m: Altitude of the camera above ground (relative altitude for drones), metres.
        yaw_deg: Heading of the camera, degrees clockwise from north.
        pitch_deg: Gimbal pitch, degrees; -90 looks straight down (nadir).
        roll_deg: Gimbal roll, degrees.
        hfov_deg: Horizontal field of view of the image, degrees (None when unknown).
        abs_alt_m: Altitude of the camera above the geoid/ellipsoid as the drone reports it (DJI
            ``abs_alt``, XMP ``AbsoluteAltitude``), metres; None when the source has none.
        yaw_source: Where `yaw_deg` came from: ``gimbal``, ``flight`` (body yaw), ``track`` (course over
            ground) or ``config``; None when unknown (see `detector.geo.telemetry`).
        pitch_source: Where `pitch_deg` came from: ``gimbal`` or ``config``.
        focal_len_35mm_mm: 35 mm-equivalent focal length the drone reported for this frame, millimetres.
        dzoom_ratio: Digital zoom factor the drone reported (1.0 = none), when it reported one.
    """

    lat_deg: float
    lon_deg: float
    alt_m: float | None = None
    yaw_deg: float | None = None
    pitch_deg: float | None = None
    roll_deg: float | None = None
    hfov_deg: float | None = None
    abs_alt_m: float | None = None
    yaw_source: str | None = None
    pitch_source: str | None = None
    focal_len_35mm_mm: float | None = None
    dzoom_ratio: float | None = None

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"lat_deg must be within [-90, 90], got {self.lat_deg}")
        if not -180.0 <= self.lon_deg <= 180.0:
            raise ValueError(f"lon_deg must be within [-180, 180], got {self.lon_deg}")
        for name in ("yaw_source", "pitch_source"):
            value = getattr(self, name)
            if value is not None and value not in FRAME_GEO_ANGLE_SOURCES:
                raise ValueError(f"FrameGeo.{name} must be one of {FRAME_GEO_ANGLE_SOURCES} or None, got {value!r}")


@dataclass(frozen=True)
class Frame:
    """One decoded image from a source, stamped with the time it was taken.

    Attributes:
        source_id: Camera id, flight id or file name the frame came from.
        index: Position of the frame in its source (decoded frame number, not the sample number).
        ts: When the frame was taken: wall-clock UTC for streams, flight time for drones.
            Always timezone-aware; every duration in the pipeline is a difference of these.
        image: HxWx3 uint8 BGR pixels.
        geo: Camera position for georeferencing, when known.

    Example:
        >>> import numpy as np
        >>> from datetime import datetime, timezone
        >>> f = Frame("cam-1", 0, datetime(2026, 1, 1, tzinfo=timezone.utc), np.zeros((4, 6, 3), np.uint8))
        >>> f.width_px, f.height_px
        (6, 4)
    """

    source_id: str
    index: int
    ts: datetime
    image: np.ndarray
    geo: FrameGeo | None = None

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise ValueError("Frame.ts must be timezone-aware (UTC); naive datetimes are ambiguous")
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", None)
            raise ValueError(f"Frame.image must be an HxWx3 uint8 BGR array, got shape={shape} dtype={dtype}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"Frame.image is empty: shape={img.shape}")
        if self.index < 0:
            raise ValueError(f"Frame.index must be >= 0, got {self.index}")

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def ts_s(self) -> float:
        """Seconds since the Unix epoch (for arithmetic on durations)."""
        return self.ts.timestamp()

    @staticmethod
    def utc_from_s(ts_s: float) -> datetime:
        return datetime.fromtimestamp(ts_s, tz=timezone.utc)


def _as_array(value: Any, dtype: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Detections.{name} cannot be converted to {np.dtype(dtype).name}: {exc}") from None


@dataclass
class Detections:
    """Boxes found in one frame, stored column-wise.

    Attributes:
        xyxy: (N, 4) float32 boxes in frame pixels, x1 <= x2 and y1 <= y2.
        confidence: (N,) float32 scores in [0, 1].
        class_id: (N,) int32 indices into the model card's class names.
        tracker_id: (N,) int64 track ids once a tracker has run, else None.
        data: Extra per-box columns (e.g. ``class_name``), each of length N.

    Example:
        >>> d = Detections(xyxy=[[0, 0, 10, 10], [5, 5, 20, 20]], confidence=[0.9, 0.4], class_id=[1, 1])
        >>> len(d[d.confidence > 0.5])
        1
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as_array(self.xyxy, np.float32, "xyxy").reshape(-1, 4) if np.size(self.xyxy) else np.zeros(
            (0, 4), np.float32
        )
        n = self.xyxy.shape[0]
        self.confidence = _as_array(self.confidence, np.float32, "confidence").reshape(-1)
        self.class_id = _as_array(self.class_id, np.int32, "class_id").reshape(-1)
        if self.tracker_id is not None:
            self.tracker_id = _as_array(self.tracker_id, np.int64, "tracker_id").reshape(-1)
        for name, col in (("confidence", self.confidence), ("class_id", self.class_id), ("tracker_id", self.tracker_id)):
            if col is not None and col.shape[0] != n:
                raise ValueError(f"Detections.{name} has {col.shape[0]} rows, xyxy has {n}")
        if n:
            if not np.isfinite(self.xyxy).all():
                raise ValueError("Detections.xyxy contains NaN or infinite values")
            if (self.xyxy[:, 2] < self.xyxy[:, 0]).any() or (self.xyxy[:, 3] < self.xyxy[:, 1]).any():
                raise ValueError("Detections.xyxy must satisfy x1 <= x2 and y1 <= y2")
            if not np.isfinite(self.confidence).all() or (self.confidence < 0).any() or (self.confidence > 1).any():
                raise ValueError("Detections.confidence must lie within [0, 1]")
        data = {}
        for key, col in dict(self.data).items():
            arr = np.asarray(col)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"Detections.data[{key!r}] has {arr.shape[:1] or 'no'} rows, xyxy has {n}")
            data[key] = arr
        self.data = data

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def empty(cls, with_tracker: bool = False) -> "Detections":
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int32),
            tracker_id=np.zeros((0,), np.int64) if with_tracker else None,
        )

    @classmethod
    def merge(cls, parts: Iterable["Detections"]) -> "Detections":
        """Concatenate detections; every part must carry the same optional columns.

        Example:
            >>> a = Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0])
            >>> len(Detections.merge([a, Detections.empty(), a]))
            2
        """
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        has_tracker = {p.tracker_id is not None for p in parts}
        if len(has_tracker) > 1:
            raise ValueError("cannot merge Detections with and without tracker_id")
        keys = {frozenset(p.data) for p in parts}
        if len(keys) > 1:
            raise ValueError(f"cannot merge Detections with different data columns: {sorted(map(sorted, keys))}")
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            tracker_id=np.concatenate([p.tracker_id for p in parts]) if has_tracker == {True} else None,
            data={k: np.concatenate([p.data[k] for p in parts]) for k in parts[0].data},
        )

    # --- access -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> "Detections":
        """Select rows by boolean mask, integer array, slice or a single int (kept as 1 row)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean mask of shape {index.shape} does not match {len(self)} detections")
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator["Detections"]:
        for i in range(len(self)):
            yield self[i]

    def with_columns(self, **columns: np.ndarray) -> "Detections":
        """A copy with extra or replaced `data` columns (the original is left as it was)."""
        return Detections(self.xyxy, self.confidence, self.class_id, self.tracker_id, {**self.data, **columns})

    def with_tracker_id(self, tracker_id: np.ndarray) -> "Detections":
        return Detections(self.xyxy, self.confidence, self.class_id, tracker_id, dict(self.data))

    @property
    def area_px2(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    @property
    def bottom_center_xy(self) -> np.ndarray:
        """(N, 2) ground-contact anchor of each box: where an object stands, for zone membership."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @property
    def center_xy(self) -> np.ndarray:
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2], axis=1)

    def class_names(self, names: Mapping[int, str] | list[str]) -> list[str]:
        lookup = names if isinstance(names, Mapping) else dict(enumerate(names))
        return [lookup.get(int(c), str(int(c))) for c in self.class_id]

    def to_records(self, names: Mapping[int, str] | list[str] | None = None, ndigits: int = 2) -> list[dict]:
        """JSON-ready rows: ``{"xyxy": [...], "class": name, "class_id": id, "score": s}``."""
        labels = self.class_names(names) if names is not None else [str(int(c)) for c in self.class_id]
        rows = []
        for i in range(len(self)):
            row = {
                "xyxy": [round(float(v), ndigits) for v in self.xyxy[i]],
                "class": labels[i],
                "class_id": int(self.class_id[i]),
                "score": round(float(self.confidence[i]), 4),
            }
            if self.tracker_id is not None:
                row["tracker_id"] = int(self.tracker_id[i])
            rows.append(row)
        return rows
