import copy
import json
from dataclasses import fields
from datetime import timedelta

import pytest
import yaml
from pydantic import BaseModel

from detector.motion import MotionGateConfig
from detector.rules import RULES, BikeMisparkedRule, StallOccupationRule
from detector.tracking import TrackerConfig
from detector.types import Detections
from detector.zones import Zone, ZoneError, ZoneKind
from service.config import (
    DEFAULT_CATEGORY_CODES,
    RULE_CONFIG_TYPES,
    AppConfig,
    ConfigError,
    MotionSettings,
    TrackerSettings,
    load_config,
    parse_config,
)
from service.pipeline import (
    build_motion_gate,
    build_rule_engine,
    build_rules,
    build_tracker,
    build_zones,
    validate_config_file,
)
from tests.conftest import REPO_ROOT, T0

EXAMPLE = REPO_ROOT / "examples" / "config.yaml"


@pytest.fixture(scope="module")
def example_raw() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.problems


# --- the example ---------------------------------------------------------------------------------------

def test_the_example_config_loads_and_validates():
    config = load_config(EXAMPLE)
    assert validate_config_file(EXAMPLE) == []
    assert [c.id for c in config.cameras] == ["xh-caoxi-01", "xh-caoxi-02"]
    assert {c.timezone for c in config.cameras} == {"Asia/Shanghai"}
    kinds = {z.kind for c in config.cameras for z in c.zones}
    assert {ZoneKind.NO_VENDING, ZoneKind.VENDING_ALLOWED, ZoneKind.BIKE_PARKING, ZoneKind.WATCH_AREA} <= kinds
    market = build_zones(config.cameras[0])[1]
    assert market.kind is ZoneKind.VENDING_ALLOWED
    assert market.schedule.describe() == "mon,tue,wed,thu,fri 18:00-22:00 (Asia/Shanghai)"
    assert config.category_code("stall_occupation") == "0504" and config.category_code("bike_misparked") == "0506"
    assert config.category_code("illegal_structure") == "0101" and config.category_code("mobile_vendor") == "0501"


def test_the_example_camera_reports_a_stall_on_the_pavement():
    config = load_config(EXAMPLE)
    camera = config.camera("xh-caoxi-01")
    tracker, engine = build_tracker(config, camera), build_rule_engine(config, camera, class_names=["stall"])
    assert [type(r) for r in engine.rules] == [StallOccupationRule]  # bikes are disabled on this camera
    frame_wh = (1280, 720)
    stall = Detections(xyxy=[[300, 560, 420, 660]], confidence=[0.85], class_id=[0])  # stands at (360, 660)
    events = []
    for t in range(0, 320, 2):  # one sample every 2 s
        out = tracker.update(stall, T0.timestamp() + t)
        events += engine.update(T0 + timedelta(seconds=t), out, frame_wh)
    assert [(e.event, e.zone_id) for e in events] == [("opened", "pavement-north")]
    assert events[0].dwell_s >= 300


# --- problems, each reported at its path ---------------------------------------------------------------

def _set(path: str, value):
    """A mutation that sets `value` at a dotted path with [i] indexes (None value deletes the key)."""

    def mutate(raw: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]
        node = raw
        for key in keys[:-1]:
            node = node[key]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


