"""Camera intrinsics of common DJI cameras, from the maker's published figures.

Each row quotes the figures DJI publishes on the product's specification page (sensor type, effective pixels,
field of view, 35 mm equivalent, still size) and says which of its millimetre fields are *derived* from them.
DJI rarely publishes the true focal length or the sensor's size in millimetres; where it does not:

- the sensor size is the nominal size of the published optical format (1-inch type 13.2 × 8.8 mm, 4/3 type
  17.3 × 13.0 mm, 1/2.3-inch type 6.17 × 4.55 mm) or, where DJI gives the pixel pitch, pitch × pixels;
- the focal length is derived from the published diagonal field of view (or, where DJI gives the field of
  view only as "about", from the 35 mm equivalent) over the still image's diagonal, so that the row
  reproduces the maker's field of view exactly. The geometry depends only on the focal length in pixels,
  ``focal_mm / sensor_width_mm × width_px``, so a nominal sensor width costs no accuracy.

DJI's figures are rounded (84°, "24 mm"): the focal length in pixels is good to about ±1–2 %, which scales
ground offsets from the image centre by the same share (see the error budget in `detector.geo.georef`).
A calibrated focal length (DJI XMP ``CalibratedFocalLength``, or the config) beats any row here.

Cameras the brief asked for but whose published figures could not be confirmed from a copy of the maker's page
in this session are **left out** rather than guessed: Mavic 3 Enterprise (wide), Mini 3 Pro, Mini 4 Pro,
Phantom 4 Advanced, Phantom 4 RTK, Matrice 30 (wide), Zenmuse H20 (wide). Pass their intrinsics in the config
(`CameraIntrinsics.from_35mm_equivalent` / `from_hfov`) until a row is added.

Example:
    >>> p = get_profile("FC6310")  # EXIF Model of a Phantom 4 Pro still
    >>> p.name, round(p.intrinsics().fx_px), round(p.intrinsics(3840, 2160).fx_px)
    ('phantom_4_pro', 3648, 2560)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from detector.errors import StreetwatchError
from detector.geo.camera import FULL_FRAME_DIAGONAL_MM, CameraIntrinsics

__all__ = ["PROFILES", "CameraProfile", "UnknownCameraError", "get_profile", "profile_names"]


class UnknownCameraError(StreetwatchError, ValueError):
    """A camera profile name or EXIF model that is not in the table."""


@dataclass(frozen=True)
class CameraProfile:
    """One camera's geometry at its native still size.

    Attributes:
        name: Profile name used in configs and ``--camera`` (snake_case).
        title: Human name, e.g. "DJI Mavic 3 (Hasselblad L2D-20c)".
        exif_models: EXIF ``Model`` strings its stills carry (matched case- and punctuation-insensitively).
        sensor_width_mm: Width of the sensor area the native still covers.
        sensor_height_mm: Its height.
        focal_mm: True focal length.
        still_width_px: Native still width.
        still_height_px: Native still height.
        published_dfov_deg: Diagonal field of view as DJI publishes it (None where not published).
        published_f35_mm: 35 mm equivalent focal length as DJI publishes it.
        source: The maker's page the figures come from (title and address).
        published: The figures as the page states them.
        derived: Which fields are derived, and how.
    """

    name: str
    title: str
    exif_models: tuple[str, ...]
    sensor_width_mm: float
    sensor_height_mm: float
    focal_mm: float
    still_width_px: int
    still_height_px: int
    published_dfov_deg: float | None
    published_f35_mm: float
    source: str
    published: str
    derived: str

    def intrinsics(self, width_px: int | None = None, height_px: int | None = None) -> CameraIntrinsics:
        """Intrinsics of the native still, or of a video frame / resized image of `width_px` × `height_px`.

        Video frames keep the full sensor width (the DJI 16:9 modes crop top and bottom); see
        `CameraIntrinsics.scaled`.
        """
        still = CameraIntrinsics.from_sensor(
            self.sensor_width_mm, self.focal_mm, self.still_width_px, self.still_height_px
        )
        if width_px is None and height_px is None:
            return still
        if width_px is None or height_px is None:
            raise ValueError(f"camera profile {self.name!r}: give both width_px and height_px, or neither")
        return still.scaled(width_px, height_px)

    @property
    def dfov_deg(self) -> float:
        """Diagonal field of view of the native still implied by the row."""
        intr = self.intrinsics()
        return math.degrees(2.0 * math.atan(math.hypot(intr.width_px, intr.height_px) / 2.0 / intr.fx_px))

    @property
    def f35_mm(self) -> float:
        """35 mm equivalent focal length (diagonal) implied by the row."""
        intr = self.intrinsics()
        return intr.fx_px * FULL_FRAME_DIAGONAL_MM / math.hypot(intr.width_px, intr.height_px)


def _focal_from_dfov(sensor_width_mm: float, width_px: int, height_px: int, dfov_deg: float) -> float:
    """True focal length that gives `dfov_deg` across the still's diagonal (square pixels)."""
    diag_mm = sensor_width_mm * math.hypot(width_px, height_px) / width_px
    return diag_mm / 2.0 / math.tan(math.radians(dfov_deg) / 2.0)


