"""Pipeline assembly: the one place that turns configuration into running detector objects.

`run` (offline, one camera), `serve` (a worker per camera) and `demo` build their pipelines here and nowhere else:
zones, schedules, tracker, motion gate, rules and rule engine of a camera (`build_*`), its model
(`load_camera_model`), the whole `CameraPipeline` (`build_pipeline`) with the classes its rules read
(`tracked_classes`), and the buffer of a camera that pushes its frames (`make_push_source`).
`validate_config_file` builds every camera's pipeline once so a file that passes it also starts.

The configuration's schema and loading stay in `service.config`; evidence drawing is in `service.evidence`.

Example:
    >>> config = load_config("examples/config.yaml")  # doctest: +SKIP
    >>> pipeline = build_pipeline(config, config.cameras[0])  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from detector.errors import StreetwatchError
from detector.geo.enu import LocalFrame
from detector.geo.layers import LayerError, MapLayer, load_layer, load_previous_flight, project_layer
from detector.motion import MotionGate
from detector.pipeline import CameraPipeline
from detector.rules import RULES, Rule, RuleEngine, make_rule
from detector.runtime import OnnxDetector, RuntimeOptions, TilingConfig, resolve_card
from detector.runtime.precision import choose_precision
from detector.schedule import WeeklySchedule
from detector.sources.push import PushSource
from detector.tracking import Tracker
from detector.verify import SecondLook
from detector.zones import Zone
from service.config import (AppConfig, CameraConfig, ConfigError, ModelSelection, RuleConfig, WindowConfig,
                            camera_origin, load_config)
from service.drone_config import GridLayerConfig
from service.origin import CaseOrigin

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "build_motion_gate", "build_pipeline", "build_rule_engine", "build_rules", "build_schedule", "build_tracker",
    "build_zones", "camera_case_origin", "second_look_classes", "card_track_score", "grid_code_at", "load_camera_model", "make_push_source",
    "tracked_classes", "validate_config_file", "validate_layers",
]


# --- configuration -> detector objects (camera) ------------------------------------------------------------------

def build_schedule(windows: Sequence[WindowConfig] | None, timezone: str) -> WeeklySchedule | None:
    """The detector schedule of configured windows in `timezone`; None (always) when there are none."""
    if windows is None:
        return None
    return WeeklySchedule(tuple(w.to_window() for w in windows), timezone)


def build_zones(camera: CameraConfig) -> list[Zone]:
    """The detector zones of a camera, in configuration order."""
    return [
        Zone(
            zone_id=z.id,
            kind=z.kind,
            polygon=tuple(z.polygon),
            schedule=build_schedule(z.schedule, camera.timezone),
            inertia_samples=z.inertia_samples,
            anchor=z.anchor,
            min_dwell_s=z.min_dwell_s,
        )
        for z in camera.zones
    ]


def build_tracker(config: AppConfig, camera: CameraConfig, first_track_id: int = 1,
                  track_score: float | None = None) -> Tracker:
    """A fresh tracker for one camera with its effective settings.

    ``track_score`` is the camera's model's operating point (``card.thresholds.track_score``): it fills the
    score fields the file leaves out.
    """
    return Tracker(config.tracker_for(camera).to_detector(track_score), first_track_id=first_track_id)


def build_motion_gate(config: AppConfig, camera: CameraConfig) -> MotionGate | None:
    """A fresh motion gate for one camera (it holds the reference frame), or None when gating is off."""
    settings = config.motion_for(camera)
    return MotionGate(settings.to_detector()) if settings.enabled else None


def build_rules(config: AppConfig, camera: CameraConfig, track_score: float | None = None) -> list[Rule]:
    """Instances of the camera's enabled rules with their effective settings (``track_score``: as in
    `build_tracker`, for an omitted min_score)."""
    rules = []
    for kind, rule_config in config.rules_for(camera).items():
        if not rule_config.enabled:
            continue
        params_type = RULES[kind].params_type
        names = {f.name for f in dataclass_fields(params_type)} - {"classes", "schedule", "zone_ids"}
        params = params_type(
            classes=frozenset(rule_config.classes),
            schedule=build_schedule(rule_config.schedule, camera.timezone),
            zone_ids=None if rule_config.zone_ids is None else frozenset(rule_config.zone_ids),
            **{name: getattr(rule_config, name) for name in names - {"min_score"}},
            min_score=_effective_min_score(rule_config, track_score),
        )
        rules.append(make_rule(kind, params))
    return rules


def _effective_min_score(rule_config: RuleConfig, track_score: float | None) -> float:
    if rule_config.min_score is not None:
        return rule_config.min_score
    return type(rule_config).BUILTIN_MIN_SCORE if track_score is None else track_score


def build_rule_engine(config: AppConfig, camera: CameraConfig, *,
                      class_names: Sequence[str] | None = None,
                      class_map: Mapping[str, str] | None = None,
                      track_score: float | None = None) -> RuleEngine:
    """A fresh rule engine for one camera.

    Args:
        config: The validated configuration.
        camera: One of its cameras.
        class_names: The model's class names by id (used when detections carry no ``class_name`` column).
        class_map: The model card's ``violation_classes``; the camera's ``model.class_map`` is added on top.
        track_score: The model card's operating point, for rules whose min_score the file leaves out.
    """
    merged_map = {**(class_map or {}), **config.model_for(camera).class_map}
    return RuleEngine(camera.id, build_zones(camera), build_rules(config, camera, track_score),
                      class_names=class_names, class_map=merged_map)


def tracked_classes(config: AppConfig, camera: CameraConfig) -> frozenset[str]:
    """The pipeline classes a camera's enabled rules read: anything else the model finds is dropped before
    tracking (people, cars), so a class a rule names can never be dropped by mistake."""
    return frozenset(c for _, rule in config.rules_for(camera).items() if rule.enabled for c in rule.classes)


def make_push_source(settings: "Settings", camera: CameraConfig) -> PushSource:
    """The started push buffer of a camera whose source is ``push``, with the settings' upload limits."""
    return PushSource(camera.id, max_bytes=settings.max_push_bytes, max_pixels=settings.max_push_pixels,
                      max_future_s=settings.max_push_future_s, sample_fps=camera.sample_fps).start()


