import doctest
import json
import random
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError
from shapely.geometry import Polygon

import detector.geo.maprules as maprules_module
from detector.geo.enu import LocalFrame
from detector.geo.layers import MapLayer, load_previous_flight, parse_layer
from detector.geo.maprules import (
    MAP_RULE_CLASSES,
    MAP_RULE_PARAMS,
    BikeMapParams,
    MapRulesParams,
    StallMapParams,
    StructureMapParams,
    evaluate_map_rules,
)
from detector.geo.types import GroundDetection, MapFinding
from detector.schedule import WeeklySchedule

FRAME = LocalFrame(22.5431, 114.0579, 0.0)  # Shenzhen
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_18 = datetime(2026, 6, 1, 18, 0, tzinfo=SHANGHAI)  # 2026-06-01 is a Monday


# --- builders -----------------------------------------------------------------------------------------

def box(e: float, n: float, w: float, h: float | None = None) -> np.ndarray:
    """Counter-clockwise rectangle with its lower-left corner at (e, n), metres."""
    h = w if h is None else h
    return np.array([[e, n], [e + w, n], [e + w, n + h], [e, n + h]], float)


def finding(fid: str, cls: str, e: float, n: float, *, score: float = 0.9, size_m: float = 2.0,
            footprint: np.ndarray | None = None, t_s: tuple[float, float] = (0.0, 1.0)) -> MapFinding:
    fp = box(e - size_m / 2, n - size_m / 2, size_m) if footprint is None else footprint
    lat, lon, _ = FRAME.to_geodetic(e, n, 0.0)
    best = GroundDetection(frame_index=0, t_s=t_s[0], class_name=cls, score=score, xyxy=np.zeros(4), east_m=e,
                           north_m=n, footprint_en_m=fp, range_m=50.0)
    return MapFinding(finding_id=fid, class_name=cls, lat_deg=float(lat), lon_deg=float(lon), east_m=e, north_m=n,
                      footprint_en_m=fp, footprint_lonlat_deg=FRAME.en_to_lonlat(fp), score=score, n_frames=3,
                      first_t_s=t_s[0], last_t_s=t_s[1], best=best, members=(best,))


def geojson_ring(ring_en: np.ndarray) -> list[list[float]]:
    lonlat = FRAME.en_to_lonlat(ring_en).tolist()
    return lonlat + [lonlat[0]]


def layer(role: str, *polygons, ids=None, props=None, name=None, **kwargs) -> MapLayer:
    """A layer of `polygons` (each a ring, or a tuple (exterior, hole, ...)) in metres, through real GeoJSON."""
    features = []
    for k, poly in enumerate(polygons):
        rings = (poly,) if isinstance(poly, np.ndarray) else poly
        features.append({"type": "Feature", "id": ids[k] if ids else f"{role}-{k}",
                         "properties": (props[k] if props else {}),
                         "geometry": {"type": "Polygon", "coordinates": [geojson_ring(r) for r in rings]}})
    text = json.dumps({"type": "FeatureCollection", "features": features})
    return parse_layer(text, role, source=name or role, frame=FRAME, **kwargs)  # type: ignore[arg-type]


def run(findings, layers, params=None, when=MONDAY_18):
    return evaluate_map_rules(findings, layers, params or MapRulesParams(), FRAME, when)


def kinds_of(result) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.kind, v.finding_ids) for v in result.violations]