def _focal_from_f35(sensor_width_mm: float, width_px: int, height_px: int, f35_mm: float) -> float:
    diag_mm = sensor_width_mm * math.hypot(width_px, height_px) / width_px
    return f35_mm * diag_mm / FULL_FRAME_DIAGONAL_MM


_NOMINAL_1_INCH = (13.2, 8.8)
_NOMINAL_4_3 = (17.3, 13.0)
_NOMINAL_1_2_3_INCH = (6.17, 4.55)

_ROWS = (
    CameraProfile(
        name="mavic_3",
        title="DJI Mavic 3 (Hasselblad L2D-20c)",
        exif_models=("L2D-20c",),
        sensor_width_mm=_NOMINAL_4_3[0],
        sensor_height_mm=_NOMINAL_4_3[1],
        focal_mm=_focal_from_dfov(_NOMINAL_4_3[0], 5280, 3956, 84.0),
        still_width_px=5280,
        still_height_px=3956,
        published_dfov_deg=84.0,
        published_f35_mm=24.0,
        source="DJI Mavic 3 - Specs (https://www.dji.com/mavic-3/specs)",
        published="Hasselblad camera: 4/3 CMOS, effective pixels 20 MP; FOV 84°, format equivalent 24 mm; "
        "max image size 5280×3956",
        derived="sensor size: nominal 4/3 type; focal_mm: from FOV 84° over the still diagonal",
    ),
    CameraProfile(
        name="air_2s",
        title="DJI Air 2S",
        exif_models=("FC3411",),
        sensor_width_mm=5472 * 2.4e-3,
        sensor_height_mm=3648 * 2.4e-3,
        focal_mm=_focal_from_dfov(5472 * 2.4e-3, 5472, 3648, 88.0),
        still_width_px=5472,
        still_height_px=3648,
        published_dfov_deg=88.0,
        published_f35_mm=22.0,
        source="DJI Air 2S - Specs (https://www.dji.com/air-2s/specs)",
        published='1" CMOS, effective pixels 20 MP, 2.4 μm pixel size; FOV 88°, 35 mm format equivalent 22 mm; '
        "still image size 5472×3648 (3:2), 5472×3078 (16:9)",
        derived="sensor size: 2.4 μm pitch × pixels; focal_mm: from FOV 88° over the still diagonal",
    ),
    CameraProfile(
        name="mini_2",
        title="DJI Mini 2",
        exif_models=("FC7303",),
        sensor_width_mm=_NOMINAL_1_2_3_INCH[0],
        sensor_height_mm=_NOMINAL_1_2_3_INCH[1],
        focal_mm=_focal_from_dfov(_NOMINAL_1_2_3_INCH[0], 4000, 3000, 83.0),
        still_width_px=4000,
        still_height_px=3000,
        published_dfov_deg=83.0,
        published_f35_mm=24.0,
        source="DJI Mini 2 - Specs (https://www.dji.com/mini-2/specs)",
        published='1/2.3" CMOS, effective pixels 12 MP; FOV 83°, 35 mm format equivalent 24 mm; '
        "image size 4:3 4000×3000, 16:9 4000×2250",
        derived="sensor size: nominal 1/2.3-inch type; focal_mm: from FOV 83° over the still diagonal",
    ),
    CameraProfile(
        name="mavic_2_pro",
        title="DJI Mavic 2 Pro (Hasselblad L1D-20c)",
        exif_models=("L1D-20c",),
        sensor_width_mm=_NOMINAL_1_INCH[0],
        sensor_height_mm=_NOMINAL_1_INCH[1],
        focal_mm=_focal_from_f35(_NOMINAL_1_INCH[0], 5472, 3648, 28.0),
        still_width_px=5472,
        still_height_px=3648,
        published_dfov_deg=77.0,
        published_f35_mm=28.0,
        source="DJI Mavic 2 - Specs (https://www.dji.com/mavic-2/specs), Mavic 2 Pro camera",
        published='1" CMOS, effective pixels 20 million; FOV about 77°, 35 mm format equivalent 28 mm; '
        "image size 5472×3648",
        derived="sensor size: nominal 1-inch type; focal_mm: from the 28 mm equivalent (the FOV is given only "
        "as 'about 77°'; 28 mm means 75.4°)",
    ),
    CameraProfile(
        name="mavic_pro",
        title="DJI Mavic Pro",
        exif_models=("FC220",),
        sensor_width_mm=_NOMINAL_1_2_3_INCH[0],
        sensor_height_mm=_NOMINAL_1_2_3_INCH[1],
        focal_mm=_focal_from_dfov(_NOMINAL_1_2_3_INCH[0], 4000, 3000, 78.8),
        still_width_px=4000,
        still_height_px=3000,
        published_dfov_deg=78.8,
        published_f35_mm=26.0,
        source="DJI Mavic Pro - Specs (https://www.dji.com/mavic/info#specs)",
        published='1/2.3" CMOS, effective pixels 12.35 M; FOV 78.8° 26 mm (35 mm format equivalent) f/2.2; '
        "still image size 4000×3000",
        derived="sensor size: nominal 1/2.3-inch type; focal_mm: from FOV 78.8° over the still diagonal",
    ),
    CameraProfile(
        name="phantom_4_pro",
        title="DJI Phantom 4 Pro / Pro V2.0",
        exif_models=("FC6310", "FC6310S"),
        sensor_width_mm=_NOMINAL_1_INCH[0],
        sensor_height_mm=_NOMINAL_1_INCH[1],
        focal_mm=8.8,
        still_width_px=5472,
        still_height_px=3648,
        published_dfov_deg=84.0,
        published_f35_mm=24.0,
        source="DJI Phantom 4 Pro - Specs (https://www.dji.com/phantom-4-pro/info#specs)",
        published='1" CMOS, effective pixels 20 M; FOV 84° 8.8 mm/24 mm (35 mm format equivalent); '
        "3:2 image size 5472×3648",
        derived="sensor size: nominal 1-inch type (with the published 8.8 mm it reproduces FOV 84°)",
    ),
    CameraProfile(
        name="zenmuse_p1_35mm",
        title="DJI Zenmuse P1 with DL 35mm F2.8 LS ASPH",
        exif_models=("ZenmuseP1",),
        sensor_width_mm=35.9,
        sensor_height_mm=24.0,
        focal_mm=35.0,
        still_width_px=8192,
        still_height_px=5460,
        published_dfov_deg=63.5,
        published_f35_mm=35.0,
        source="Zenmuse P1 - Specs - DJI Enterprise (https://enterprise.dji.com/zenmuse-p1/specs)",
        published="sensor size (still) 35.9×24 mm (full frame), effective pixels 45 MP, pixel size 4.4 μm; "
        "DJI DL 35mm F2.8 LS ASPH, FOV 63.5°; photo size 3:2 8192×5460",
        derived="none (the 35 mm lens on a 35.9 mm wide sensor gives 63.3°, within the published rounding)",
    ),
)