def load_camera_model(selection: ModelSelection, threads: int = 0) -> OnnxDetector:
    """The detector a camera's model selection names (its int8 copy where ``precision`` and the cards allow it),
    at its ``input_wh`` when it sets one.

    Raises:
        ModelLoadError / ModelCardError: The model is missing, or its network has a fixed input size other
            than ``input_wh`` (the message names both).
    """
    # The int8 copy where its card allows it (precision "auto"; detector.runtime.precision): not for tiled or
    # resized cameras, whose small-object accuracy the int8 card does not measure.
    native = not selection.tile and selection.input_wh is None
    card = resolve_card(choose_precision(selection.name, selection.precision, native_input=native).name)
    if selection.input_wh is not None:
        w, h = selection.input_wh
        card = card.model_copy(update={"input": card.input.model_copy(update={"width_px": w, "height_px": h})})
    return OnnxDetector(card, RuntimeOptions(intra_op_threads=threads))


def build_pipeline(config: AppConfig, camera: CameraConfig, detector: OnnxDetector | None = None,
                   threads: int = 0) -> CameraPipeline:
    """The camera's pipeline with its effective model, tracker and rules from the configuration."""
    selection = config.model_for(camera)
    detector = detector or load_camera_model(selection, threads)
    class_map = {**detector.card.violation_classes, **selection.class_map}
    track_score = detector.card.thresholds.track_score
    engine = build_rule_engine(config, camera, class_names=detector.class_names,
                               class_map=detector.card.violation_classes, track_score=track_score)
    look_classes = second_look_classes(config, camera)
    second_look = SecondLook(detector, config.second_look.to_detector(), class_map) if look_classes else None
    return CameraPipeline(camera.id, detector, build_tracker(config, camera, track_score=track_score), engine,
                          class_map, tracked_classes(config, camera), selection.conf,
                          tiling=TilingConfig(overlap_frac=0.2) if selection.tile else None,
                          motion_gate=build_motion_gate(config, camera), second_look=second_look,
                          second_look_classes=look_classes)


def second_look_classes(config: AppConfig, camera: CameraConfig) -> dict[str, frozenset[str]]:
    """Violation kind → the classes its second look accepts, for the camera's enabled rules that ask for one."""
    return {kind: frozenset(rule.classes) for kind, rule in config.rules_for(camera).items()
            if rule.enabled and rule.second_look}


