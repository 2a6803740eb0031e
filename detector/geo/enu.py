"""WGS84 ↔ a local east-north-up frame in metres, through pymap3d (the one place the project does geodesy).

A flight's local frame has its origin at the take-off point (the first telemetry sample) at ground level.
Heights passed to `LocalFrame.to_enu` must be in the same datum as ``h0_m`` (ellipsoidal if `h0_m` is
ellipsoidal; any datum works as long as both agree, because only the difference enters at these distances).

The frame is a tangent plane: 1 km from the origin the level ground lies 8 cm below it, 5 km away 2 m.
`detector.geo.georef` therefore places the camera at its *relative altitude above the ground below it*
rather than at the tangent-plane ``up`` of its GPS height; the horizontal error of that choice is under
2 mm at 5 km.

Example:
    >>> frame = LocalFrame(31.2304, 121.4737, 4.0)
    >>> e, n, u = frame.to_enu(31.2304 + 0.001, 121.4737, 4.0)
    >>> round(float(n), 1), round(float(e), 6)  # 0.001° of latitude is about 111 m
    (110.9, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymap3d

__all__ = ["LocalFrame"]


@dataclass(frozen=True)
class LocalFrame:
    """A local east-north-up frame on the WGS84 ellipsoid.

    Attributes:
        lat0_deg: Latitude of the origin, degrees.
        lon0_deg: Longitude of the origin, degrees.
        h0_m: Height of the origin (the take-off ground), metres.
    """

    lat0_deg: float
    lon0_deg: float
    h0_m: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat0_deg) and -90.0 <= self.lat0_deg <= 90.0):
            raise ValueError(f"LocalFrame.lat0_deg must lie within [-90, 90], got {self.lat0_deg}")
        if not (math.isfinite(self.lon0_deg) and -180.0 <= self.lon0_deg <= 180.0):
            raise ValueError(f"LocalFrame.lon0_deg must lie within [-180, 180], got {self.lon0_deg}")
        if not math.isfinite(self.h0_m):
            raise ValueError(f"LocalFrame.h0_m must be finite, got {self.h0_m}")

    def to_enu(
        self, lat_deg: np.ndarray | float, lon_deg: np.ndarray | float, h_m: np.ndarray | float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """WGS84 → ``(east_m, north_m, up_m)``, element-wise over arrays; `h_m` defaults to ``h0_m``."""
        lat = np.asarray(lat_deg, np.float64)
        lon = np.asarray(lon_deg, np.float64)
        h = np.full(np.broadcast(lat, lon).shape, self.h0_m) if h_m is None else np.asarray(h_m, np.float64)
        e, n, u = pymap3d.geodetic2enu(lat, lon, h, self.lat0_deg, self.lon0_deg, self.h0_m)
        return np.asarray(e), np.asarray(n), np.asarray(u)

    def to_geodetic(
        self, east_m: np.ndarray | float, north_m: np.ndarray | float, up_m: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(east_m, north_m, up_m)`` → ``(lat_deg, lon_deg, h_m)``, element-wise over arrays."""
        e = np.asarray(east_m, np.float64)
        n = np.asarray(north_m, np.float64)
        u = np.broadcast_to(np.asarray(up_m, np.float64), np.broadcast(e, n).shape)
        lat, lon, h = pymap3d.enu2geodetic(e, n, u, self.lat0_deg, self.lon0_deg, self.h0_m)
        return np.asarray(lat), np.asarray(lon), np.asarray(h)

    def en_to_lonlat(self, en_m: np.ndarray) -> np.ndarray:
        """(K, 2) east/north metres on the ground → (K, 2) ``[lon_deg, lat_deg]`` (GeoJSON order)."""
        en = np.asarray(en_m, np.float64).reshape(-1, 2)
        lat, lon, _ = self.to_geodetic(en[:, 0], en[:, 1], 0.0)
        return np.column_stack([lon, lat])