# --- new structures (违法建设) -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "offset_e_m, threshold, is_new",
    [
        (0.0, 0.2, False),  # wholly on an approved structure
        (20.0, 0.2, True),  # nowhere near one
        (9.0, 0.2, True),  # 10 % covered
        (8.1, 0.2, True),  # 19 %
        (7.9, 0.2, False),  # 21 %
        (5.0, 0.6, True),  # 50 % against a stricter share
        (5.0, 0.5, False),  # 50 % is not below 50 %
        (0.0, 1.0, False),  # wholly covered is never below 1
        (20.0, 0.0, False),  # a share of 0 disables the rule
    ],
)
def test_structure_is_new_when_baseline_covers_less_than_the_share(offset_e_m, threshold, is_new):
    structure = finding("f2:s:0", "illegal_structure", offset_e_m + 5, 5, footprint=box(offset_e_m, 0, 10))
    params = MapRulesParams(illegal_structure=StructureMapParams(new_if_overlap_below=threshold))
    result = run([structure], [layer("baseline", box(0, 0, 10))], params)
    assert kinds_of(result) == ([("illegal_structure", ("f2:s:0",))] if is_new else [])
    assert result.counts["illegal_structure.new" if is_new else "illegal_structure.known"] == 1


def test_structure_in_a_courtyard_hole_is_new():
    courtyard_block = (box(0, 0, 30), box(10, 10, 10)[::-1])
    findings = [finding("in-hole", "illegal_structure", 15, 15, footprint=box(12, 12, 6)),
                finding("on-block", "illegal_structure", 3, 3, footprint=box(0, 0, 6))]
    result = run(findings, [layer("baseline", courtyard_block)])
    assert kinds_of(result) == [("illegal_structure", ("in-hole",))]


def test_coverage_adds_up_over_features_and_layers():
    # Two neighbouring approved structures in two layers cover 15 % each of one footprint: 30 % ≥ 20 %.
    structure = finding("s", "illegal_structure", 5, 5, footprint=box(0, 0, 10))
    left = layer("baseline", box(-5, 0, 6.5, 10), name="approved")
    right = layer("baseline", box(8.5, 0, 5, 10), name="old")
    assert kinds_of(run([structure], [left])) == [("illegal_structure", ("s",))]
    assert kinds_of(run([structure], [left, right])) == []


def test_structure_without_footprint_area_is_judged_by_its_point():
    flat = np.array([[1.0, 1.0], [3.0, 1.0], [5.0, 1.0]])  # all on one line
    inside = finding("inside", "illegal_structure", 2, 1, footprint=flat)
    outside = finding("outside", "illegal_structure", 30, 1, footprint=flat + [28, 0])
    result = run([inside, outside], [layer("baseline", box(0, 0, 10))])
    assert kinds_of(result) == [("illegal_structure", ("outside",))]
    assert result.counts["illegal_structure.judged_by_point"] == 2


def test_without_baseline_no_structure_is_compared_but_an_empty_baseline_makes_all_new():
    structures = [finding("a", "illegal_structure", 0, 0), finding("b", "illegal_structure", 20, 0)]
    result = run(structures, [])
    assert result.violations == ()
    assert result.counts["illegal_structure.not_compared"] == 2
    assert any(note.startswith("no baseline layer: 2 structure finding(s) not compared") for note in result.notes)
    empty = parse_layer('{"type": "FeatureCollection", "features": []}', "baseline")
    assert [v.finding_ids for v in run(structures, [empty]).violations] == [("a",), ("b",)]


def test_low_scores_are_counted_not_judged():
    findings = [finding("weak", "illegal_structure", 30, 0, score=0.3), finding("sure", "illegal_structure", 50, 0)]
    params = MapRulesParams(illegal_structure=StructureMapParams(min_score=0.5))
    result = run(findings, [layer("baseline", box(0, 0, 10))], params)
    assert kinds_of(result) == [("illegal_structure", ("sure",))]
    assert result.counts["illegal_structure.below_min_score"] == 1
    assert result.counts["illegal_structure.checked"] == 2


def test_structure_violation_carries_the_finding():
    structure = finding("f2:illegal_structure:7", "illegal_structure", 40, 10, score=0.7, t_s=(3.0, 9.5))
    (v,) = run([structure], [layer("baseline", box(0, 0, 10))]).violations
    assert v.violation_id == "illegal_structure:f2:illegal_structure:7"
    assert (v.lat_deg, v.lon_deg) == (structure.lat_deg, structure.lon_deg)
    np.testing.assert_array_equal(v.footprint_lonlat_deg, structure.footprint_lonlat_deg)
    assert (v.zone_id, v.score, v.class_names, v.first_t_s, v.last_t_s) == ("", 0.7, ("illegal_structure",), 3.0, 9.5)


