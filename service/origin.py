"""Where a case comes from: a fixed street camera or a drone flight, and where its case is located.

`service.cases.CaseStore.ingest` takes a `CaseOrigin` instead of a camera's configuration, so the case store
knows no configuration types and a drone finding becomes a case through the same door as a camera's
violation. The store copies the origin into its ``cameras`` or ``flights`` table (cases outlive configuration
edits and finished jobs) and locates the case there, unless the origin carries a location of its own for
this one case (`CaseOrigin.at`): a drone finding lies wherever its pixels met the ground, not at the
flight's take-off point, and a camera with a position may get its grid cell from a grid layer.

The conversion from a camera's configuration lives beside the configuration (`service.config.camera_origin`);
this module imports nothing of the service, so the drone pipeline can build origins without the database.

Example:
    >>> flight = CaseOrigin.flight("f-20260601-01", name="Rooftops, Xuhui", timezone="Asia/Shanghai")
    >>> origin = flight.at(31.19502, 121.43671, grid_code="310104-017")
    >>> loc = origin.location()
    >>> loc.lat_deg, loc.lon_deg, loc.grid_code
    (31.19502, 121.43671, '310104-017')
    >>> CaseOrigin.camera("cam-1", address="88 Nanjing Rd").location().address
    '88 Nanjing Rd'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["CaseLocation", "CaseOrigin", "ORIGIN_KINDS", "OriginKind", "MAX_ID_LEN"]

OriginKind = Literal["camera", "flight"]
ORIGIN_KINDS: tuple[OriginKind, ...] = ("camera", "flight")
# The width of ``cameras.id`` and ``flights.id`` (and of ``cases.camera_id`` / ``cases.flight_id``).
MAX_ID_LEN = 64


def _check_lat_lon(owner: str, lat_deg: float | None, lon_deg: float | None) -> None:
    if (lat_deg is None) != (lon_deg is None):
        raise ValueError(f"{owner}: lat_deg and lon_deg go together (got lat_deg={lat_deg}, lon_deg={lon_deg})")
    if lat_deg is None or lon_deg is None:
        return
    if not (math.isfinite(lat_deg) and -90.0 <= lat_deg <= 90.0):
        raise ValueError(f"{owner}: lat_deg must lie within [-90, 90], got {lat_deg}")
    if not (math.isfinite(lon_deg) and -180.0 <= lon_deg <= 180.0):
        raise ValueError(f"{owner}: lon_deg must lie within [-180, 180], got {lon_deg}")


@dataclass(frozen=True)
class CaseLocation:
    """Where one case is: WGS84 position, street address and grid cell (单元网格) code.

    Attributes:
        lat_deg: WGS84 latitude in degrees (None: unknown; then `lon_deg` is None too).
        lon_deg: WGS84 longitude in degrees.
        address: Street address shown on the case ("" when none).
        grid_code: Grid cell code of the digital case system ("" when none).
    """

    lat_deg: float | None = None
    lon_deg: float | None = None
    address: str = ""
    grid_code: str = ""

    def __post_init__(self) -> None:
        _check_lat_lon("case location", self.lat_deg, self.lon_deg)


@dataclass(frozen=True)
class CaseOrigin:
    """The camera or flight a violation comes from, as the case store records it.

    Build one with `CaseOrigin.camera` or `CaseOrigin.flight`; `at` gives it a location for one case.

    Attributes:
        kind: ``camera`` or ``flight``.
        source_id: The camera id or the flight id (at most 64 characters); a violation ingested with this
            origin must carry it as its ``camera_id``.
        name: Human-readable name.
        lat_deg: Where the origin is: a fixed camera's position, a flight's take-off or area centre (None:
            unknown).
        lon_deg: Longitude of the same.
        address: Street address (camera) or area description (flight).
        grid_code: Grid cell code of the origin's place ("" when none).
        source: Camera: stream URL or ``push``; flight: the video file or stills folder it was read from.
        timezone: IANA time zone of the place (schedules and local times).
        enabled: Cameras only: whether the camera is processed (copied to ``cameras.enabled``).
        case_location: A location for the case at hand that overrides the origin's own (see `at`); None:
            the case is located at the origin.
    """

    kind: OriginKind
    source_id: str
    name: str = ""
    lat_deg: float | None = None
    lon_deg: float | None = None
    address: str = ""
    grid_code: str = ""
    source: str = ""
    timezone: str = "UTC"
    enabled: bool = True
    case_location: CaseLocation | None = None

    def __post_init__(self) -> None:
        if self.kind not in ORIGIN_KINDS:
            raise ValueError(f"case origin: kind must be 'camera' or 'flight', got {self.kind!r}")
        if not self.source_id or len(self.source_id) > MAX_ID_LEN:
            raise ValueError(f"case origin: {self.kind} id must be 1..{MAX_ID_LEN} characters, got "
                             f"{self.source_id!r}")
        _check_lat_lon(f"{self.kind} {self.source_id}", self.lat_deg, self.lon_deg)

    @classmethod
    def camera(cls, camera_id: str, *, name: str = "", source: str = "", lat_deg: float | None = None,
               lon_deg: float | None = None, address: str = "", grid_code: str = "", timezone: str = "UTC",
               enabled: bool = True) -> "CaseOrigin":
        """A fixed camera (its cases are located at the camera unless `at` says otherwise)."""
        return cls("camera", camera_id, name=name, lat_deg=lat_deg, lon_deg=lon_deg, address=address,
                   grid_code=grid_code, source=source, timezone=timezone, enabled=enabled)

    @classmethod
    def flight(cls, flight_id: str, *, name: str = "", source: str = "", lat_deg: float | None = None,
               lon_deg: float | None = None, address: str = "", grid_code: str = "",
               timezone: str = "UTC") -> "CaseOrigin":
        """A drone flight; give each finding its own position with `at`."""
        return cls("flight", flight_id, name=name, lat_deg=lat_deg, lon_deg=lon_deg, address=address,
                   grid_code=grid_code, source=source, timezone=timezone)

    def at(self, lat_deg: float, lon_deg: float, *, grid_code: str | None = None,
           address: str | None = None) -> "CaseOrigin":
        """This origin, with the case located at (`lat_deg`, `lon_deg`) instead of at the origin.

        Args:
            lat_deg: WGS84 latitude of the case (a drone finding's ground point), degrees.
            lon_deg: WGS84 longitude, degrees.
            grid_code: The case's grid cell; None keeps the origin's (a finding outside every cell of the
                grid layer should pass "" rather than inherit a cell it is not in).
            address: The case's address; None keeps the origin's.
        """
        return replace(self, case_location=CaseLocation(
            lat_deg=lat_deg, lon_deg=lon_deg, address=self.address if address is None else address,
            grid_code=self.grid_code if grid_code is None else grid_code))

    def location(self) -> CaseLocation:
        """Where a case of this origin is: the per-case location when set, else the origin's own."""
        if self.case_location is not None:
            return self.case_location
        return CaseLocation(self.lat_deg, self.lon_deg, self.address, self.grid_code)

    def label(self) -> str:
        """``camera <id>`` or ``flight <id>``, as case descriptions name the origin."""
        return f"{self.kind} {self.source_id}"