BOWTIE = [[0, 0], [1, 1], [1, 0], [0, 1]]


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (_set("cameras[0].zones[1].polygon", BOWTIE),
         "cameras[0].zones[1].polygon: self-intersecting at segment 2–3 (crosses segment 0–1)"),
        (_set("cameras[0].zones[0].polygon", [[0.1, 0.5], [1.2, 0.5], [0.5, 0.9]]),
         "cameras[0].zones[0].polygon: point 1 (1.2, 0.5) lies outside [0, 1]"),
        (_set("cameras[1].zones[2].polygon", [[0.1, 0.5], [0.2, 0.5]]),
         "cameras[1].zones[2].polygon: needs at least 3 points, got 2"),
        (_set("cameras[0].zones[0].kind", "novending"), "cameras[0].zones[0].kind: Input should be 'no_vending'"),
        (_set("cameras[0].zones[2].id", "pavement-north"),
         "cameras[0].zones[2].id: duplicate zone id 'pavement-north' (also zones[0])"),
        (_set("cameras[1].id", "xh-caoxi-01"), "cameras[1].id: duplicate camera id 'xh-caoxi-01' (also cameras[0])"),
        (_set("cameras[1].timezone", "Asia/Shangai"),
         "cameras[1].timezone: unknown time zone 'Asia/Shangai': use an IANA name such as 'Asia/Shanghai'"),
        (_set("cameras[0].fps", 1), "cameras[0].fps: unknown key (not allowed here; check the spelling)"),
        (_set("rules.stall_occupation.min_dwell", 60), "rules.stall_occupation.min_dwell: unknown key"),
        (_set("cameras[1].sample_fps", 0), "cameras[1].sample_fps: Input should be greater than 0"),
        (_set("cameras[1].sample_fps", 60), "cameras[1].sample_fps: Input should be less than or equal to 30"),
        (_set("cameras[0].source", "ftp://192.0.2.1/x"), "cameras[0].source: must be 'push' or a URL"),
        (_set("cameras[0].position.lat_deg", 91),
         "cameras[0].position.lat_deg: Input should be less than or equal to 90"),
        (_set("cameras[0].zones[1].schedule[0].days", ["mon-fry"]), "cameras[0].zones[1].schedule[0]: day 'mon-fry'"),
        (_set("cameras[0].zones[1].schedule[0].end", "18:00"),
         "cameras[0].zones[1].schedule[0]: window start and end are both 18:00"),
        (_set("rules.bike_misparked.schedule", []), "rules.bike_misparked.schedule: List should have at least 1 item"),
        (_set("rules.stall_occupation.min_score", 1.5), "rules.stall_occupation.min_score: Input should be less than"),
        (_set("config_version", 2), "config_version: version 2 is newer than this streetwatch reads (1)"),
        (_set("config_version", None), "config_version: Field required"),
        (_set("category_codes.stal_occupation", "0504"), "category_codes.stal_occupation: unknown violation kind"),
        (_set("category_codes.bike_misparked", "05 06"), "category_codes.bike_misparked: code '05 06' must be"),
        (_set("model.per_class_conf", {"bicycle": 1.5}),
         "model.per_class_conf.bicycle: threshold must lie within [0, 1], got 1.5"),
        (_set("tracker.low_score", 0.9), "tracker: low_score (0.9) must not exceed high_score (0.5)"),
        (_set("cameras[1].tracker.stationary_max_missing_s", 5),
         "cameras[1].tracker: stationary_max_missing_s (5.0) must not be below max_missing_s (10.0)"),
        (_set("motion.blur_px", 4), "motion: blur_px must be odd, got 4"),
        (_set("motion.min_changed_frac", 2), "motion.min_changed_frac: Input should be less than or equal to 1"),
        (_set("motion", {"enabled": True, "reverify_interval_s": 200}),
         "motion.reverify_interval_s: 200 s must be below the tracker's stationary_max_missing_s (120 s)"),
        (_set("cameras[1].motion", {"enabled": True, "reverify_interval_s": 150}),
         "cameras[1].motion.reverify_interval_s: 150 s must be below the tracker's stationary_max_missing_s"),
        (lambda raw: (_set("motion.enabled", True)(raw), _set("cameras[1].tracker.stationary_max_missing_s", 20)(raw)),
         "cameras[1].motion.reverify_interval_s: 30 s must be below the tracker's stationary_max_missing_s (20 s)"),
        (_set("cameras[0].rules.stall_occupation", {"zone_ids": ["pavement-north", "nope"]}),
         "cameras[0].rules.stall_occupation.zone_ids[1]: no zone 'nope' on this camera"),
        (_set("cameras[0].rules.stall_occupation", {"zone_ids": ["shop-forecourt-12"]}),
         "cameras[0].rules.stall_occupation.zone_ids[0]: zone 'shop-forecourt-12' is of kind exclusion; "
         "stall_occupation reads no_vending or vending_allowed zones"),
        (_set("cameras[1].rules.stall_occupation.enabled", True),
         "cameras[1].rules.stall_occupation: enabled, but the camera has no no_vending or vending_allowed zone"),
    ],
)
def test_each_problem_is_reported_at_its_path(example_raw, mutate, problem):
    raw = copy.deepcopy(example_raw)
    mutate(raw)
    found = problems_of(raw)
    assert any(p.startswith(problem) for p in found), found