def write_findings_geojson(path, findings) -> None:
    """An earlier flight's findings.geojson in the `streetwatch drone` output format."""
    features = []
    for f in findings:
        props = {"class": f.class_name, "finding_id": f.finding_id, "score": f.score, "n_frames": f.n_frames}
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Point", "coordinates": [f.lon_deg, f.lat_deg]}})
        ring = f.footprint_lonlat_deg.tolist()
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")


def test_an_earlier_flight_as_baseline_reports_only_what_is_new(tmp_path):
    # May: one shed and a bike. June: the same shed (merged 0.5 m off) and a new shed.
    may = [finding("may:illegal_structure:0", "illegal_structure", 10, 10, size_m=6),
           finding("may:bicycle:0", "bicycle", 30, 10)]
    write_findings_geojson(tmp_path / "findings.geojson", may)
    baseline = load_previous_flight(tmp_path / "findings.geojson", frame=FRAME)
    june = [finding("jun:illegal_structure:0", "illegal_structure", 10.5, 10, size_m=6),
            finding("jun:illegal_structure:1", "illegal_structure", 60, 10, size_m=6)]
    result = run(june, [baseline])
    assert kinds_of(result) == [("illegal_structure", ("jun:illegal_structure:1",))]
    assert result.counts["illegal_structure.known"] == 1


# --- misparked bikes (非机动车乱停放) -------------------------------------------------------------------

FENCE_WITH_ISLAND = (box(0, 0, 10), box(4, 4, 2)[::-1])  # an e-fence around a tree pit


@pytest.mark.parametrize(
    "e, n, misparked",
    [
        (2.0, 2.0, False),  # inside
        (20.0, 20.0, True),  # outside
        (10.0, 5.0, False),  # on the fence's edge: parked
        (0.0, 0.0, False),  # on its corner: parked
        (5.0, 5.0, True),  # in the tree pit (a hole of the fence)
        (4.0, 5.0, False),  # on the pit's edge: still touching the fence
        (10.01, 5.0, True),  # a centimetre outside
    ],
)
def test_bike_inside_outside_boundary_and_hole(e, n, misparked):
    result = run([finding("b", "bicycle", e, n)], [layer("bike_parking", FENCE_WITH_ISLAND)])
    assert kinds_of(result) == ([("bike_misparked", ("b",))] if misparked else [])


def test_misparked_bikes_close_together_are_one_violation():
    bikes = [finding("f:bicycle:3", "bicycle", 20, 0, score=0.6, t_s=(4, 5)),
             finding("f:bicycle:1", "ebike", 22.5, 0, score=0.9, t_s=(1, 2)),
             finding("f:bicycle:2", "bicycle", 25, 0, score=0.8, t_s=(2, 8)),  # a chain: 20 → 22.5 → 25
             finding("f:bicycle:4", "bicycle", 40, 0),  # alone
             finding("f:bicycle:0", "bicycle", 5, 5),  # parked in the fence
             finding("f:person:0", "person", 21, 0)]  # not a bike class
    fence = layer("bike_parking", box(0, 0, 10))
    result = run(bikes, [fence])
    # In order of first sighting: the lone bike was seen at 0 s, the cluster's first member at 1 s.
    assert kinds_of(result) == [("bike_misparked", ("f:bicycle:4",)),
                                ("bike_misparked", ("f:bicycle:1", "f:bicycle:2", "f:bicycle:3"))]
    cluster = result.violations[1]
    assert cluster.violation_id == "bike_misparked:f:bicycle:1"
    assert cluster.class_names == ("ebike", "bicycle", "bicycle")
    assert (cluster.score, cluster.first_t_s, cluster.last_t_s) == (0.8, 1.0, 8.0)
    lat, lon, _ = FRAME.to_geodetic(22.5, 0.0, 0.0)
    assert (cluster.lat_deg, cluster.lon_deg) == pytest.approx((float(lat), float(lon)), abs=1e-9)
    hull = Polygon(cluster.footprint_lonlat_deg)
    for bike in bikes[:3]:  # the outline is the hull of every member's footprint
        member = Polygon(bike.footprint_lonlat_deg)
        assert member.difference(hull).area <= 1e-6 * member.area  # lon/lat edges bend by nanometres
    assert (result.counts["bike_misparked.in_parking"], result.counts["bike_misparked.misparked"],
            result.counts["bike_misparked.clusters"]) == (1, 4, 2)
    # A tighter distance splits the chain.
    tight = MapRulesParams(bike_misparked=BikeMapParams(cluster_distance_m=2.0))
    assert len(run(bikes, [fence], tight).violations) == 4


