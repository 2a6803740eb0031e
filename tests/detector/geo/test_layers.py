import doctest
import json

import numpy as np
import pytest
import shapely
from shapely.geometry import LinearRing, Polygon

import detector.geo.layers as layers_module
from detector.geo.enu import LocalFrame
from detector.geo.layers import (
    LayerError,
    area_m2,
    covers_points,
    intersection_area_m2,
    load_layer,
    load_previous_flight,
    parse_layer,
    parse_previous_flight,
    project_layer,
)
from detector.schedule import WeeklySchedule

LON0, LAT0 = 114.0579, 22.5431  # Shenzhen, the flight generator's default place
FRAME = LocalFrame(LAT0, LON0, 0.0)
D = 0.0001  # about 10 m of latitude


# --- builders -----------------------------------------------------------------------------------------

def square(lon: float = LON0, lat: float = LAT0, size: float = D) -> list[list[float]]:
    """A closed counter-clockwise square ring, [lon, lat] positions."""
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def feature(rings=None, *, fid=None, props=None, gtype="Polygon", coords=None) -> dict:
    out = {"type": "Feature", "properties": props if props is not None else {},
           "geometry": {"type": gtype, "coordinates": coords if coords is not None else (rings or [square()])}}
    if fid is not None:
        out["id"] = fid
    return out


