"""streetwatch configuration: one YAML or JSON file describing cameras, their zones and rules.

The file is validated in full before anything runs. Every model forbids unknown keys (a misspelt key is an
error, not a silently ignored setting), every field is described and bounded, and cross-field checks have
names. Problems are reported all together, each as ``field.path: reason``::

    cameras[0].zones[1].polygon: self-intersecting at segment 2–3 (crosses segment 0–1)
    cameras[1].timezone: unknown time zone 'Asia/Shangai': use an IANA name such as 'Asia/Shanghai'

Top-level ``tracker``, ``rules`` and ``model`` are defaults for every camera. A camera's own ``tracker`` and
``rules`` override only the keys they set; a camera's ``model`` replaces the default selection.

This module is the schema and its loading only; `service.pipeline` turns a validated configuration into the
detector's objects (zones, schedules, tracker, rule engine, whole pipelines). Zone and schedule validation is the
detector's own, so a bad polygon gets the same message here as from `detector.zones.Zone`; rule sections are
derived from the rule modules (`detector.rules`), where each parameter's default, bounds and wording live.

Example:
    >>> config = load_config("examples/config.yaml")  # doctest: +SKIP
    >>> config.rules_for(config.cameras[0]).stall_occupation.min_dwell_s  # doctest: +SKIP
    300.0
"""

from __future__ import annotations

import json
import re
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from detector.errors import StreetwatchError
from detector.motion import MotionGateConfig
from detector.rules import RULES, param_bounds, param_doc
from detector.schedule import WindowConfig, load_timezone
from detector.tracking import TrackerConfig
from detector.verify import SecondLookConfig
from detector.zones import Zone, ZoneKind, polygon_problems
from service.drone_config import DroneConfig, GridLayerConfig, resolve_paths
from service.kinds import default_category_codes
from service.origin import CaseOrigin

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_CATEGORY_CODES",
    "MAX_ZONE_PAIR_CHECKS_PER_CAMERA",
    "MAX_ZONE_POINTS_PER_CAMERA",
    "check_zone_budget",
    "AppConfig",
    "BikeRuleConfig",
    "CameraConfig",
    "ConfigError",
    "ModelSelection",
    "MotionSettings",
    "PositionConfig",
    "RULE_CONFIG_TYPES",
    "RuleConfig",
    "RulesConfig",
    "StallRuleConfig",
    "TrackerSettings",
    "WindowConfig",
    "ZoneConfig",
    "camera_origin",
    "format_validation_error",
    "load_config",
    "parse_config",
]

CONFIG_VERSION = 1
# The national digital-case convention (大类+小类), one row per kind in the kind catalogue; cities override them.
DEFAULT_CATEGORY_CODES: dict[str, str] = default_category_codes()
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SOURCE = re.compile(r"^(rtsp|rtsps|rtmp|http|https|file)://\S+$")
_CODE = re.compile(r"^[0-9A-Za-z_.-]{1,32}$")
_WEEK_S = 7 * 86400.0
# Bounds on the cost of one camera's zones as a whole, not only per zone: checking a polygon for self-crossings
# compares every pair of its segments (n^2), so 200 zones of 500 points each took over a minute to validate and
# stalled the whole service during an admin's zone edit. The budget allows one zone of the largest size (500
# points) or many small ones; both are checked on the raw request, before any polygon is examined.
MAX_ZONE_POINTS_PER_CAMERA = 2000
MAX_ZONE_PAIR_CHECKS_PER_CAMERA = 500 * 500


class ConfigError(StreetwatchError):
    """The configuration file is missing, unparsable or invalid.

    Attributes:
        source: The file (or a label for in-memory input).
        problems: One entry per problem, ``field.path: reason`` (or a reason about the file itself).
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: invalid configuration: {'; '.join(self.problems)}")


class _Problems(ValueError):
    """Raised by validators to report several problems, each at a path relative to the validated model."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{path}: {reason}" if path else reason for path, reason in self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- schedules and zones --------------------------------------------------------------------------------

