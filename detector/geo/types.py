"""Map-space types shared by the drone rooms (see `detector.geo`).

Positions inside one flight are metres in a local east-north-up frame (`detector.geo.enu.LocalFrame`) whose
origin is the take-off point (or the first telemetry sample) at ground level; WGS84 degrees appear only at the
boundary (GeoJSON out, telemetry in).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroundDetection", "MapFinding"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class GroundDetection:
    """One detection of one sampled frame, placed on the ground.

    Attributes:
        frame_index: Index of the video frame (or still) it was seen in.
        t_s: Flight time of that frame, seconds from the start of the video (or of the first still).
        class_name: Detector class (pipeline name), e.g. ``illegal_structure``, ``stall``, ``bicycle``.
        score: Detector confidence.
        xyxy: (4,) box in frame pixels.
        east_m: Ground contact point (bottom-centre ray for oblique views, centre for nadir), metres east.
        north_m: Same, metres north.
        footprint_en_m: (K, 2) the box's outline on the ground, metres east/north (K >= 3), counter-clockwise.
        range_m: Distance from the camera to the ground point (evidence with the shortest range is sharpest).
    """

    frame_index: int
    t_s: float
    class_name: str
    score: float
    xyxy: np.ndarray
    east_m: float
    north_m: float
    footprint_en_m: np.ndarray
    range_m: float


@dataclass(frozen=True, eq=False)
class MapFinding:
    """One physical object on the map, merged over every frame that saw it.

    Attributes:
        finding_id: Stable id within the flight (``<flight_id>:<class>:<n>``).
        class_name: Detector class.
        lat_deg: WGS84 latitude of the merged ground point.
        lon_deg: WGS84 longitude.
        east_m: Merged point, local frame.
        north_m: Merged point, local frame.
        footprint_en_m: (K, 2) merged outline on the ground, local frame.
        footprint_lonlat_deg: (K, 2) the same outline as [lon, lat] (GeoJSON order).
        score: Best (highest) per-frame score... see `merge` for the exact aggregate.
        n_frames: Number of sampled frames in which it was detected.
        first_t_s: Flight time of the first sighting.
        last_t_s: Flight time of the last sighting.
        best: The sighting kept as evidence.
        members: Every sighting merged into it.
    """

    finding_id: str
    class_name: str
    lat_deg: float
    lon_deg: float
    east_m: float
    north_m: float
    footprint_en_m: np.ndarray
    footprint_lonlat_deg: np.ndarray
    score: float
    n_frames: int
    first_t_s: float
    last_t_s: float
    best: GroundDetection
    members: tuple[GroundDetection, ...] = field(default_factory=tuple)