def test_violation_ids_do_not_depend_on_input_order():
    bikes = [finding(f"f:bicycle:{k}", "bicycle", 20 + 2 * k, (k % 3) * 10) for k in range(9)]
    fence = layer("bike_parking", box(0, 0, 10))
    expected = [v.violation_id for v in run(bikes, [fence]).violations]
    shuffled = bikes[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(v.violation_id for v in run(shuffled, [fence]).violations) == sorted(expected)


def test_without_e_fences_no_bike_is_judged():
    result = run([finding("b1", "bicycle", 0, 0), finding("b2", "ebike", 50, 0)], [])
    assert result.violations == ()
    assert result.counts["bike_misparked.not_judged"] == 2
    assert any(n.startswith("no bike_parking layer: 2 bike finding(s) not judged") for n in result.notes)


# --- stalls in no-vending areas (占道经营) --------------------------------------------------------------

EVENINGS = {"schedule": [{"days": ["mon-sun"], "start": "17:00", "end": "22:00"}]}


@pytest.mark.parametrize(
    "flight_start, first_t_s, violation",
    [
        (MONDAY_18, 0.0, True),  # 18:00 in Shanghai: the window is on
        (datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI), 0.0, False),  # 09:00: off
        (datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc), 0.0, True),  # 10:00 UTC is 18:00 in Shanghai
        (datetime(2026, 6, 1, 1, 0, tzinfo=timezone.utc), 0.0, False),  # 01:00 UTC is 09:00 there
        (datetime(2026, 6, 1, 16, 59, 30, tzinfo=SHANGHAI), 60.0, True),  # seen at 17:00:30
        (datetime(2026, 6, 1, 16, 59, 30, tzinfo=SHANGHAI), 0.0, False),  # seen at 16:59:30
    ],
)
def test_stall_schedule_in_the_flights_local_time(flight_start, first_t_s, violation):
    stall = finding("st", "stall", 5, 5, t_s=(first_t_s, first_t_s + 2))
    area = layer("no_vending", box(0, 0, 10), ids=["NV-1"], props=[EVENINGS], timezone="Asia/Shanghai")
    result = run([stall], [area], when=flight_start)
    if violation:
        (v,) = result.violations
        assert (v.kind, v.zone_id, v.violation_id) == ("stall_occupation", "no_vending:NV-1", "stall_occupation:st")
    else:
        assert result.violations == () and result.counts["stall_occupation.schedule_inactive"] == 1


