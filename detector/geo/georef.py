"""Detections of one frame → points and outlines on the ground (the local ENU frame of the flight).

Each box is turned into a `GroundDetection`: a ground contact point (where the object stands) and the box's
outline (corners and edge midpoints) projected onto the ground plane ``up = ground_up_m``, through the pinhole
model of `detector.geo.camera`. Boxes whose rays do not meet the ground within range are skipped and counted
by reason, never placed at a wrong point.

**Contact point: centre or bottom-centre.** The switch is per box, on the depression angle δ of the ray
through the box centre (the angle below the horizon), at ``CONTACT_SWITCH_DEPRESSION_DEG`` = 45°:

- δ ≥ 45° (near-nadir): the box centre. Seen from above, the box is the object's top and footprint, so its
  centre is the object's centre; an object of height H displaces it by about ``H·cot(δ)/2`` (≤ H/2).
- δ < 45° (oblique): the bottom-centre, which is where the object's near base meets the ground; it is off by
  about D/2, half the object's depth along the line of sight.

The centre is the better anchor when ``H·cot(δ) < D``, i.e. ``tan δ > H/D``. For the classes here H/D is
about 1 (a bicycle 1.1 m tall and 0.6–1.7 m deep, a stall 2.5 m by 2.5 m, a rooftop shed 3 m by 3–10 m),
hence 45°. Flat things (markings, the synthetic flight generator's orthophoto objects) are placed exactly by
the centre at any angle; the oblique bottom-centre then costs D/2.

**Error budget for real flights** (the geometry is exact; the inputs are not). For a point seen at
slant range r, depression δ (so ``r = h / sin δ``) and horizontal distance ``d = h·cot δ`` from the point
below the camera, with h the height above the ground:

=======================  ===================================  ==================================================
source                   ground error (horizontal)            typical size
=======================  ===================================  ==================================================
GPS position (no RTK)    σ_gps, the same for every point      1–3 m (RTK: 0.02–0.05 m); a bias common to the
                                                              frames of a few minutes, so it shifts a flight's
                                                              findings together and matters between flights
altitude / terrain Δh    Δh·cot δ = Δh·tan(θ), θ = 90° − δ    barometric drift 0.5–2 m, or ground not at the
                         (θ: view angle from the vertical)    take-off elevation: 0 at nadir, 0.73·Δh at the edge
                                                              of a 72° wide nadir frame, 1.7·Δh at δ = 30°
gimbal pitch Δθ          h·Δθ / sin²δ = r·Δθ / sin δ          1° at 50 m: 0.87 m at nadir, 3.5 m at δ = 30°
yaw (heading) Δψ         d·Δψ (rotation about the point       2° (compass, no RTK heading): 0 below the camera,
                         below the camera)                    1.3 m at d = 36 m (edge of a nadir frame at 50 m),
                                                              3 m at d = 87 m (centre of a −30° view at 50 m)
gimbal roll Δφ           ≈ r·Δφ across the line of sight      0.5°: 0.44 m at 50 m nadir
time offset Δt           v·Δt (+ d·ω·Δt while turning)        SRT rows are per frame; a 0.1 s offset at
(video vs telemetry)                                          10 m/s is 1 m
focal length ε (rel.)    ε·d' (d': distance from the          published rounding ±1–2 %: 0.7 m at 36 m
                         image-centre ground point)
lens distortion          residual px × GSD                    a few px at the corners: < 0.1 m at 50 m
object height            contact-point rule above             ≤ H/2 (centre) or D/2 (bottom-centre)
=======================  ===================================  ==================================================

The terms are independent, so they add in quadrature: ``σ ≈ sqrt(σ_gps² + (Δh·cot δ)² + (r·Δθ/sin δ)² +
(d·Δψ)² + (v·Δt)² + (ε·d')²)``. For a 50 m nadir flight without RTK (σ_gps 2 m, Δh 1 m, Δθ 1°, Δψ 2°,
0.03 s at 10 m/s, 1.5 %) that is about 2.2 m at the image centre and 2.9 m at the frame edge, dominated by GPS;
with RTK it falls to 0.9–2.1 m, dominated by the attitude terms. Within one flight the GPS bias is common, so the
frame-to-frame jitter that `detector.geo.merge` must absorb is the attitude/altitude/time part: ~1 m near
nadir, several metres in oblique views. To check a real flight: fly over a surveyed point (or a marked
object), run the flight and compare the finding's position with the truth.

Example:
    >>> import numpy as np
    >>> from detector.types import Detections, FrameGeo
    >>> from detector.geo.camera import CameraIntrinsics
    >>> from detector.geo.enu import LocalFrame
    >>> local = LocalFrame(31.2304, 121.4737, 0.0)
    >>> geo = FrameGeo(31.2304, 121.4737, alt_m=50.0, yaw_deg=0.0, pitch_deg=-90.0, roll_deg=0.0)
    >>> dets = Detections(xyxy=[[950, 0, 1050, 100]], confidence=[0.9], class_id=[0],
    ...                   data={"class_name": np.array(["bicycle"])})
    >>> found, skipped = georeference(dets, geo, CameraIntrinsics.from_hfov(90, 2000, 1000), local, 7, 1.5)
    >>> round(found[0].east_m, 3), round(found[0].north_m, 3), dict(skipped)  # 450 px above centre, f = 1000 px
    (0.0, 22.5, {})
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from detector.geo.camera import (
    DEFAULT_MAX_RANGE_M,
    CameraIntrinsics,
    CameraPose,
    box_outline_px,
    image_polygon_to_ground,
    pixel_rays,
    pixel_to_ground,
)
from detector.geo.enu import LocalFrame
from detector.geo.types import GroundDetection
from detector.types import Detections, FrameGeo

__all__ = ["CONTACT_SWITCH_DEPRESSION_DEG", "georeference", "pose_from_geo"]

CONTACT_SWITCH_DEPRESSION_DEG = 45.0
"""Boxes whose centre ray is at least this far below the horizon are placed by their centre, others by their
bottom-centre (see the module docstring); classes in `CONTACT_SWITCH_DEPRESSION_DEG_BY_CLASS` have their own."""

CONTACT_SWITCH_DEPRESSION_DEG_BY_CLASS: dict[str, float] = {
    # Rooftop sheds and new builds are wide and low (3 m high, 5-10 m deep: H/D about 0.5, atan 0.5 = 27°): their
    # box centre stays the better anchor down to shallow views, where the bottom-centre would cost half a
    # structure's depth (2.5-5 m). Measured on synthetic flights at pitch -60 (benchmarks/results/drone.md).
    "illegal_structure": 27.0,
}
"""The switch angle of classes whose height-to-depth ratio is far from 1 (the switch is atan(H / D))."""


def contact_switch_deg(class_name: str) -> float:
    """The depression angle below which a box of `class_name` is placed by its bottom-centre."""
    return CONTACT_SWITCH_DEPRESSION_DEG_BY_CLASS.get(class_name, CONTACT_SWITCH_DEPRESSION_DEG)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def pose_from_geo(
    geo: FrameGeo | None, local: LocalFrame, ground_up_m: float = 0.0
) -> tuple[CameraPose | None, str]:
    """The camera pose of a frame in the flight's local frame, or the reason there is none.

    The camera is placed at the ENU east/north of its GPS position and at its **relative altitude** above the
    take-off point (``up = alt_m``), not at the tangent-plane ``up`` of its GPS height: relative altitude is
    what DJI measures (barometer), and it follows the curved level ground (see `detector.geo.enu`). A missing
    roll is taken as 0 (gimbals hold the horizon).

    Returns:
        ``(pose, "")``, or ``(None, reason)`` with reason one of ``no_telemetry``, ``missing_alt``,
        ``missing_yaw``, ``missing_pitch``, ``not_above_ground``.
    """
    if geo is None:
        return None, "no_telemetry"
    for field, reason in (("alt_m", "missing_alt"), ("yaw_deg", "missing_yaw"), ("pitch_deg", "missing_pitch")):
        if not _finite(getattr(geo, field)):
            return None, reason
    if not geo.alt_m - ground_up_m > 0:
        return None, "not_above_ground"
    east, north, _ = local.to_enu(geo.lat_deg, geo.lon_deg)
    roll = geo.roll_deg if _finite(geo.roll_deg) else 0.0
    pose = CameraPose(float(east), float(north), float(geo.alt_m), float(geo.yaw_deg), float(geo.pitch_deg), roll)
    return pose, ""


def georeference(
    detections: Detections,
    geo: FrameGeo | None,
    intr: CameraIntrinsics,
    local: LocalFrame,
    frame_index: int,
    t_s: float,
    ground_up_m: float = 0.0,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
) -> tuple[list[GroundDetection], Counter[str]]:
    """Place every box of one frame on the ground.

    Args:
        detections: Boxes of the frame, in the pixels of an image of ``intr.width_px × intr.height_px``;
            must carry a ``class_name`` data column.
        geo: The frame's pose (`detector.types.FrameGeo`); None when the frame has no telemetry.
        intr: Intrinsics of the image the boxes are in (after any resize; see `CameraIntrinsics.scaled`).
        local: The flight's local frame.
        frame_index: Index of the frame in the video (or of the still).
        t_s: Flight time of the frame, seconds.
        ground_up_m: Ground elevation relative to the take-off point, metres.
        max_range_m: Rays meeting the ground farther than this (slant range) are not used.

    Returns:
        ``(ground_detections, skipped)``: one `GroundDetection` per placed box (in box order) and the number of
        skipped boxes by reason: the pose reasons of `pose_from_geo`, ``above_horizon``, ``beyond_max_range``,
        ``degenerate_footprint``.

    Raises:
        ValueError: `detections` has no ``class_name`` column.
    """
    if len(detections) and "class_name" not in detections.data:
        raise ValueError("georeference: detections need a 'class_name' data column (the detector class names)")
    skipped: Counter[str] = Counter()
    if not len(detections):
        return [], skipped
    pose, reason = pose_from_geo(geo, local, ground_up_m)
    if pose is None:
        skipped[reason] += len(detections)
        return [], skipped

    xyxy = detections.xyxy.astype(np.float64)
    centre = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2.0, (xyxy[:, 1] + xyxy[:, 3]) / 2.0], axis=1)
    bottom = np.stack([centre[:, 0], xyxy[:, 3]], axis=1)
    depression_deg = np.degrees(np.arcsin(np.clip(-pixel_rays(intr, pose, centre)[:, 2], -1.0, 1.0)))
    switch_deg = np.array([contact_switch_deg(str(n)) for n in detections.data["class_name"]])
    contact = np.where((depression_deg >= switch_deg)[:, None], centre, bottom)
    hits = pixel_to_ground(intr, pose, contact, ground_up_m, max_range_m)

    names = detections.data["class_name"]
    out: list[GroundDetection] = []
    for i in range(len(detections)):
        if not hits.valid[i]:
            skipped[hits.reason[i]] += 1
            continue
        footprint = image_polygon_to_ground(intr, pose, box_outline_px(xyxy[i]), ground_up_m, max_range_m)
        if len(footprint) < 3:
            skipped["degenerate_footprint"] += 1  # a zero-width box
            continue
        out.append(
            GroundDetection(
                frame_index=int(frame_index),
                t_s=float(t_s),
                class_name=str(names[i]),
                score=float(detections.confidence[i]),
                xyxy=xyxy[i].copy(),
                east_m=float(hits.en_m[i, 0]),
                north_m=float(hits.en_m[i, 1]),
                footprint_en_m=footprint,
                range_m=float(hits.range_m[i]),
            )
        )
    return out, skipped