def test_config_polygon_errors_read_like_the_detectors(example_raw):
    raw = copy.deepcopy(example_raw)
    raw["cameras"][0]["zones"][1]["polygon"] = BOWTIE
    [problem] = problems_of(raw)
    with pytest.raises(ZoneError) as info:
        Zone("night-market", "vending_allowed", BOWTIE)
    assert str(info.value).split("polygon: ")[1] == problem.split("polygon: ")[1]


def test_all_problems_are_listed_together(example_raw):
    raw = copy.deepcopy(example_raw)
    raw["cameras"][0]["zones"][0]["polygon"] = BOWTIE
    raw["cameras"][1]["timezone"] = "Mars/Olympus"
    raw["cameras"][1]["colour"] = "red"
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "city.yaml")
    assert len(info.value.problems) == 3
    message = str(info.value)
    assert "\n" not in message and message.startswith("city.yaml: invalid configuration: ")
    assert "Traceback" not in message


def test_camera_overrides_change_only_the_keys_they_set(example_raw):
    raw = copy.deepcopy(example_raw)
    raw["tracker"]["high_score"] = 0.7
    raw["cameras"][1]["tracker"] = {"low_score": 0.6}  # valid against the default high_score 0.7, not 0.5
    config = parse_config(raw)
    north, exit3 = config.cameras
    assert config.tracker_for(exit3).low_score == 0.6 and config.tracker_for(exit3).high_score == 0.7
    assert config.tracker_for(north) == config.tracker
    bikes = config.rules_for(exit3).bike_misparked
    # own, default, and left to the model card's track_score
    assert (bikes.min_dwell_s, bikes.cluster_distance, bikes.min_score) == (300, 1.5, None)
    assert bikes.schedule[0].start == "07:00"
    assert config.rules_for(north).stall_occupation.min_dwell_s == 300


def test_rules_are_built_from_the_effective_settings():
    config = load_config(EXAMPLE)
    [bikes] = build_rules(config, config.camera("xh-caoxi-02"))
    assert isinstance(bikes, BikeMisparkedRule)
    assert (bikes.params.min_dwell_s, bikes.params.cluster_distance) == (300, 1.5)
    assert bikes.params.classes == {"bicycle", "ebike"}
    assert bikes.params.schedule.timezone == "Asia/Shanghai"
    engine = build_rule_engine(config, config.camera("xh-caoxi-02"), class_map={"motorcycle": "ebike"})
    assert engine.class_map == {"motorcycle": "ebike"}
    assert build_tracker(config, config.camera("xh-caoxi-02")).config.max_missing_s == 10


def test_category_codes_keep_defaults_for_kinds_not_set(example_raw):
    raw = copy.deepcopy(example_raw)
    raw["category_codes"] = {"stall_occupation": "C-17"}
    config = parse_config(raw)
    assert config.category_codes == {**DEFAULT_CATEGORY_CODES, "stall_occupation": "C-17"}


# --- files ---------------------------------------------------------------------------------------------

def test_json_and_yaml_load_the_same(tmp_path, example_raw):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(example_raw, ensure_ascii=False), encoding="utf-8")
    assert load_config(path) == load_config(EXAMPLE)