def test_layer_schedule_applies_unless_a_feature_has_its_own():
    weekdays = WeeklySchedule.from_windows([{"days": ["mon-fri"], "start": "07:00", "end": "21:00"}], "Asia/Shanghai")
    area = layer("no_vending", box(0, 0, 10), box(20, 0, 10), ids=["weekday", "always-evening"],
                 props=[{}, EVENINGS], schedule=weekdays)
    stalls = [finding("a", "stall", 5, 5), finding("b", "stall", 25, 5)]
    saturday_18 = datetime(2026, 6, 6, 18, 0, tzinfo=SHANGHAI)
    assert [v.zone_id for v in run(stalls, [area], when=MONDAY_18).violations] == [
        "no_vending:weekday", "no_vending:always-evening"]
    assert [v.zone_id for v in run(stalls, [area], when=saturday_18).violations] == ["no_vending:always-evening"]


def test_overlapping_areas_first_active_in_file_order_wins():
    morning = {"schedule": [{"start": "06:00", "end": "10:00"}]}
    area = layer("no_vending", box(0, 0, 10), box(0, 0, 10), box(0, 0, 10), ids=["morning", "always", "also"],
                 props=[morning, {}, {}], timezone="Asia/Shanghai")
    (v,) = run([finding("st", "stall", 5, 5)], [area]).violations
    assert v.zone_id == "no_vending:always"


def test_stall_outside_areas_and_without_any_layer():
    area = layer("no_vending", box(0, 0, 10))
    result = run([finding("in", "stall", 10, 10), finding("out", "stall", 30, 30)], [area], when=None)
    assert kinds_of(result) == [("stall_occupation", ("in",))]  # on the corner: inside; no schedule: no time needed
    assert result.counts["stall_occupation.outside_no_vending"] == 1
    result = run([finding("out", "stall", 30, 30)], [])
    assert result.violations == () and result.counts["stall_occupation.not_judged"] == 1
    assert any(n.startswith("no no_vending layer: 1 stall finding(s) not judged") for n in result.notes)


def test_schedules_need_an_aware_flight_time():
    area = layer("no_vending", box(0, 0, 10), props=[EVENINGS], timezone="Asia/Shanghai")
    stall = finding("st", "stall", 5, 5)
    with pytest.raises(ValueError, match="flight_time_local must be a timezone-aware datetime"):
        run([stall], [area], when=datetime(2026, 6, 1, 18, 0))
    with pytest.raises(ValueError, match="no_vending layer 'no_vending' has schedules: the flight's local start"):
        run([stall], [area], when=None)


# --- grid cells (单元网格) ------------------------------------------------------------------------------

def grid(*codes_and_boxes, name="grid") -> MapLayer:
    return layer("grid", *[b for _, b in codes_and_boxes], ids=[c for c, _ in codes_and_boxes],
                 props=[{"code": c} for c, _ in codes_and_boxes], name=name)


def test_grid_codes_for_findings_and_violations():
    cells = grid(("440304001001", box(0, 0, 10)), ("440304001002", box(10, 0, 10)))
    findings = [finding("in-a", "bicycle", 5, 5), finding("in-b", "bicycle", 15, 5),
                finding("on-edge", "bicycle", 10, 5), finding("outside", "illegal_structure", 50, 50)]
    empty_baseline = parse_layer('{"type": "FeatureCollection", "features": []}', "baseline")
    result = run(findings, [cells, empty_baseline])
    assert dict(result.grid_code_by_finding) == {"in-a": "440304001001", "in-b": "440304001002",
                                                 "on-edge": "440304001001", "outside": ""}
    assert result.n_findings_outside_grid == 1 == result.counts["findings_outside_grid"]
    (structure,) = result.violations
    assert structure.grid_code == "" and result.counts["violations_outside_grid"] == 1
    # The cell that comes first in the file takes the shared edge.
    swapped = grid(("440304001002", box(10, 0, 10)), ("440304001001", box(0, 0, 10)))
    assert run(findings, [swapped]).grid_code_by_finding["on-edge"] == "440304001002"