def collection(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def problems_of(data, role="baseline", source="layer.geojson", **kwargs) -> list[str]:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(LayerError) as info:
        parse_layer(text, role, source=source, **kwargs)
    if len(info.value.problems) <= 20:
        assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


# --- loading valid layers -----------------------------------------------------------------------------

def test_feature_collection_with_polygon_multipolygon_and_holes():
    hole = square(LON0 + 0.3 * D, LAT0 + 0.3 * D, 0.3 * D)[::-1]
    data = collection(
        feature([square(), hole], fid="A"),
        feature(gtype="MultiPolygon", coords=[[square()], [square(LON0 + 3 * D)]], fid=7, props={"name": "two"}),
        feature(),  # no id: numbered by its index
    )
    layer = parse_layer(json.dumps(data), "bike_parking", source="fences.geojson")
    assert layer.name == "fences.geojson" and layer.role == "bike_parking"
    assert [f.feature_id for f in layer.features] == ["A", "7", "#2"]
    assert [f.index for f in layer.features] == [0, 1, 2]
    a, b, _ = layer.features
    assert len(a.rings_lonlat) == 1 and len(a.rings_lonlat[0]) == 2  # one polygon: exterior + hole
    assert len(b.rings_lonlat) == 2  # a MultiPolygon's two polygons
    np.testing.assert_array_equal(a.rings_lonlat[0][0], np.array(square()[:-1]))  # closing position dropped
    assert b.properties["name"] == "two"
    with pytest.raises(TypeError):
        b.properties["name"] = "changed"  # type: ignore[index]
    assert layer.zone_id(a) == "fences.geojson:A"


def test_single_feature_file_and_name_from_stem(tmp_path):
    path = tmp_path / "approved_blocks.geojson"
    path.write_text(json.dumps(feature(fid="B-1")), encoding="utf-8")
    layer = load_layer(path, "baseline")
    assert layer.name == "approved_blocks" and layer.source == str(path)
    assert [f.feature_id for f in layer.features] == ["B-1"]


def test_configured_id_property_and_grid_codes():
    data = collection(feature(props={"cell": "C1", "code": 440304001001}),  # an integer code is read as text
                      feature([square(LON0 + D)], props={"cell": "C2", "code": " 440304001002 "}))
    layer = parse_layer(json.dumps(data), "grid", id_property="cell")
    assert [(f.feature_id, f.code) for f in layer.features] == [("C1", "440304001001"), ("C2", "440304001002")]
    data = collection(feature(props={"gridcode": "G9"}))
    assert parse_layer(json.dumps(data), "grid", code_property="gridcode").features[0].code == "G9"


def test_repeated_consecutive_positions_are_accepted():
    ring = square()
    ring.insert(2, list(ring[1]))
    layer = parse_layer(json.dumps(feature([ring])), "baseline")
    assert len(layer.features[0].rings_lonlat[0][0]) == 4


def test_no_vending_schedules_layer_wide_and_per_feature():
    layer_schedule = WeeklySchedule.from_windows([{"start": "07:00", "end": "21:00"}], "Asia/Shanghai")
    data = collection(
        feature(fid="all-day"),
        feature([square(LON0 + D)], fid="evening",
                props={"schedule": [{"days": ["mon-fri"], "start": "18:00", "end": "22:00"}]}),
    )
    layer = parse_layer(json.dumps(data), "no_vending", schedule=layer_schedule)
    assert layer.schedule is layer_schedule
    first, second = layer.features
    assert first.schedule is layer_schedule  # inherits the layer's
    assert second.schedule.describe() == "mon,tue,wed,thu,fri 18:00-22:00 (Asia/Shanghai)"
    # Roles other than no_vending ignore a "schedule" property (it may mean something else there).
    assert parse_layer(json.dumps(data), "baseline").features[1].schedule is None


def test_layer_of_the_flight_place_passes_the_distance_check():
    layer = parse_layer(json.dumps(feature()), "baseline", frame=FRAME)
    assert len(layer.features) == 1


# --- bad input: one line per problem, naming file, feature and reason ----------------------------------

BOWTIE = [[LON0, LAT0], [LON0 + D, LAT0 + D], [LON0 + D, LAT0], [LON0, LAT0 + D], [LON0, LAT0]]
SWAPPED = [[lat, lon] for lon, lat in square()]


@pytest.mark.parametrize(
    "data, role, kwargs, expected",
    [
        ('{"type": "FeatureCollection",\n "features": [}', "baseline", {},
         "layer.geojson: line 2 column 15: not valid JSON (Expecting value)"),
        ({"type": "Polygon", "coordinates": [square()]}, "baseline", {},
         "layer.geojson: is a GeoJSON 'Polygon', not a FeatureCollection or Feature (wrap the geometry in a Feature)"),
        ([1, 2], "baseline", {}, "layer.geojson: is a JSON list, not a GeoJSON FeatureCollection or Feature"),
        ({"type": "FeatureCollection", "features": {}}, "baseline", {},
         "layer.geojson: 'features' must be a list, got dict"),
        ({**collection(feature()), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}, "baseline", {},
         "layer.geojson: declares the coordinate system"),
        (collection({"type": "Feature", "id": "A", "properties": {}, "geometry": None}), "baseline", {},
         "layer.geojson: feature[0] (id 'A'): has no geometry"),
        (collection(feature(fid="L", gtype="LineString", coords=square())), "baseline", {},
         "layer.geojson: feature[0] (id 'L'): geometry type 'LineString' is not supported (Polygon or MultiPolygon)"),
        (collection("x"), "baseline", {}, "layer.geojson: feature[0]: is not a JSON object"),
        (collection({"type": "Polygon", "coordinates": []}), "baseline", {},
         "layer.geojson: feature[0]: is a 'Polygon', not a 'Feature'"),
        (collection(feature(), feature([square()[:-1]], fid="B-12")), "baseline", {},
         ("layer.geojson: feature[1] (id 'B-12'): ring 0 is not closed (first position [114.0579, 22.5431], "
          "last [114.0579, 22.5432]")),
        (collection(feature([[[LON0, LAT0], [LON0 + D, LAT0], [LON0, LAT0]]], fid="T")), "baseline", {},
         "feature[0] (id 'T'): ring 0 has 3 positions; a closed ring needs at least 4"),
        (collection(feature([SWAPPED], fid="S")), "baseline", {},
         ("feature[0] (id 'S'): ring 0 position 0 [22.5431, 114.0579] is out of range (lon -180..180, "
          "lat -90..90) (and 4 more): lat/lon swapped? GeoJSON is [lon, lat]")),
        (collection(feature([[[200, 10], [201, 10], [201, 11], [200, 10]]])), "baseline", {},
         "feature[0]: ring 0 position 0 [200, 10] is out of range (lon -180..180, lat -90..90) (and 3 more)"),
        (collection(feature([[[LON0, LAT0], "x", [LON0, LAT0 + D], [LON0, LAT0]]])), "baseline", {},
         "feature[0]: ring 0 position 1 must be [lon, lat] numbers, got \"x\""),
        (collection(feature([BOWTIE], fid="bow")), "baseline", {},
         "feature[0] (id 'bow'): ring 0 self-intersecting at segment 2\u20133 (crosses segment 0\u20131)"),
        (collection(feature([[[LON0, LAT0], [LON0 + D, LAT0], [LON0 + 2 * D, LAT0], [LON0, LAT0]]])),
         "baseline", {}, "feature[0]: ring 0 has no area (all points lie on one line)"),
        (collection(feature([square(), square(LON0 + 2 * D)[::-1]], fid="H")), "baseline", {},
         "feature[0] (id 'H'): ring 1 (a hole) has position 0 [114.0581, 22.5431] outside ring 0 (the exterior)"),
        (collection(feature(gtype="MultiPolygon", coords=[[square()], [square()[:-1]]], fid="M")), "baseline", {},
         "feature[0] (id 'M'): polygon 1 ring 0 is not closed"),
        (collection(feature(gtype="MultiPolygon", coords=[], fid="M")), "baseline", {},
         "feature[0] (id 'M'): MultiPolygon has no polygons"),
        (collection(feature(coords=[], fid="E")), "baseline", {},
         "feature[0] (id 'E'): coordinates must be a non-empty list of rings"),
        (collection(feature(fid="A"), feature(fid="A")), "baseline", {},
         "feature[1] (id 'A'): duplicate id 'A' (also feature[0])"),
        (collection(feature(fid="A", props={"name": "x"})), "grid", {},
         "feature[0] (id 'A'): property 'code' (the grid cell code) is missing or empty"),
        (collection(feature(props={"name": "x"})), "baseline", {"id_property": "zone"},
         "feature[0]: property 'zone' (the feature id) is missing or not text/integer"),
        (collection(feature(fid="N", props={"schedule": [{"start": "25:00", "end": "26:00"}]})), "no_vending",
         {"timezone": "Asia/Shanghai"},
         "feature[0] (id 'N'): property 'schedule': window 0: time '25:00' is out of range (00:00..23:59)"),
        (collection(feature(fid="N", props={"schedule": "18:00-22:00"})), "no_vending", {"timezone": "UTC"},
         "feature[0] (id 'N'): property 'schedule' must be a list of windows"),
        (collection(feature(fid="N", props={"schedule": [{"start": "18:00", "end": "22:00"}]})), "no_vending", {},
         "feature[0] (id 'N'): property 'schedule': a schedule needs a time zone"),
        (collection(feature(fid="far", coords=[square(LON0 + 1.5)])), "baseline", {"frame": FRAME},
         ("feature[0] (id 'far'): lies 154.3 km from the flight (more than 100 km): wrong file, or a layer of "
          "another place?")),
        (collection(feature(fid="far", coords=[square(LON0 + 2)]), feature(fid="far2", coords=[square(LON0 + 3)])),
         "baseline", {"frame": FRAME},
         "layer.geojson: every feature lies far from the flight (nearest 205.7 km, more than 100 km): wrong file"),
    ],
)
def test_bad_input_names_file_feature_and_reason(data, role, kwargs, expected):
    problems = problems_of(data, role, **kwargs)
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith("layer.geojson: ")


def test_far_layer_with_swapped_coordinates_gets_the_hint():
    # Swapped lon/lat that stay within range (Europe: lon 8, lat 47 → [47, 8] is a valid position in Africa).
    frame = LocalFrame(47.37, 8.54)
    problems = problems_of(collection(feature(fid="Z", coords=[[[lat, lon] for lon, lat in square(8.54, 47.37)]])),
                           frame=frame)
    assert problems[0].endswith(": lat/lon swapped? GeoJSON is [lon, lat]"), problems


def test_every_problem_of_a_file_is_reported_together():
    data = collection(feature(fid="ok"), feature([square()[:-1]], fid="open"),
                      {"type": "Feature", "properties": {}, "geometry": None}, feature([BOWTIE], fid="bow"))
    problems = problems_of(data, source="blocks.geojson")
    assert [p.split(": ")[1] for p in problems] == ["feature[1] (id 'open')", "feature[2]", "feature[3] (id 'bow')"]
    assert all(p.startswith("blocks.geojson: ") for p in problems)


def test_error_message_lists_at_most_twenty_problems():
    problems = problems_of(collection(*[feature([square()[:-1]]) for _ in range(25)]))
    assert len(problems) == 25
    with pytest.raises(LayerError, match=r"; and 5 more problems$"):
        parse_layer(json.dumps(collection(*[feature([square()[:-1]]) for _ in range(25)])), "baseline")


def test_unreadable_files(tmp_path):
    with pytest.raises(LayerError, match=r"missing\.geojson: cannot read the layer: No such file"):
        load_layer(tmp_path / "missing.geojson", "grid")
    latin = tmp_path / "latin.geojson"
    latin.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(LayerError, match=r"latin\.geojson: not UTF-8 text \(byte 13\)"):
        load_layer(latin, "grid")


def test_caller_mistakes_raise_at_once():
    with pytest.raises(ValueError, match="role must be one of"):
        parse_layer(json.dumps(feature()), "parking")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Shangai'"):
        parse_layer(json.dumps(feature()), "no_vending", timezone="Asia/Shangai")


def test_self_intersection_agrees_with_shapely_on_random_rings():
    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(4, 9))
        ring = (np.array([LON0, LAT0]) + rng.uniform(0, 4 * D, (n, 2))).tolist()
        closed = ring + [ring[0]]
        simple = LinearRing(closed).is_simple
        try:
            parse_layer(json.dumps(feature([closed])), "baseline")
            accepted = True
        except LayerError as exc:
            assert "self-intersecting" in str(exc), str(exc)
            accepted = False
        assert accepted == simple, closed