PROFILES: dict[str, CameraProfile] = {row.name: row for row in _ROWS}
"""Profiles by name."""


def _key(text: str) -> str:
    """Compare names and EXIF models without case, spaces or punctuation ("DJI FC-6310" == "fc6310")."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


_BY_KEY: dict[str, CameraProfile] = {}
for _row in _ROWS:
    for _k in (_row.name, *_row.exif_models):
        _BY_KEY[_key(_k)] = _row


def profile_names() -> list[str]:
    """Every profile name and EXIF model that `get_profile` accepts, sorted."""
    return sorted([*PROFILES, *(m for row in _ROWS for m in row.exif_models)], key=str.lower)


def get_profile(name_or_model: str) -> CameraProfile:
    """Look a camera up by profile name (``mavic_3``) or EXIF ``Model`` (``FC6310``, ``DJI FC6310``).

    Raises:
        UnknownCameraError: Not in the table; the message lists every accepted name.
    """
    key = _key(name_or_model)
    row = _BY_KEY.get(key) or (_BY_KEY.get(key[3:]) if key.startswith("dji") else None)
    if row is None:
        models = sorted((m for row in _ROWS for m in row.exif_models), key=str.lower)
        raise UnknownCameraError(
            f"unknown camera {name_or_model!r}: known profiles are {', '.join(sorted(PROFILES))}; "
            f"known EXIF models are {', '.join(models)} (or give the camera's intrinsics in the config)"
        )
    return row