def test_unquoted_yaml_times_are_understood(tmp_path):
    # YAML 1.1 reads 18:00 as the integer 1080; the configuration turns it back into 18:00.
    path = tmp_path / "c.yaml"
    path.write_text("config_version: 1\nrules:\n  stall_occupation:\n    schedule:\n"
                    "      - {days: [mon-fri], start: 18:00, end: 22:30}\n", encoding="utf-8")
    window = load_config(path).rules.stall_occupation.schedule[0]
    assert (window.start, window.end) == ("18:00", "22:30")


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("c.yaml", "config_version: 1\ncameras: [\n", "cannot parse YAML at line 3"),
        ("c.yaml", "config_version: 1\nconfig_version: 1\n", "duplicate key 'config_version' (line 2"),
        ("c.json", '{"config_version": 1, "config_version": 1}', "cannot parse JSON: duplicate key 'config_version'"),
        ("c.json", '{"config_version": 1,', "cannot parse JSON at line 1"),
        ("c.yaml", "- 1\n- 2\n", "the file must hold a mapping at the top, got list"),
        ("c.yaml", "", "the file must hold a mapping at the top, got NoneType"),
    ],
)
def test_unreadable_files_are_reported_in_one_line(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    problems = validate_config_file(path)
    assert len(problems) == 1 and problem in problems[0], problems
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_a_missing_file_is_reported(tmp_path):
    assert validate_config_file(tmp_path / "nope.yaml") == ["configuration file not found"]


def test_validate_lists_problems_of_a_bad_file(tmp_path, example_raw):
    raw = copy.deepcopy(example_raw)
    raw["cameras"][0]["zones"][0]["polygon"] = BOWTIE
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert validate_config_file(path) == [
        "cameras[0].zones[0].polygon: self-intersecting at segment 2–3 (crosses segment 0–1)"
    ]


def test_a_minimal_file_gets_defaults():
    config = parse_config({"config_version": 1})
    assert config.cameras == [] and config.rules.stall_occupation.min_dwell_s == 300
    assert config.tracker.to_detector() == TrackerConfig()


# --- the configuration and the detector agree ----------------------------------------------------------

# Score fields a file may leave out: they come from the model card's track_score (or TrackerConfig's default).
_FROM_THE_CARD = {"high_score", "new_track_score"}


def test_tracker_settings_mirror_the_detector_config():
    assert list(TrackerSettings.model_fields) == [f.name for f in fields(TrackerConfig)]
    for name, info in TrackerSettings.model_fields.items():
        assert _bounds(info) == TrackerConfig.LIMITS[name], name
        assert info.default == (None if name in _FROM_THE_CARD else getattr(TrackerConfig(), name)), name
    assert TrackerSettings().to_detector() == TrackerConfig()


# --- the model's operating point -----------------------------------------------------------------------

@pytest.mark.parametrize("tracker, rules, track_score, expect", [
    # (high, new_track, stall min_score, bike min_score)
    ({}, {}, None, (0.5, 0.6, 0.5, 0.4)),                                 # no card value: built-in
    ({}, {}, 0.224, (0.224, 0.224, 0.224, 0.224)),                        # the card's operating point
    ({"high_score": 0.3}, {"bike_misparked": {"min_score": 0.35}}, 0.224,  # the file wins where it speaks
     (0.3, 0.224, 0.224, 0.35)),
    ({"new_track_score": 0.7}, {"stall_occupation": {"min_score": 0.45}}, None, (0.5, 0.7, 0.45, 0.4)),
])
def test_omitted_score_thresholds_come_from_the_model_card(tracker, rules, track_score, expect):
    raw = {"config_version": 1, "tracker": tracker, "rules": rules, "cameras": [{
        "id": "cam-1", "source": "push", "timezone": "UTC",
        "zones": [{"id": "pavement", "kind": "no_vending", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]},
                  {"id": "street", "kind": "watch_area", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]}]}
    config = parse_config(raw)
    camera = config.cameras[0]
    tracker_config = build_tracker(config, camera, track_score=track_score).config
    stall, bikes = build_rules(config, camera, track_score=track_score)
    assert (tracker_config.high_score, tracker_config.new_track_score, stall.params.min_score,
            bikes.params.min_score) == expect


def test_the_shipped_street_model_carries_its_operating_point():
    from detector.runtime import resolve_card

    card = resolve_card("street")
    # release writes the highest per-class threshold chosen on val: no class is tracked below its own.
    assert card.thresholds.track_score == max(card.thresholds.per_class.values())
    assert resolve_card("street-int8").thresholds.track_score == card.thresholds.track_score


def test_validate_checks_the_tracker_against_the_cards_operating_point(tmp_path):
    # low_score 0.3 is fine against the built-in high_score 0.5, not against street's track_score (0.219).
    raw = {"config_version": 1, "model": {"name": "street"}, "tracker": {"low_score": 0.3},
           "cameras": [{"id": "cam-1", "source": "push", "timezone": "UTC"}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    [problem] = validate_config_file(path)
    assert problem.startswith("cameras[0]: cannot build its pipeline") and "low_score (0.3)" in problem
    raw["model"]["name"] = "yolox-nano-coco"  # no track_score: the built-in 0.5 applies
    path.write_text(yaml.safe_dump(raw))
    assert validate_config_file(path) == []


def test_motion_settings_mirror_the_detector_config():
    assert list(MotionSettings.model_fields) == ["enabled"] + [f.name for f in fields(MotionGateConfig)]
    for name, info in MotionSettings.model_fields.items():
        if name != "enabled":
            assert _bounds(info) == MotionGateConfig.LIMITS[name], name
            assert info.default == getattr(MotionGateConfig(), name), name


@pytest.mark.parametrize("default, camera_override, expect_gate, reverify_s", [
    ({}, None, True, 30.0),                                             # on, as by default (issue 19)
    ({"enabled": False}, None, False, None),                            # off when asked
    ({"enabled": True}, None, True, 30.0),                              # the example's default interval
    ({"enabled": True}, {"enabled": False}, False, None),               # one camera opts out
    ({}, {"enabled": True, "reverify_interval_s": 15}, True, 15.0),     # one camera opts in, own interval
])
def test_motion_gate_per_camera(example_raw, default, camera_override, expect_gate, reverify_s):
    raw = copy.deepcopy(example_raw)
    raw["motion"] = {**raw.get("motion", {}), **default}
    if camera_override is not None:
        raw["cameras"][0]["motion"] = camera_override
    config = parse_config(raw)
    gate = build_motion_gate(config, config.cameras[0])
    assert (gate is not None) == expect_gate
    if gate is not None:
        assert gate.config.reverify_interval_s == reverify_s


def test_every_rule_kind_has_a_config_section_that_covers_its_params():
    assert set(RULE_CONFIG_TYPES) == set(RULES)
    for kind, config_type in RULE_CONFIG_TYPES.items():
        params = {f.name for f in fields(RULES[kind].params_type)}
        assert params <= set(config_type.model_fields), kind


def _models(model: type[BaseModel], seen: set) -> None:
    if model in seen:
        return
    seen.add(model)
    for info in model.model_fields.values():
        for arg in _type_args(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)


def _type_args(annotation) -> list:
    args = [annotation]
    for sub in getattr(annotation, "__args__", ()) or ():
        args += _type_args(sub)
    return args


def _bounds(info) -> tuple:
    lower = next((getattr(m, a) for m in info.metadata for a in ("ge", "gt") if hasattr(m, a)), None)
    upper = next((getattr(m, a) for m in info.metadata for a in ("le", "lt") if hasattr(m, a)), None)
    return lower, upper


def test_every_model_forbids_unknown_keys_describes_and_bounds_every_field():
    seen: set = set()
    _models(AppConfig, seen)
    assert len(seen) >= 10
    for model in seen:
        assert model.model_config.get("extra") == "forbid", model.__name__
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
            # Scalars carry their bounds in the schema; numbers inside lists and dicts (polygon points,
            # per-class thresholds) are checked by the field's validator, as the tables above show.
            scalar = set(getattr(info.annotation, "__args__", None) or [info.annotation]) - {type(None)}
            if scalar and scalar <= {int, float}:
                assert None not in _bounds(info), f"{model.__name__}.{name} is not bounded"
    assert AppConfig.model_json_schema()["properties"]["cameras"]["description"]


def test_numbers_out_of_bounds_are_problems(example_raw):
    raw = copy.deepcopy(example_raw)
    raw["cameras"][0]["zones"][0]["inertia_samples"] = 10_000
    raw["cameras"][0]["zones"][0]["min_dwell_s"] = -1
    assert problems_of(raw) == [
        "cameras[0].zones[0].inertia_samples: Input should be less than or equal to 100",
        "cameras[0].zones[0].min_dwell_s: Input should be greater than or equal to 0",
    ]