def circle_ring(n: int) -> list[list[float]]:
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([LON0 + 5 * D * np.cos(ang), LAT0 + 5 * D * np.sin(ang)]).tolist()


def test_long_rings_are_screened_and_still_checked():
    # A 2000-vertex circle (a detailed grid cell) passes the vectorised screen without the quadratic check.
    ring = circle_ring(2000)
    layer = parse_layer(json.dumps(feature([ring + [ring[0]]])), "baseline")
    assert len(layer.features[0].rings_lonlat[0][0]) == 2000
    ring = circle_ring(400)
    ring[10], ring[11] = ring[11], ring[10]  # two positions swapped: the ring crosses itself
    problems = problems_of(feature([ring + [ring[0]]]))
    assert "ring 0 self-intersecting at segment 11\u201312 (crosses segment 9\u201310)" in problems[0]


# --- an earlier flight's findings as the baseline ------------------------------------------------------

def findings_file(*findings: tuple[str, str, list]) -> dict:
    """The output format of `streetwatch drone`: a Point and a footprint Polygon per finding."""
    features = []
    for finding_id, cls, ring in findings:
        props = {"class": cls, "finding_id": finding_id, "score": 0.8, "n_frames": 3}
        centre = np.mean(ring[:-1], axis=0).tolist()
        features.append({"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": centre}})
        if ring:
            features.append({"type": "Feature", "properties": props,
                             "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return collection(*features)


def test_previous_flight_structures_become_the_baseline(tmp_path):
    path = tmp_path / "findings.geojson"
    data = findings_file(("f1:illegal_structure:0", "illegal_structure", square()),
                         ("f1:bicycle:0", "bicycle", square(LON0 + D, size=D / 10)),
                         ("f1:illegal_structure:1", "illegal_structure", square(LON0 + 3 * D)))
    path.write_text(json.dumps(data), encoding="utf-8")
    layer = load_previous_flight(path, frame=FRAME)
    assert layer.role == "baseline" and layer.name == "findings"
    assert [f.feature_id for f in layer.features] == ["f1:illegal_structure:0", "f1:illegal_structure:1"]
    assert layer.features[0].properties["class"] == "illegal_structure"


def test_previous_flight_problems():
    data = findings_file(("f1:illegal_structure:0", "illegal_structure", square()))
    data["features"].pop()  # the footprint Polygon is lost
    data["features"].append({"type": "Feature", "properties": {"class": "illegal_structure"},
                             "geometry": {"type": "Polygon", "coordinates": [square()]}})
    with pytest.raises(LayerError) as info:
        parse_previous_flight(json.dumps(data), source="old/findings.geojson")
    assert info.value.problems == [
        ("old/findings.geojson: feature[1]: property 'finding_id' is missing (a streetwatch findings file gives "
         "every feature one)"),
        ("old/findings.geojson: feature[0] (id 'f1:illegal_structure:0'): finding has a Point but no footprint "
         "Polygon"),
    ]


# --- projection and geometry (shapely is the oracle) ---------------------------------------------------

def test_projection_into_the_local_frame():
    hole = square(LON0 + 0.3 * D, LAT0 + 0.3 * D, 0.3 * D)  # written counter-clockwise: winding is not trusted
    layer = parse_layer(json.dumps(feature([square()[::-1], hole])), "baseline")
    projected = project_layer(layer, FRAME)
    (exterior, inner), = projected.features[0].polygons_en_m
    corners = np.array(square()[:-1])
    e, n, _ = FRAME.to_enu(corners[:, 1], corners[:, 0])
    assert Polygon(exterior).normalize().equals_exact(Polygon(np.column_stack([e, n])).normalize(), 1e-9)
    assert area_m2([(exterior,)]) > 0 and Polygon(exterior).exterior.is_ccw
    assert not Polygon(inner).exterior.is_ccw  # holes clockwise
    width_m = exterior[:, 0].max() - exterior[:, 0].min()
    assert width_m == pytest.approx(10.29, abs=0.01)  # 0.0001° of longitude at 22.5° N
    np.testing.assert_allclose(projected.features[0].bbox_en_m, [0, 0, width_m, exterior[:, 1].max()], atol=1e-6)
    inside, in_hole, outside = [1.0, 1.0], [5.0, 5.0], [-1.0, 1.0]
    assert projected.features[0].covers(np.array([inside, in_hole, outside])).tolist() == [True, False, False]


def random_polygon(rng, centre, radius, n, jitter):
    """A star-shaped (often non-convex) simple polygon."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * (1 - jitter * rng.uniform(0, 1, n))
    return np.column_stack([centre[0] + r * np.cos(ang), centre[1] + r * np.sin(ang)])


def random_pairs(seed: int, count: int):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        a = random_polygon(rng, rng.uniform(-6, 6, 2), 10, int(rng.integers(3, 12)), 0.6)
        exterior = random_polygon(rng, rng.uniform(-6, 6, 2), 12, int(rng.integers(3, 30)), 0.3)
        hole = random_polygon(rng, exterior.mean(axis=0), 2.5, 6, 0.2)
        with_hole = bool(rng.integers(0, 2))
        b = (exterior, hole) if with_hole else (exterior,)
        oracle_b = Polygon(exterior, [hole] if with_hole else [])
        if Polygon(a).is_valid and oracle_b.is_valid:
            out.append((a, b, oracle_b))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_intersection_area_matches_shapely_on_random_polygons(seed):
    for a, b, oracle_b in random_pairs(seed, 50):
        expected = Polygon(a).intersection(oracle_b).area
        assert intersection_area_m2((a,), b) == pytest.approx(expected, abs=1e-9)
        assert intersection_area_m2(b, (a,)) == pytest.approx(expected, abs=1e-9)  # symmetric, holes on A's side
        assert area_m2([b]) == pytest.approx(oracle_b.area, abs=1e-9)


def sq(x, y, s):
    return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], float)


@pytest.mark.parametrize(
    "a, b",
    [
        (sq(0, 0, 2), sq(0, 0, 2)),  # identical: every edge shared, same way
        (sq(0, 0, 2), sq(0, 0, 2)[::-1]),  # identical, opposite winding
        (sq(0, 0, 2), sq(2, 0, 2)),  # touching along an edge: no area
        (sq(0, 0, 2), sq(3, 0, 2)),  # apart
        (sq(0, 0, 2), sq(1, 0, 2)),  # half overlap with collinear edges
        (sq(0, 0, 4), sq(1, 0, 2)),  # inside, sharing part of the bottom edge
        (sq(0, 0, 4), sq(1, 1, 2)),  # strictly inside
        (sq(0, 0, 2), sq(1, 1, 2)),  # corner overlap
        (np.array([[0, 0], [4, 0], [4, 4], [2, 1], [0, 4]], float), sq(1, 0, 2)),  # non-convex
    ],
)
def test_intersection_area_degenerate_cases(a, b):
    expected = Polygon(a).intersection(Polygon(b)).area
    assert intersection_area_m2((a,), (b,)) == pytest.approx(expected, abs=1e-12)


def test_intersection_with_a_footprint_in_a_hole():
    outer, hole = sq(0, 0, 10), sq(3, 3, 4)
    assert intersection_area_m2((sq(4, 4, 2),), (outer, hole)) == pytest.approx(0.0, abs=1e-12)
    assert intersection_area_m2((sq(2, 4, 2),), (outer, hole)) == pytest.approx(2.0)


def test_covers_points_matches_shapely_inside_outside_and_on_edges():
    rng = np.random.default_rng(3)
    for a, b, oracle_b in random_pairs(5, 30):
        exterior = b[0]
        edge_points = (exterior + np.roll(exterior, -1, axis=0)) / 2  # midpoints of its edges
        pts = np.concatenate([rng.uniform(-20, 20, (200, 2)), exterior, edge_points, b[-1]])
        expected = shapely.distance(oracle_b, shapely.points(pts)) <= 1e-6
        np.testing.assert_array_equal(covers_points([b], pts), expected)


# --- documentation ------------------------------------------------------------------------------------

def test_docstring_examples_run():
    assert doctest.testmod(layers_module).failed == 0