def test_a_cluster_gets_the_code_of_its_mean_point():
    cells = grid(("A", box(0, 0, 21)), ("B", box(21, 0, 30)))
    bikes = [finding("b1", "bicycle", 19, 5), finding("b2", "bicycle", 21.5, 5), finding("b3", "bicycle", 24, 5)]
    result = run(bikes, [cells, layer("bike_parking", box(-50, -50, 5))])
    assert [(v.finding_ids, v.grid_code) for v in result.violations] == [(("b1", "b2", "b3"), "B")]  # mean e=21.5
    assert [result.grid_code_by_finding[k] for k in ("b1", "b2", "b3")] == ["A", "B", "B"]


def test_first_grid_layer_wins_and_no_grid_layer_leaves_codes_empty():
    district, city = grid(("D1", box(0, 0, 10)), name="district"), grid(("C1", box(-100, -100, 200)), name="city")
    findings = [finding("a", "stall", 5, 5), finding("b", "stall", 50, 50)]
    assert dict(run(findings, [district, city]).grid_code_by_finding) == {"a": "D1", "b": "C1"}
    result = run(findings, [])
    assert dict(result.grid_code_by_finding) == {"a": "", "b": ""}
    assert result.n_findings_outside_grid == 0 and "no grid layer: every grid code is empty" in result.notes


# --- everything together ------------------------------------------------------------------------------

def test_all_rules_together_in_kind_order():
    layers = [grid(("G", box(-100, -100, 300))), layer("baseline", box(0, 0, 10)),
              layer("bike_parking", box(50, 0, 10)), layer("no_vending", box(100, 0, 10))]
    findings = [finding("s-new", "illegal_structure", 30, 30, t_s=(5, 6)), finding("s-old", "illegal_structure", 5, 5),
                finding("b-in", "bicycle", 55, 5), finding("b-out", "bicycle", 70, 5, t_s=(2, 3)),
                finding("st-in", "stall", 105, 5, t_s=(1, 2)), finding("st-out", "stall", 130, 5)]
    result = run(findings, layers)
    assert kinds_of(result) == [("illegal_structure", ("s-new",)), ("bike_misparked", ("b-out",)),
                                ("stall_occupation", ("st-in",))]
    assert {v.grid_code for v in result.violations} == {"G"}
    assert result.counts["findings"] == 6 and result.notes == ()
    again = run(list(reversed(findings)), layers)
    assert [v.violation_id for v in again.violations] == [v.violation_id for v in result.violations]


def test_duplicate_finding_ids_are_refused():
    with pytest.raises(ValueError, match="finding ids must be unique, repeated: x"):
        run([finding("x", "stall", 0, 0), finding("x", "bicycle", 1, 1)], [])


# --- parameters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "model, values",
    [
        (StructureMapParams, {"min_score": -0.1}),
        (StructureMapParams, {"min_score": 1.1}),
        (StructureMapParams, {"new_if_overlap_below": 1.5}),
        (StructureMapParams, {"classes": ()}),
        (StructureMapParams, {"classes": ("rooftop shed",)}),
        (BikeMapParams, {"cluster_distance_m": -1.0}),
        (BikeMapParams, {"cluster_distance_m": 51.0}),
        (StallMapParams, {"classes": ["x"] * 17}),
        (StallMapParams, {"min_dwell_s": 60}),  # unknown key: a typo is an error, not ignored
        (MapRulesParams, {"bikes": {}}),
    ],
)
def test_parameters_are_bounded_and_closed(model, values):
    with pytest.raises(ValidationError):
        model.model_validate(values)


def test_parameters_are_described_and_declare_their_classes():
    for model in [*MAP_RULE_PARAMS.values(), MapRulesParams]:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
    assert MAP_RULE_CLASSES == {"illegal_structure": ("illegal_structure",), "bike_misparked": ("bicycle", "ebike"),
                                "stall_occupation": ("stall",)}
    params = MapRulesParams.model_validate({"bike_misparked": {"cluster_distance_m": 5}})
    assert params.bike_misparked.cluster_distance_m == 5.0 and params.stall_occupation == StallMapParams()


def test_docstring_examples_run():
    assert doctest.testmod(maprules_module).failed == 0
