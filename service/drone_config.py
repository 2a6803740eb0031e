"""The configuration file's ``drone`` and ``grid`` sections: how flights are analysed and which map layers apply.

Part of the one configuration file (`service.config.AppConfig`); a file for drone work alone needs only
``config_version`` and ``drone``. Every model forbids unknown keys, every field is described and bounded, and
layer files are checked when the configuration is validated (`streetwatch config validate`), each problem naming
the file, the feature and the reason. Relative layer paths are relative to the configuration file.

Example (YAML)::

    config_version: 1
    grid: {path: layers/grid.geojson, code_property: code}       # 单元网格: cameras with a position use it too
    drone:
      camera: {profile: mavic3}                                  # or sensor_width_mm + focal_mm, or hfov_deg
      telemetry: {timezone: Asia/Shanghai}                        # DJI writes local time without a zone
      sampling: {overlap_frac: 0.6}
      layers:
        baseline: [layers/approved_structures.geojson]
        previous_flights: [flights/2026-05-01/findings.geojson]   # "比对": what is new since then
        bike_parking: [layers/efences.geojson]
        no_vending: [{path: layers/no_vending.geojson, schedule: [{days: [mon-sun], start: "07:00", end: "22:00"}]}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detector.geo.maprules import MapRulesParams
from detector.schedule import WeeklySchedule, WindowConfig, load_timezone

__all__ = ["DroneCameraConfig", "DroneConfig", "DroneDetectionConfig", "DroneLayersConfig", "DroneSamplingConfig",
           "DroneTelemetryConfig", "GridLayerConfig", "NoVendingLayerConfig"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DroneCameraConfig(_Model):
    """The drone camera's intrinsics: a profile, or the lens and sensor, or the field of view (else from EXIF)."""

    profile: str | None = Field(None, min_length=1, max_length=64,
                                description="A camera profile name or EXIF model (`streetwatch drone --list-cameras`).")
    sensor_width_mm: float | None = Field(None, gt=1, le=100, description="Sensor width, mm (with focal_mm).")
    focal_mm: float | None = Field(None, gt=1, le=1000, description="Lens focal length, mm (with sensor_width_mm).")
    hfov_deg: float | None = Field(None, gt=5, lt=170, description="Horizontal field of view of the frames, degrees.")

    @model_validator(mode="after")
    def _one_way(self) -> "DroneCameraConfig":
        ways = [self.profile is not None, self.sensor_width_mm is not None or self.focal_mm is not None,
                self.hfov_deg is not None]
        if sum(ways) > 1:
            raise ValueError("give one of: profile; sensor_width_mm with focal_mm; hfov_deg")
        if (self.sensor_width_mm is None) != (self.focal_mm is None):
            raise ValueError("sensor_width_mm and focal_mm go together")
        if self.profile is not None:
            from detector.geo.profiles import get_profile

            get_profile(self.profile)  # an unknown camera names the known ones
        return self


class DroneTelemetryConfig(_Model):
    """How telemetry is read and completed."""

    timezone: str = Field("UTC", min_length=1, max_length=64,
                          description="IANA time zone of the drone's clock: DJI SRT and EXIF times are local without "
                                      "a zone (schedules of no-vending areas use it).")
    time_offset_s: float = Field(0.0, ge=-30, le=30,
                                 description="Added to video times before looking up telemetry (a known lag).")
    default_pitch_deg: float = Field(-90.0, ge=-90, le=0,
                                     description="Gimbal pitch when the telemetry has none (-90: nadir).")
    default_yaw_deg: float | None = Field(None, ge=-180, le=360,
                                          description="Camera yaw when neither gimbal, flight yaw nor track gives one.")

    @field_validator("timezone")
    @classmethod
    def _timezone_valid(cls, value: str) -> str:
        load_timezone(value)
        return value


class DroneSamplingConfig(_Model):
    """Which frames are analysed: by ground distance, so consecutive footprints overlap by `overlap_frac`."""

    overlap_frac: float = Field(0.6, ge=0, le=0.95, description="Share of a footprint the next one overlaps.")
    max_interval_s: float = Field(10.0, gt=0, le=600, description="A hovering drone still gives a frame this often.")
    min_interval_s: float = Field(0.2, ge=0, le=60, description="Never two frames closer than this.")