# --- map layers shared by cameras and flights --------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _grid_layer(path: str, code_property: str, mtime_ns: int) -> MapLayer:
    # Cached per file version: a camera's cases ask for the grid on every event; the file changes rarely.
    return load_layer(path, "grid", code_property=code_property)


def grid_code_at(grid: GridLayerConfig | None, lat_deg: float, lon_deg: float) -> str | None:
    """The code of the grid cell (单元网格) containing a point, "" outside every cell, None without a grid layer.

    Raises:
        LayerError: The grid file is missing or invalid (each problem names the file and the feature).
    """
    if grid is None:
        return None
    path = Path(grid.path)
    mtime_ns = path.stat().st_mtime_ns if path.is_file() else -1
    layer = _grid_layer(str(path), grid.code_property, mtime_ns)
    index = int(project_layer(layer, LocalFrame(lat_deg, lon_deg, 0.0)).first_covering(np.zeros((1, 2)))[0])
    return layer.features[index].code or "" if index >= 0 else ""


def camera_case_origin(config: AppConfig, camera: CameraConfig) -> CaseOrigin:
    """A camera's case origin, its grid code from the grid layer when the camera has a position and no code of its
    own (street cameras and drone findings then share one grid)."""
    origin = camera_origin(camera)
    if camera.grid_code or camera.position is None or config.grid is None:
        return origin
    try:
        code = grid_code_at(config.grid, camera.position.lat_deg, camera.position.lon_deg)
    except (LayerError, OSError):
        return origin  # `config validate` names a broken grid file; a case without a code is still a case
    return replace(origin, grid_code=code or "")


def validate_layers(config: AppConfig) -> list[str]:
    """Problems of the map layers a configuration names (grid, and the drone section's), one line each."""
    problems: list[str] = []
    layer_files: list[tuple[str, Path, str, dict]] = []
    if config.grid is not None:
        layer_files.append(("grid.path", config.grid.path, "grid", {"code_property": config.grid.code_property}))
    if config.drone is not None:
        layers = config.drone.layers
        layer_files += [(f"drone.layers.baseline[{i}]", p, "baseline", {}) for i, p in enumerate(layers.baseline)]
        layer_files += [(f"drone.layers.bike_parking[{i}]", p, "bike_parking", {})
                        for i, p in enumerate(layers.bike_parking)]
        layer_files += [(f"drone.layers.no_vending[{i}]", nv.path, "no_vending",
                         {"timezone": config.drone.telemetry.timezone}) for i, nv in enumerate(layers.no_vending)]
        for i, p in enumerate(layers.previous_flights):
            try:
                load_previous_flight(p)
            except LayerError as exc:
                problems += [f"drone.layers.previous_flights[{i}]: {line}" for line in exc.problems]
    for field, path, role, kwargs in layer_files:
        try:
            load_layer(path, role, **kwargs)
        except LayerError as exc:
            problems += [f"{field}: {line}" for line in exc.problems]
    return problems


def validate_config_file(path: Path | str) -> list[str]:
    """Every problem of a configuration file (empty when it is valid), for ``streetwatch config validate``.

    Beyond `load_config`, builds each camera's zones, tracker and rule engine, so a file that passes here
    also starts. Entries are ``field.path: reason``, or a reason about the file itself; print each as
    ``FILE: entry`` and exit 2 when there are any.
    """
    try:
        config = load_config(path)
    except ConfigError as exc:
        return exc.problems
    problems = validate_layers(config)
    for i, camera in enumerate(config.cameras):
        try:
            track_score = card_track_score(config.model_for(camera).name)
            build_tracker(config, camera, track_score=track_score)
            build_rule_engine(config, camera, track_score=track_score)
        except (StreetwatchError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"cameras[{i}]: cannot build its pipeline: {exc}")
    return problems


def card_track_score(model_name: str) -> float | None:
    """The track_score of the named model's card; None when the card cannot be read (the camera's worker
    reports a missing model when it starts, and other cameras keep running)."""
    try:
        return resolve_card(model_name).thresholds.track_score
    except (StreetwatchError, OSError, ValueError):
        return None