class ZoneConfig(_Model):
    """A zone drawn on the camera's view."""

    id: str = Field(description="Zone id, unique within the camera.", pattern=ID_PATTERN)
    kind: ZoneKind = Field(description="What the zone means: " + ", ".join(k.value for k in ZoneKind) + ".")
    name: str = Field("", description="Human-readable name shown to reviewers.", max_length=200)
    polygon: list[tuple[float, float]] = Field(
        description="Points [x, y] normalised to 0..1 of frame width and height, in drawing order.", max_length=500
    )
    schedule: list[WindowConfig] | None = Field(
        None, min_length=1,
        description="When the zone applies (omit: always). For vending_allowed: when vending is allowed.",
    )
    inertia_samples: int = Field(3, ge=Zone.LIMITS["inertia_samples"][0], le=Zone.LIMITS["inertia_samples"][1],
                                 description="Consecutive samples that must agree before membership changes.")
    anchor: Literal["bottom_center", "center"] = Field(
        "bottom_center",
        description="Point of a box that decides membership: bottom_center (where it stands) or center.",
    )
    min_dwell_s: float | None = Field(None, ge=Zone.LIMITS["min_dwell_s"][0], le=Zone.LIMITS["min_dwell_s"][1],
                                      description="Overrides the rule's min_dwell_s for objects in this zone.")

    @field_validator("polygon")
    @classmethod
    def _polygon_valid(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        problems = polygon_problems(value)
        if problems:
            raise _Problems([("", p) for p in problems])
        return value


# --- tracker, rules, model ------------------------------------------------------------------------------

_TRACKER_DEFAULTS = TrackerConfig()


def _tracker_field(name: str, description: str) -> Any:
    # Bounds and defaults come from the detector's TrackerConfig, so the two cannot drift apart.
    lo, hi = TrackerConfig.LIMITS[name]
    return Field(getattr(_TRACKER_DEFAULTS, name), ge=lo, le=hi, description=description)


class TrackerSettings(_Model):
    """Tracker settings (see detector.tracking.TrackerConfig); cross-field checks run on the merged result."""

    high_score: float | None = Field(
        None, ge=0, le=1,
        description="Detections at or above this are matched first and may start tracks (omit: the model card's "
                    f"track_score, or {_TRACKER_DEFAULTS.high_score} for a card without one).")
    low_score: float = _tracker_field("low_score", "Weaker detections down to this only extend existing tracks.")
    new_track_score: float | None = Field(
        None, ge=0, le=1,
        description="Minimum score to start a track (omit: the model card's track_score, or "
                    f"{_TRACKER_DEFAULTS.new_track_score} for a card without one).")
    match_iou: float = _tracker_field("match_iou", "Minimum IoU with a track's predicted box (first stage).")
    low_match_iou: float = _tracker_field("low_match_iou", "Minimum IoU for weak detections (second stage).")
    center_distance_max: float = _tracker_field(
        "center_distance_max", "Match small fast objects by centre distance up to this many box sizes; 0 disables.")
    min_hits: int = _tracker_field("min_hits", "Matches before a track is confirmed and reported.")
    max_missing_s: float = _tracker_field("max_missing_s", "A moving track unseen this long (s) is removed.")
    stationary_window_s: float = _tracker_field(
        "stationary_window_s", "Seconds an object must stay put to count as stationary.")
    stationary_tolerance: float = _tracker_field(
        "stationary_tolerance", "Staying put means moving less than this fraction of the box size.")
    stationary_inlier_frac: float = _tracker_field(
        "stationary_inlier_frac", "Share of the window's samples that must be within the tolerance (boxes of "
                                  "parked objects jitter; 1.0: every sample).")
    moving_confirm_s: float = _tracker_field(
        "moving_confirm_s", "Seconds a stationary object must be off its spot before it counts as moving.")
    stationary_leave_tolerance: float = _tracker_field(
        "stationary_leave_tolerance", "Off its spot means further than this fraction of the box size from home "
                                      "(at least stationary_tolerance: parked objects' boxes jitter).")
    stationary_max_missing_s: float = _tracker_field(
        "stationary_max_missing_s", "A stationary track unseen this long (s) is removed.")
    reattach_iou: float = _tracker_field(
        "reattach_iou", "IoU with the last box a reappearing object needs to resume its stationary track.")
    score_history: int = _tracker_field("score_history", "Recent scores kept per track for the median score.")

    def to_detector(self, track_score: float | None = None) -> TrackerConfig:
        """The detector's tracker settings; omitted score fields come from the model's `track_score`.

        The built-in 0.5 / 0.6 suit a detector calibrated like the COCO models; a model trained here reports
        real objects at lower scores (its card's track_score, chosen on val), and with the built-in values it
        would never start a bike track.
        """
        values = self.model_dump()
        for name in ("high_score", "new_track_score"):
            if values[name] is None:
                values[name] = getattr(_TRACKER_DEFAULTS, name) if track_score is None else track_score
        return TrackerConfig(**values)


_MOTION_DEFAULTS = MotionGateConfig()


def _motion_field(name: str, description: str) -> Any:
    # Bounds and defaults come from the detector's MotionGateConfig, so the two cannot drift apart.
    lo, hi = MotionGateConfig.LIMITS[name]
    return Field(getattr(_MOTION_DEFAULTS, name), ge=lo, le=hi, description=description)


class MotionSettings(_Model):
    """Motion gating (see detector.motion): the detector skips samples in which nothing changed.

    On by default (issue 19: more cameras per node): it saves CPU on quiet cameras, at the price of carrying the
    last detections forward between re-verifications (at least every ``reverify_interval_s``; tracks that are not
    yet stationary are re-checked sooner, see detector.pipeline), so dwell rules keep working.
    """

    enabled: bool = Field(True, description="Skip inference on samples without change.")
    width_px: int = _motion_field("width_px", "Width (px) frames are scaled to before comparing.")
    blur_px: int = _motion_field("blur_px", "Gaussian blur kernel (odd, px) against noise and compression blocks.")
    pixel_delta: float = _motion_field("pixel_delta", "Grey-level difference (0..255) that counts a pixel changed.")
    min_changed_frac: float = _motion_field("min_changed_frac", "Fraction of changed pixels that triggers inference.")
    reverify_interval_s: float = _motion_field(
        "reverify_interval_s", "Inference is forced at least this often (s) so stationary objects are re-checked; "
                               "must be below the tracker's stationary_max_missing_s.")
    max_gap_s: float = _motion_field("max_gap_s", "A sample this long (s) after the previous one is always inferred.")

    def to_detector(self) -> MotionGateConfig:
        return MotionGateConfig(**self.model_dump(exclude={"enabled"}))


_SECOND_LOOK_DEFAULTS = SecondLookConfig()


def _second_look_field(name: str, description: str) -> Any:
    # Bounds and defaults come from the detector's SecondLookConfig, so the two cannot drift apart.
    lo, hi = SecondLookConfig.LIMITS[name]
    return Field(getattr(_SECOND_LOOK_DEFAULTS, name), ge=lo, le=hi, description=description)


class SecondLookSettings(_Model):
    """The second look before a case (detector.verify): the detector again on enlarged crops of the boxes. Which
    kinds get one is each rule's ``second_look``."""

    context_frac: float = _second_look_field("context_frac", "Margin cut around a box on each side, as a share "
                                                             "of its longer side.")
    max_upscale: float = _second_look_field("max_upscale", "A crop is enlarged to the network's input at most "
                                                           "this many times.")
    min_iou: float = _second_look_field("min_iou", "The re-detected box must overlap the original this much.")
    min_score: float | None = Field(None, ge=0, le=1, description="Score a re-detection needs (omit: the model "
                                                                  "card's per-class thresholds).")
    recheck_interval_s: float = _second_look_field(
        "recheck_interval_s", "A refused violation is looked at again at most this often while it stays due.")

    def to_detector(self) -> SecondLookConfig:
        return SecondLookConfig(**self.model_dump())


class RuleConfig(_Model):
    """Settings every rule kind has: ``enabled`` plus the rule's own parameters (`detector.rules.RuleParams`).

    Each kind's model (`RULE_CONFIG_TYPES`) is derived from its rule's parameter dataclass, where every
    parameter's default, bounds and wording are declared once; only the forms differ here: ``schedule`` is a
    list of windows in the camera's time zone, and an omitted ``min_score`` means the model card's track_score.
    """

    # min_score of a rule when neither the file nor the model card's track_score gives one (the rule's default).
    BUILTIN_MIN_SCORE: ClassVar[float] = 0.5
    kind: ClassVar[str] = ""

    enabled: bool = Field(True, description="Whether the rule runs.")


def _rule_config_model(kind: str, rule_type: type) -> type[RuleConfig]:
    """The configuration model of one rule kind, derived from the rule's parameter dataclass."""
    params_type = rule_type.params_type
    fields: dict[str, Any] = {}
    for f in dataclass_fields(params_type):
        doc = param_doc(params_type, f.name)
        if f.name == "classes":
            default = list(rule_type.default_classes or sorted(f.default))
            fields[f.name] = (list[str], Field(default_factory=lambda d=default: list(d), min_length=1, max_length=50,
                                               description=doc))
        elif f.name == "schedule":
            fields[f.name] = (list[WindowConfig] | None, Field(None, min_length=1, description=doc))
        elif f.name == "zone_ids":
            fields[f.name] = (list[str] | None, Field(None, min_length=1, description=doc))
        elif f.type in (bool, "bool"):
            fields[f.name] = (bool, Field(f.default, description=doc))
        else:
            lo, hi, lo_open = param_bounds(params_type, f.name)
            low = {"gt": lo} if lo_open else {"ge": lo}
            if f.name == "min_score":  # omitted: the model card's operating point decides
                fields[f.name] = (float | None, Field(None, le=hi, description=doc, **low))
            else:
                fields[f.name] = (float, Field(f.default, le=hi, description=doc, **low))
    title = (rule_type.__doc__ or kind).strip().splitlines()[0]
    model = create_model(f"{''.join(w.capitalize() for w in kind.split('_'))}RuleConfig", __base__=RuleConfig,
                         __doc__=f"{kind}: {title}", **fields)
    model.BUILTIN_MIN_SCORE = params_type.__dataclass_fields__["min_score"].default
    model.kind = kind
    return model


# One configuration model per registered rule kind, derived from the rule modules (`detector.rules`).
RULE_CONFIG_TYPES: dict[str, type[RuleConfig]] = {kind: _rule_config_model(kind, rule) for kind, rule in RULES.items()}
StallRuleConfig = RULE_CONFIG_TYPES["stall_occupation"]
BikeRuleConfig = RULE_CONFIG_TYPES["bike_misparked"]


class _RulesBase(_Model):
    def items(self) -> list[tuple[str, RuleConfig]]:
        return [(kind, getattr(self, kind)) for kind in type(self).model_fields]


RulesConfig = create_model(
    "RulesConfig", __base__=_RulesBase, __doc__="One entry per rule kind (the keys of detector.rules.RULES).",
    **{kind: (model, Field(default_factory=model, description=model.__doc__.split(": ", 1)[1]))
       for kind, model in RULE_CONFIG_TYPES.items()},
)


class ModelSelection(_Model):
    """Which detector a camera runs, and its thresholds."""

    name: str = Field("yolox-nano-coco", min_length=1, max_length=500,
                      description="Model name under models/, a card file or an .onnx file.")
    conf: float | None = Field(None, ge=0, le=1, description="One score threshold for all classes (omit: the card's).")
    precision: Literal["auto", "fp32", "int8"] = Field(
        "auto", description="auto: the model's int8 copy (<name>-int8 under models/) where the two cards show AP50 "
                            "at most 0.02 lower on every metric measured on the same data (about twice as fast on "
                            "CPU), except on tiled or resized cameras (not measured for int8); fp32: the named "
                            "model as it is; int8: the copy whatever its card says.")
    per_class_conf: dict[str, float] = Field(default_factory=dict, description="Score threshold per model class name.")
    tile: bool = Field(False, description="Tiled inference: tiles of the model's input size at native resolution, "
                                          "20 % overlap, plus one full-frame pass (more CPU per tile).")
    input_wh: tuple[int, int] | None = Field(
        None, description="Network input [width, height] in px for this camera, multiples of 32 (omit: the card's). "
                          "Larger finds smaller objects at more CPU (recall and time per mode for the shipped street "
                          "model: benchmarks/results/small_objects.md); the model needs dynamic input axes.")
    class_map: dict[str, str] = Field(
        default_factory=dict,
        description="Model class name -> pipeline class, added to the card's violation_classes (e.g. tricycle: stall).",
    )

    @field_validator("input_wh")
    @classmethod
    def _input_wh_fits_the_network(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        # The detector's strides (8, 16, 32) must divide the input, or the grids and the boxes disagree.
        if value is not None:
            bad = [(axis, v) for axis, v in zip(("width", "height"), value) if not (32 <= v <= 4096 and v % 32 == 0)]
            if bad:
                raise ValueError("; ".join(f"{axis} {v} px must be a multiple of 32 within [32, 4096]"
                                           for axis, v in bad))
        return value

    @field_validator("per_class_conf")
    @classmethod
    def _per_class_conf_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [(name, score) for name, score in value.items() if not 0.0 <= score <= 1.0]
        if bad:
            raise _Problems([(name, f"threshold must lie within [0, 1], got {score}") for name, score in bad])
        return value


# --- cameras and the whole file -------------------------------------------------------------------------

class PositionConfig(_Model):
    """Where a fixed camera stands (cases of a fixed camera are located here)."""

    lat_deg: float = Field(ge=-90, le=90, description="WGS84 latitude, degrees.")
    lon_deg: float = Field(ge=-180, le=180, description="WGS84 longitude, degrees.")


class CameraConfig(_Model):
    """One camera: where its frames come from, where it is, its zones and its rule overrides."""

    id: str = Field(description="Camera id, unique; appears in violation and case ids.", pattern=ID_PATTERN)
    name: str = Field("", max_length=200, description="Human-readable name.")
    source: str = Field(min_length=1, max_length=2000,
                        description="Stream URL (rtsp://, http(s)://, rtmp://, file://) or 'push' for HTTP push.")
    timezone: str = Field(description="IANA time zone of the camera's location, for schedules (e.g. Asia/Shanghai).",
                          min_length=1, max_length=64)
    sample_fps: float = Field(1.0, gt=0, le=30, description="Frames analysed per second (time-based sampling).")
    position: PositionConfig | None = Field(None, description="Camera position (omit when unknown).")
    address: str = Field("", max_length=500, description="Street address shown on cases.")
    grid_code: str = Field("", max_length=64, description="Grid cell code (网格编码) of the digital case system.")
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=200, description="Zones on the camera's view.")
    rules: RulesConfig | None = Field(None, description="Overrides of the default rules (only the keys set).")
    tracker: TrackerSettings | None = Field(
        None, description="Overrides of the default tracker settings (only the keys set).")
    motion: MotionSettings | None = Field(
        None, description="Overrides of the default motion-gate settings (only the keys set).")
    model: ModelSelection | None = Field(None, description="Model for this camera (omit: the default model).")
    enabled: bool = Field(True, description="Whether the camera is processed.")

    @field_validator("zones", mode="before")
    @classmethod
    def _zones_within_budget(cls, value: Any) -> Any:
        check_zone_budget(value)
        return value

    @field_validator("source")
    @classmethod
    def _source_valid(cls, value: str) -> str:
        if value != "push" and not _SOURCE.match(value):
            raise ValueError(
                f"must be 'push' or a URL (rtsp://, rtsps://, rtmp://, http(s)://, file://), got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_valid(cls, value: str) -> str:
        load_timezone(value)
        return value

    @model_validator(mode="after")
    def _unique_zone_ids(self) -> "CameraConfig":
        first: dict[str, int] = {}
        problems = []
        for i, zone in enumerate(self.zones):
            if zone.id in first:
                problems.append((f"zones[{i}].id", f"duplicate zone id {zone.id!r} (also zones[{first[zone.id]}])"))
            first.setdefault(zone.id, i)
        if problems:
            raise _Problems(problems)
        return self


def check_zone_budget(zones: Any) -> None:
    """Refuse a camera's zones whose total size exceeds the budget, before their polygons are validated.

    Args:
        zones: The raw zones (dicts or `ZoneConfig`s; anything else is left to the normal validation).

    Raises:
        ValueError: More than `MAX_ZONE_POINTS_PER_CAMERA` points in all, or more than
            `MAX_ZONE_PAIR_CHECKS_PER_CAMERA` segment pairs to compare (the sum of each polygon's points squared).

    Example:
        >>> check_zone_budget([{"polygon": [[0, 0], [1, 0], [1, 1]]}] * 3)
        >>> check_zone_budget([{"polygon": [[0.5, 0.5]] * 400}] * 6)
        Traceback (most recent call last):
        ...
        ValueError: 2400 polygon points in all exceeds the limit of 2000 per camera (fewer or simpler zones)
    """
    if not isinstance(zones, (list, tuple)):
        return
    sizes = []
    for zone in zones:
        polygon = zone.get("polygon") if isinstance(zone, dict) else getattr(zone, "polygon", None)
        sizes.append(len(polygon) if isinstance(polygon, (list, tuple)) else 0)
    total = sum(sizes)
    if total > MAX_ZONE_POINTS_PER_CAMERA:
        raise ValueError(f"{total} polygon points in all exceeds the limit of {MAX_ZONE_POINTS_PER_CAMERA} per "
                         f"camera (fewer or simpler zones)")
    pairs = sum(n * n for n in sizes)
    if pairs > MAX_ZONE_PAIR_CHECKS_PER_CAMERA:
        raise ValueError(f"zones too complex to check: the sum of each polygon's points squared is {pairs}, over "
                         f"the limit of {MAX_ZONE_PAIR_CHECKS_PER_CAMERA} per camera (simplify the larger polygons)")


def camera_origin(camera: CameraConfig) -> CaseOrigin:
    """The case origin of a configured camera: what ``cameras`` copies of it, and where its cases are.

    Example:
        >>> cam = CameraConfig(id="cam-1", source="push", timezone="Asia/Shanghai", address="88 Nanjing Rd",
        ...                    position={"lat_deg": 31.2304, "lon_deg": 121.4737})
        >>> origin = camera_origin(cam)
        >>> origin.kind, origin.source_id, origin.lat_deg, origin.address
        ('camera', 'cam-1', 31.2304, '88 Nanjing Rd')
    """
    position = camera.position
    return CaseOrigin.camera(camera.id, name=camera.name, source=camera.source,
                             lat_deg=position.lat_deg if position else None,
                             lon_deg=position.lon_deg if position else None, address=camera.address,
                             grid_code=camera.grid_code, timezone=camera.timezone, enabled=camera.enabled)


class AppConfig(_Model):
    """The whole configuration file."""

    config_version: int = Field(ge=1, le=CONFIG_VERSION,
                                description=f"Version of this file's format; this streetwatch reads {CONFIG_VERSION}.")
    category_codes: dict[str, str] = Field(
        default_factory=default_category_codes,
        description="Violation kind -> the city's case category code; unset kinds keep the national defaults.",
    )
    model: ModelSelection = Field(default_factory=ModelSelection, description="Default model for every camera.")
    tracker: TrackerSettings = Field(default_factory=TrackerSettings, description="Default tracker settings.")
    motion: MotionSettings = Field(default_factory=MotionSettings, description="Default motion-gate settings.")
    rules: RulesConfig = Field(default_factory=RulesConfig, description="Default rule settings.")
    second_look: SecondLookSettings = Field(default_factory=SecondLookSettings,
                                            description="How violations are verified before a case (per rule: "
                                                        "rules.<kind>.second_look).")
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=10000, description="The cameras.")
    grid: GridLayerConfig | None = Field(None, description="Grid cells (单元网格): drone findings and cameras with a "
                                                           "position get the code of the cell they are in.")
    drone: DroneConfig | None = Field(None, description="How drone flights are analysed (omit: the defaults).")

    @field_validator("config_version", mode="before")
    @classmethod
    def _config_version_supported(cls, value: Any) -> Any:
        # Before the bound check, so a newer file gets a message saying what to do about it.
        if isinstance(value, int) and not isinstance(value, bool) and value > CONFIG_VERSION:
            raise ValueError(
                f"version {value} is newer than this streetwatch reads ({CONFIG_VERSION}); upgrade streetwatch")
        return value

    @field_validator("category_codes", mode="before")
    @classmethod
    def _category_codes_with_defaults(cls, value: Any) -> Any:
        return {**default_category_codes(), **value} if isinstance(value, Mapping) else value

    @field_validator("category_codes")
    @classmethod
    def _category_codes_known(cls, value: dict[str, str]) -> dict[str, str]:
        known = set(default_category_codes()) | set(RULES)
        problems = []
        for kind, code in value.items():
            if kind not in known:
                problems.append((kind, f"unknown violation kind (known: {', '.join(sorted(known))})"))
            elif not _CODE.match(code):
                problems.append((kind, f"code {code!r} must be 1-32 letters, digits, '.', '_' or '-'"))
        if problems:
            raise _Problems(problems)
        return value

    @model_validator(mode="after")
    def _cross_field_checks(self) -> "AppConfig":
        problems = (self._check_unique_camera_ids() + self._check_tracker_settings()
                    + self._check_motion_settings() + self._check_rules_reference_existing_zones())
        if problems:
            raise _Problems(problems)
        return self

    # Named cross-field checks; each returns (path, reason) pairs.

    def _check_unique_camera_ids(self) -> list[tuple[str, str]]:
        first: dict[str, int] = {}
        problems = []
        for i, camera in enumerate(self.cameras):
            if camera.id in first:
                problems.append((f"cameras[{i}].id",
                                 f"duplicate camera id {camera.id!r} (also cameras[{first[camera.id]}])"))
            first.setdefault(camera.id, i)
        return problems

    def _check_tracker_settings(self) -> list[tuple[str, str]]:
        problems = []
        targets = [("tracker", self.tracker)] + [
            (f"cameras[{i}].tracker", self.tracker_for(c)) for i, c in enumerate(self.cameras) if c.tracker is not None
        ]
        for path, settings in targets:
            try:
                settings.to_detector()
            except ValueError as exc:
                problems.append((path, str(exc).removeprefix("TrackerConfig: ")))
        return problems

    def _check_motion_settings(self) -> list[tuple[str, str]]:
        problems = []
        targets = [("motion", self.motion, self.tracker)] + [
            (f"cameras[{i}].motion", self.motion_for(c), self.tracker_for(c))
            for i, c in enumerate(self.cameras) if c.motion is not None or c.tracker is not None
        ]
        for path, settings, tracker in targets:
            try:
                settings.to_detector()
            except ValueError as exc:
                problems.append((path, str(exc).removeprefix("MotionGateConfig: ")))
                continue
            # A stationary track that the gate does not re-check before the tracker gives up on it would end,
            # and the stall standing there would open a new case.
            if settings.enabled and settings.reverify_interval_s >= tracker.stationary_max_missing_s:
                problems.append((f"{path}.reverify_interval_s",
                                 f"{settings.reverify_interval_s:g} s must be below the tracker's "
                                 f"stationary_max_missing_s ({tracker.stationary_max_missing_s:g} s)"))
        return problems

    def _check_rules_reference_existing_zones(self) -> list[tuple[str, str]]:
        problems = []
        for i, camera in enumerate(self.cameras):
            zones = {z.id: z for z in camera.zones}
            overrides = camera.rules
            for kind, rule in self.rules_for(camera).items():
                if not rule.enabled:
                    continue
                reads = RULES[kind].zone_kinds
                names = " or ".join(sorted(k.value for k in reads))
                path = f"cameras[{i}].rules.{kind}"
                for j, zone_id in enumerate(rule.zone_ids or []):
                    if zone_id not in zones:
                        problems.append((f"{path}.zone_ids[{j}]", f"no zone {zone_id!r} on this camera"))
                    elif zones[zone_id].kind not in reads:
                        problems.append((f"{path}.zone_ids[{j}]",
                                         f"zone {zone_id!r} is of kind {zones[zone_id].kind.value}; "
                                         f"{kind} reads {names} zones"))
                explicitly_enabled = (overrides is not None and kind in overrides.model_fields_set
                                      and "enabled" in getattr(overrides, kind).model_fields_set)
                if explicitly_enabled and not any(z.kind in reads for z in camera.zones):
                    problems.append((path, f"enabled, but the camera has no {names} zone"))
        return problems

    # Effective settings of a camera.

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(f"no camera {camera_id!r} in the configuration")

    def tracker_for(self, camera: CameraConfig) -> TrackerSettings:
        return _overlay(self.tracker, camera.tracker)

    def motion_for(self, camera: CameraConfig) -> MotionSettings:
        return _overlay(self.motion, camera.motion)

    def rules_for(self, camera: CameraConfig) -> RulesConfig:
        return _overlay(self.rules, camera.rules)

    def model_for(self, camera: CameraConfig) -> ModelSelection:
        return camera.model or self.model

    def category_code(self, kind: str) -> str:
        try:
            return self.category_codes[kind]
        except KeyError:
            raise KeyError(f"no category code for violation kind {kind!r}") from None


def _overlay(base: BaseModel, override: BaseModel | None) -> Any:
    """`base` with the fields explicitly set in `override` replaced (recursively for nested models)."""
    if override is None:
        return base
    merged = base.model_dump()
    for name in override.model_fields_set:
        value, base_value = getattr(override, name), getattr(base, name)
        if isinstance(value, BaseModel) and isinstance(base_value, BaseModel):
            merged[name] = _overlay(base_value, value).model_dump()
        else:
            merged[name] = override.model_dump(include={name})[name]
    # model_construct would skip validation; every value here was validated already, but revalidating
    # keeps the result a normal, fully checked model.
    return type(base).model_validate(merged)


# --- loading --------------------------------------------------------------------------------------------

def _format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if not base:
        return rel
    return base + rel if rel.startswith("[") else f"{base}.{rel}"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One ``field.path: reason`` line per problem of a pydantic ValidationError."""
    lines: list[str] = []
    for error in exc.errors():
        path = _format_loc(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            lines.extend(f"{_join(path, rel)}: {reason}" for rel, reason in cause.problems)
            continue
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not allowed here; check the spelling)"
        lines.append(f"{path or 'config'}: {message}")
    return list(dict.fromkeys(lines))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys (PyYAML would silently keep the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1}, column {mark.column + 1})",
                key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate key {duplicates[0]!r}")
    return dict(pairs)


def _read_raw(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(str(path), ["configuration file not found"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ConfigError(str(path), [f"cannot parse JSON at {where}: {exc.msg}"]) from None
        except ValueError as exc:
            raise ConfigError(str(path), [f"cannot parse JSON: {exc}"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), [f"cannot parse YAML{where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"cannot parse YAML: {str(exc).splitlines()[0]}"]) from None


def parse_config(raw: Any, source: str = "<config>") -> AppConfig:
    """Validate an already-parsed mapping; raises ConfigError listing every problem."""
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [f"the file must hold a mapping at the top, got {type(raw).__name__}"])
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from None


def load_config(path: Path | str) -> AppConfig:
    """Read and validate a YAML (``.yaml``/``.yml``) or JSON (``.json``) configuration file.

    Raises:
        ConfigError: The file is missing, unparsable or invalid; ``problems`` lists each problem as
            ``field.path: reason`` and ``str(error)`` is one line naming the file.
    """
    path = Path(path)
    # Layer files named in the file are relative to it, wherever streetwatch is started from.
    return resolve_paths(parse_config(_read_raw(path), str(path)), path.resolve().parent)