class DroneDetectionConfig(_Model):
    """Detection and placement settings."""

    model: str = Field("aerial", min_length=1, max_length=500, description="Model name, card or .onnx file.")
    conf: float | None = Field(None, ge=0, le=1, description="One score threshold (omit: the card's per class).")
    target_gsd_m: float | None = Field(
        0.035, ge=0.005, le=0.5,
        description="Frames finer than this (m/px at the centre) are shrunk to it first: the model's training scale "
                    "(2-5 cm/px for the shipped aerial model); null: full resolution.")
    tile_overlap_frac: float = Field(0.2, ge=0, le=0.5, description="Overlap of neighbouring tiles.")
    max_range_m: float = Field(300.0, gt=1, le=5000, description="Objects farther than this (slant range) are not "
                                                                 "placed (oblique views).")
    ground_elevation_m: float = Field(0.0, ge=-500, le=500,
                                      description="Ground elevation relative to the take-off point, metres.")
    merge_radius_m: dict[str, float] = Field(default_factory=dict,
                                             description="Per class: sightings closer than this are one object "
                                                         "(omit: the merge defaults, which grow with object size).")
    case_match_radius_m: float = Field(5.0, gt=0, le=100,
                                       description="A finding this close to a case of the same kind from an earlier "
                                                   "flight updates that case instead of opening a new one.")

    @field_validator("merge_radius_m")
    @classmethod
    def _radii(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0 < v <= 100}
        if bad:
            raise ValueError(f"radii must lie within (0, 100] m, got {bad}")
        return value


class NoVendingLayerConfig(_Model):
    """A no-vending layer and when it applies (features may carry their own ``schedule`` property)."""

    path: Path = Field(description="GeoJSON file (RFC 7946, [lon, lat]).")
    schedule: list[WindowConfig] | None = Field(None, min_length=1,
                                                description="When vending is forbidden, drone local time (omit: "
                                                            "always; a feature's own `schedule` property wins).")

    def weekly_schedule(self, timezone: str) -> WeeklySchedule | None:
        if self.schedule is None:
            return None
        return WeeklySchedule(tuple(w.to_window() for w in self.schedule), timezone)


class DroneLayersConfig(_Model):
    """GeoJSON layers the map rules read."""

    baseline: list[Path] = Field(default_factory=list, max_length=50,
                                 description="Known or approved structures: a structure outside them is new (违法建设).")
    previous_flights: list[Path] = Field(default_factory=list, max_length=50,
                                         description="findings.geojson of earlier flights of the area, as a baseline "
                                                     "(比对: what is new since then).")
    bike_parking: list[Path] = Field(default_factory=list, max_length=50,
                                     description="Bike parking areas / e-fences: a bike outside every one is misparked.")
    no_vending: list[NoVendingLayerConfig] = Field(default_factory=list, max_length=50,
                                                   description="Areas where vending is forbidden (with schedules).")


class GridLayerConfig(_Model):
    """The grid cells (单元网格) layer: every drone finding and camera case in a cell gets its code."""

    path: Path = Field(description="GeoJSON file of the cells.")
    code_property: str = Field("code", min_length=1, max_length=64, description="Feature property holding the code.")


class DroneConfig(_Model):
    """How flights are analysed."""

    camera: DroneCameraConfig = Field(default_factory=DroneCameraConfig, description="Camera intrinsics.")
    telemetry: DroneTelemetryConfig = Field(default_factory=DroneTelemetryConfig, description="Telemetry reading.")
    sampling: DroneSamplingConfig = Field(default_factory=DroneSamplingConfig, description="Frame sampling.")
    detection: DroneDetectionConfig = Field(default_factory=DroneDetectionConfig, description="Detection, placement.")
    layers: DroneLayersConfig = Field(default_factory=DroneLayersConfig, description="Map layers of the rules.")
    rules: MapRulesParams = Field(default_factory=MapRulesParams, description="Map rule parameters.")


def resolve_paths(config: Any, base_dir: Path) -> Any:
    """The configuration with relative layer paths made relative to `base_dir` (the configuration file's folder)."""
    def fix(path: Path) -> Path:
        return path if path.is_absolute() else (base_dir / path)

    updates: dict[str, Any] = {}
    if config.grid is not None:
        updates["grid"] = config.grid.model_copy(update={"path": fix(config.grid.path)})
    if config.drone is not None:
        layers = config.drone.layers
        new_layers = layers.model_copy(update={
            "baseline": [fix(p) for p in layers.baseline],
            "previous_flights": [fix(p) for p in layers.previous_flights],
            "bike_parking": [fix(p) for p in layers.bike_parking],
            "no_vending": [nv.model_copy(update={"path": fix(nv.path)}) for nv in layers.no_vending],
        })
        updates["drone"] = config.drone.model_copy(update={"layers": new_layers})
    return config.model_copy(update=updates) if updates else config
