"""The drone benchmark's scoring on hand-made findings and truth (no model, no video), its flights and its cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pymap3d
import pytest

from benchmarks import drone
from benchmarks.drone import (BenchFlight, Finding, GeometryErrors, TruthObject, bench_flights, class_scores,
                              duplicate_counts, ensure_flight, error_stats, flight_key, generator_sha,
                              geometry_errors, match_one_to_one, read_findings, score_findings, select_flights,
                              town_objects, violation_scores, whole_in_frame)
from detector.geo.camera import CameraIntrinsics
from detector.geo.enu import LocalFrame
from detector.types import FrameGeo

ORIGIN = {"lat_deg": 22.5431, "lon_deg": 114.0579, "ground_alt_m": 12.3}


def obj(oid: str, cls: str, e: float, n: float, kind: str = "", counts: bool = True) -> TruthObject:
    return TruthObject(oid, cls, e, n, kind, counts)


def fnd(fid: str, cls: str, e: float, n: float, kind: str | None = None) -> Finding:
    return Finding(fid, cls, e, n, kind)


# --- matching and scores ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("findings, objects, radius, expected", [
    # nearest pair first: f2 takes a (0.2 m), f1 falls to b (2 m), not the other way round
    ([fnd("f1", "stall", 1, 0), fnd("f2", "stall", 0.2, 0)], [obj("a", "stall", 0, 0), obj("b", "stall", 3, 0)],
     5.0, [(1, 0, 0.2), (0, 1, 2.0)]),
    # one-to-one: the second finding of one object stays unmatched
    ([fnd("f1", "stall", 0.1, 0), fnd("f2", "stall", 0.3, 0)], [obj("a", "stall", 0, 0)], 5.0, [(0, 0, 0.1)]),
    # classes never match each other
    ([fnd("f1", "bicycle", 0, 0)], [obj("a", "stall", 0, 0)], 5.0, []),
    # the radius is inclusive, and a pair beyond it is no match
    ([fnd("f1", "stall", 2, 0), fnd("f2", "stall", 10, 2.01)], [obj("a", "stall", 0, 0), obj("b", "stall", 10, 0)],
     2.0, [(0, 0, 2.0)]),
    ([], [obj("a", "stall", 0, 0)], 5.0, []),
])
def test_match_one_to_one(findings, objects, radius, expected):
    got = [(m.finding, m.obj, round(m.error_m, 3)) for m in match_one_to_one(findings, objects, radius)]
    assert got == expected


def test_class_scores_count_hits_false_positives_and_ignored_per_radius():
    objects = [obj("a", "stall", 0, 0), obj("b", "stall", 20, 0), obj("c", "stall", 50, 0, counts=False),
               obj("d", "bicycle", 0, 30)]
    findings = [fnd("1", "stall", 3, 0),      # a at 3 m: a hit at 5 m, a false positive at 2 m
                fnd("2", "stall", 20, 0.5),   # b at 0.5 m
                fnd("3", "stall", 50, 1),     # c does not count: ignored
                fnd("4", "stall", 90, 0),     # nothing near: false positive
                fnd("5", "bicycle", 0, 31)]   # d at 1 m
    at2 = class_scores(findings, objects, 2.0)
    at5 = class_scores(findings, objects, 5.0)
    assert (at2["stall"]["hits"], at2["stall"]["false_positives"], at2["stall"]["ignored"]) == (1, 2, 1)
    assert (at5["stall"]["hits"], at5["stall"]["false_positives"], at5["stall"]["ignored"]) == (2, 1, 1)
    assert at2["stall"]["objects"] == at5["stall"]["objects"] == 2  # c does not count
    assert at2["stall"]["precision"] == pytest.approx(1 / 3, abs=1e-4) and at2["stall"]["recall"] == 0.5
    assert at5["stall"]["precision"] == pytest.approx(2 / 3, abs=1e-4) and at5["stall"]["recall"] == 1.0
    assert at5["stall"]["error"]["n"] == 2 and at5["stall"]["error"]["median_m"] == pytest.approx(1.75)
    assert at5["bicycle"]["recall"] == 1.0 and at5["bicycle"]["error"]["median_m"] == pytest.approx(1.0)
    assert at5["illegal_structure"] == {"objects": 0, "findings": 0, "hits": 0, "false_positives": 0, "ignored": 0,
                                        "precision": None, "recall": None,
                                        "error": {"n": 0, "median_m": None, "p95_m": None, "max_m": None}}


def test_duplicates_go_to_the_nearest_object_before_matching():
    # a row of bikes 1 m apart, one finding each: no duplicate although each finding is within 5 m of three bikes
    row = [obj(f"b{i}", "bicycle", float(i), 0) for i in range(3)]
    assert duplicate_counts([fnd(str(i), "bicycle", i + 0.1, 0) for i in range(3)], row)["bicycle"] == \
        {"objects": 0, "extra_findings": 0}
    # three findings around one stall: one object, two extra; a stall that does not count is not reported
    stalls = [obj("s1", "stall", 0, 0), obj("s2", "stall", 40, 0, counts=False)]
    findings = [fnd("1", "stall", 0.5, 0), fnd("2", "stall", -3, 0), fnd("3", "stall", 0, 4.5),
                fnd("4", "stall", 40, 1), fnd("5", "stall", 41, 0), fnd("6", "stall", 20, 0)]
    assert duplicate_counts(findings, stalls)["stall"] == {"objects": 1, "extra_findings": 2}
    assert duplicate_counts(findings, stalls, radius_m=1.0)["stall"] == {"objects": 0, "extra_findings": 0}


def test_violation_scores_found_expected_unexpected():
    objects = [obj("b1", "bicycle", 0, 0, "bike_misparked"), obj("b2", "bicycle", 10, 0, "bike_misparked"),
               obj("b3", "bicycle", 20, 0), obj("s1", "stall", 30, 0, "stall_occupation"),
               obj("x", "illegal_structure", 60, 0, "illegal_structure", counts=False)]
    findings = [fnd("1", "bicycle", 0.3, 0, "bike_misparked"),   # found
                fnd("2", "bicycle", 10.2, 0, None),              # b2 found but not flagged: a miss
                fnd("3", "bicycle", 20, 0, "bike_misparked"),    # b3 is parked legally: unexpected
                fnd("4", "bicycle", 90, 0, "bike_misparked"),    # nothing there: unexpected
                fnd("5", "stall", 30.5, 0, "stall_occupation"),  # found
                fnd("6", "illegal_structure", 60, 0, "illegal_structure")]  # a violation that does not count
    assert violation_scores(findings, objects) == {
        "bike_misparked": {"expected": 2, "found": 1, "unexpected": 2},
        "illegal_structure": {"expected": 0, "found": 0, "unexpected": 0},
        "stall_occupation": {"expected": 1, "found": 1, "unexpected": 0}}


@pytest.mark.parametrize("errors, expected", [
    ([0.1, 0.2, 0.3, 10.0], {"n": 4, "median_m": 0.25, "p95_m": 8.545, "max_m": 10.0}),
    ([1.0], {"n": 1, "median_m": 1.0, "p95_m": 1.0, "max_m": 1.0}),
    ([], {"n": 0, "median_m": None, "p95_m": None, "max_m": None}),
])
def test_error_stats(errors, expected):
    assert error_stats(errors) == expected


def test_read_findings_keeps_points_in_the_truth_frame():
    lat, lon, _ = pymap3d.enu2geodetic(3.0, 10.0, ORIGIN["ground_alt_m"], ORIGIN["lat_deg"], ORIGIN["lon_deg"],
                                       ORIGIN["ground_alt_m"])
    props = {"finding_id": "f1", "class": "stall", "kind": "stall_occupation"}
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
         "properties": {**props, "role": "point"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
         "properties": {**props, "role": "footprint"}}]}
    (f,) = read_findings(fc, ORIGIN)
    assert (f.finding_id, f.class_name, f.kind) == ("f1", "stall", "stall_occupation")
    assert (f.east_m, f.north_m) == (pytest.approx(3.0, abs=1e-3), pytest.approx(10.0, abs=1e-3))


# --- geometry -------------------------------------------------------------------------------------------------

def nadir_truth(alt_m: float = 50.0, yaw_deg: float = 0.0, size_px=(400, 300), focal_px: float = 800.0,
                pitch_deg: float = -90.0) -> dict:
    """One frame, the camera `alt_m` above the origin looking straight down (image x = east at yaw 0)."""
    one = lambda v: [float(v)]  # noqa: E731
    return {"origin": ORIGIN, "camera": {"width_px": size_px[0], "height_px": size_px[1], "focal_px": focal_px},
            "poses": {"t_s": one(0), "east_m": one(0), "north_m": one(0), "up_m": one(alt_m), "yaw_deg": one(yaw_deg),
                      "pitch_deg": one(pitch_deg), "roll_deg": one(0), "course_deg": one(yaw_deg)}}


def square(e: float, n: float, half: float = 0.5) -> np.ndarray:
    return np.array([[e - half, n - half], [e + half, n - half], [e + half, n + half], [e - half, n + half]])


def test_whole_in_frame_needs_every_corner_inside_and_range():
    truth = nadir_truth()  # 400×300 px at f = 800 px from 50 m: 25 m × 18.75 m of ground
    fps = [square(0, 0), square(12.0, 0), square(12.1, 0), square(0, 8.8), square(0, 9.0)]
    assert whole_in_frame(truth, 0, fps).tolist() == [True, True, False, True, False]
    assert whole_in_frame(truth, 0, fps[:1], max_range_m=49.0).tolist() == [False]  # 50 m straight down


def test_geometry_errors_vanish_with_exact_telemetry_and_grow_with_a_position_error():
    truth = nadir_truth()
    objects = [obj("a", "stall", 5.0, 3.0), obj("b", "illegal_structure", -6.0, -4.0),
               obj("c", "stall", 0.0, 0.0, counts=False)]
    footprints = {"a": square(5.0, 3.0), "b": square(-6.0, -4.0, 1.5), "c": square(0.0, 0.0)}
    shown = {0: np.array([True, True, True])}
    intr = CameraIntrinsics.from_focal_px(800.0, 400, 300)
    local = LocalFrame(ORIGIN["lat_deg"], ORIGIN["lon_deg"], 0.0)
    exact = {0: FrameGeo(ORIGIN["lat_deg"], ORIGIN["lon_deg"], alt_m=50.0, yaw_deg=0.0, pitch_deg=-90.0,
                         roll_deg=0.0)}
    got = geometry_errors(truth, objects, shown, exact, local, intr, footprints)
    assert len(got.point_m) == len(got.truth_box_m) == 2 and got.not_placed == 0  # c does not count
    assert max(got.point_m) < 0.01 and max(got.truth_box_m) < 0.01  # squares at nadir: box centre = centre
    shifted = {0: replace(exact[0], lat_deg=ORIGIN["lat_deg"] + 1e-5)}  # 1.1 m north
    got = geometry_errors(truth, objects, shown, shifted, local, intr, footprints)
    assert all(1.0 < e < 1.2 for e in got.point_m + got.truth_box_m)
    assert geometry_errors(truth, objects, {0: np.zeros(3, bool)}, exact, local, intr, footprints) == \
        GeometryErrors([], [], 0)


def test_geometry_errors_count_what_cannot_be_placed_and_pair_the_rest():
    truth = nadir_truth(pitch_deg=-6.0)  # looking north, nearly at the horizon
    objects = [obj("far", "stall", 0.0, 600.0), obj("near", "stall", 0.0, 300.0)]
    footprints = {"far": square(0.0, 600.0), "near": square(0.0, 300.0)}
    intr = CameraIntrinsics.from_focal_px(800.0, 400, 300)
    local = LocalFrame(ORIGIN["lat_deg"], ORIGIN["lon_deg"], 0.0)
    geo = {0: FrameGeo(ORIGIN["lat_deg"], ORIGIN["lon_deg"], alt_m=50.0, yaw_deg=0.0, pitch_deg=-6.0)}
    shown = {0: np.array([True, True])}
    assert whole_in_frame(truth, 0, list(footprints.values()), max_range_m=1000.0).tolist() == [True, True]
    got = geometry_errors(truth, objects, shown, geo, local, intr, footprints)
    assert got.not_placed == 2  # the far one, as a point and as a box: beyond detector.geo's 500 m range
    assert len(got.point_m) == len(got.truth_box_m) == 1
    assert got.point_m[0] < 0.01
    assert 0.3 < got.truth_box_m[0] < 0.6  # oblique: the box's bottom-centre, the near edge of a 1 m square
    # a frame without telemetry places nothing and counts nothing (the pipeline skips it too)
    assert geometry_errors(truth, objects, shown, {0: None}, local, intr, footprints) == GeometryErrors([], [], 0)


def test_town_objects_count_only_what_the_frames_show_whole_and_visibly():
    from datasets.synth.flight_town import TownDensity, lay_out_town

    town = lay_out_town(3, 40.0)
    truth = nadir_truth(focal_px=300.0)  # 400×300 px from 50 m: 66.7 m × 50 m of ground
    truth["spec"] = {"seed": 3, "density": vars(TownDensity())}
    truth["town"] = {"half_size_m": 40.0}
    listed = [o for o in town.objects if abs(o.east_m) < 36 and abs(o.north_m) < 27]
    assert len(listed) >= 3
    hidden = listed[0].object_id
    truth["objects"] = [{"id": o.object_id, "class": o.class_name, "east_m": o.east_m, "north_m": o.north_m,
                         "footprint_en_m": o.footprint_en_m.tolist(),
                         "visible_fraction": 0.2 if o.object_id == hidden else 1.0,
                         "violation": {"kind": "bike_misparked"} if o.class_name == "bicycle" else None}
                        for o in listed]
    objects, shown, notes = town_objects(truth, [0])
    assert notes == []
    assert len(objects) == len(town.objects)  # every object of the town, so no finding of one is a false positive
    by_id = {o.object_id: o for o in objects}

    def whole(fp: np.ndarray) -> bool:  # nadir, yaw 0: image x is east, image y is south
        return bool((np.abs(fp[:, 0]) <= 100 / 3).all() and (np.abs(fp[:, 1]) <= 25).all())

    for o in town.objects:
        expected = o.object_id != hidden and o in listed and whole(o.footprint_en_m)
        assert by_id[o.object_id].counts == expected, o.object_id
    assert 3 <= sum(o.counts for o in objects) < len(listed) - 1  # some cut by the frame's edge, one hidden
    assert all(o.violation_kind == "bike_misparked" for o in objects if o.counts and o.class_name == "bicycle")
    assert shown[0].sum() == sum(o.counts for o in objects)


# --- flights and cache -----------------------------------------------------------------------------------------

def test_the_flights_are_the_issues():
    flights = bench_flights()
    speed = flights[0]
    assert speed.role == "speed" and speed.spec.frame_size_px == (3840, 2160) and speed.spec.fps == 30.0
    assert (speed.spec.duration_s, speed.spec.alt_m, speed.spec.yaw_deg, speed.spec.pitch_deg) == (60, 50, 0, -90)
    grid = {(f.spec.yaw_deg, f.spec.pitch_deg, f.spec.alt_m) for f in flights[1:]}
    assert grid == {(y, p, a) for y in (0, 37) for p in (-90, -60) for a in (30, 50, 80)}
    assert all(f.spec.frame_size_px == (3840, 2160) and f.spec.fps == 5.0 for f in flights[1:])
    assert len({f.name for f in flights}) == len(flights)
    assert all(f.spec.frame_size_px == (1280, 720) and f.name.startswith("quick-") for f in bench_flights(True))


def test_select_flights_by_pattern():
    flights = bench_flights()
    assert [f.name for f in select_flights(flights, ["y37-p60-*"])] == ["y37-p60-a50", "y37-p60-a30", "y37-p60-a80"]
    assert [f.name for f in select_flights(flights, ["speed", "speed"])] == ["speed"]
    assert select_flights(flights, None) == flights
    with pytest.raises(ValueError, match="'y45'.*speed"):
        select_flights(flights, ["y45"])


def test_the_generator_hash_covers_the_generator_not_the_street_renderer():
    sha, files = generator_sha()
    assert {"datasets/synth/flight.py", "datasets/synth/flight_town.py", "datasets/synth/camera.py"} <= set(files)
    assert "datasets/synth/street.py" not in files
    assert len(sha) == 64
    spec = bench_flights()[1].spec.to_dict()
    assert flight_key(spec, sha) == flight_key(json.loads(json.dumps(spec)), sha)
    assert flight_key(spec, sha) != flight_key({**spec, "alt_m": 51.0}, sha) != flight_key(spec, sha[::-1])


def test_the_cache_regenerates_only_when_the_spec_or_the_generator_changes(tmp_path, monkeypatch):
    import datasets.synth.flight as flight_module
    import service.cli.dataset as dataset_cli

    made: list[Path] = []

    def fake_generate(spec, out):
        out = Path(out)
        out.mkdir(parents=True)
        (out / "truth.json").write_text("{}")
        made.append(out)
        return SimpleNamespace(layer_paths={}, video_codec="libx264", n_images=3, n_objects=0, notes=())

    monkeypatch.setattr(flight_module, "generate_flight", fake_generate)
    monkeypatch.setattr(dataset_cli, "write_flight_config", lambda out, spec, layers: Path(out) / "drone.yaml")
    sha = ["a" * 64]
    monkeypatch.setattr(drone, "generator_sha", lambda: (sha[0], []))
    flight = BenchFlight("tiny", bench_flights(True)[1].spec)
    quiet = lambda message: None  # noqa: E731

    first = ensure_flight(flight, tmp_path, log=quiet)
    again = ensure_flight(flight, tmp_path, log=quiet)
    assert first.generated_now and not again.generated_now and again.root == first.root and len(made) == 1
    assert not list(tmp_path.glob("flights/*.partial"))
    other_spec = ensure_flight(replace(flight, spec=replace(flight.spec, alt_m=60.0)), tmp_path, log=quiet)
    assert other_spec.generated_now and other_spec.root != first.root and not first.root.exists()

    sha[0] = "b" * 64  # the generator changed: the same spec is made again, unless a stale one is accepted
    stale = ensure_flight(replace(flight, spec=replace(flight.spec, alt_m=60.0)), tmp_path, keep_stale=True, log=quiet)
    assert stale.stale and stale.root == other_spec.root and len(made) == 2
    fresh = ensure_flight(replace(flight, spec=replace(flight.spec, alt_m=60.0)), tmp_path, log=quiet)
    assert fresh.generated_now and not fresh.stale and not other_spec.root.exists() and len(made) == 3


def test_the_markdown_has_a_row_per_flight_and_marks_the_target():
    objects = [obj("a", "stall", 0, 0, "stall_occupation"), obj("b", "bicycle", 10, 0)]
    good = score_findings([fnd("1", "stall", 0.1, 0, "stall_occupation"), fnd("2", "bicycle", 10.2, 0)], objects)
    bad = score_findings([fnd("1", "stall", 3.0, 0, "stall_occupation"), fnd("2", "bicycle", 14.0, 0)], objects)

    def row(name: str, role: str, fps: float, scores: dict, rtf: float) -> dict:
        stats = error_stats([0.05])
        return {"name": name, "role": role, "runs": 2 if role == "speed" else 1,
                "spec": {"frame_size_px": [3840, 2160], "fps": fps, "duration_s": 60.0, "alt_m": 50.0, "yaw_deg": 0.0,
                         "pitch_deg": -90.0, "speed_mps": 8.0, "seed": 11, "gsd_m": 0.02},
                "wall_s": 60 * rtf, "wall_s_per_run": [60 * rtf] * 2, "realtime_factor": rtf,
                "load_avg_1min_before_runs": [1.0], "timings_s": {k: 1.0 for k in (*drone.STAGES, "total")},
                "frames": {"total": 1800, "sampled": 31, "processed": 31}, "duration_s": 60.0,
                "telemetry": {"yaw_sources": {"track": 31}}, "scores": scores,
                "truth": {"objects_that_count": {"bicycle": 1, "stall": 1, "illegal_structure": 0},
                          "objects_in_truth_json": 2, "objects_in_town": 9},
                "generator_sha": "abcdef012345", "stale_generator": role != "speed", "generated_now": False,
                "generate_s": 100.0, "flight_dir": f"var/drone-bench/flights/{name}",
                "geometry": {"point": stats, "truth_box": stats, "not_placed": 0}, "notes": []}

    result = {"environment": {"date_utc": "2026-01-01T00:00:00+00:00", "cpu_model": "cpu", "cpu_count": 2,
                              "onnxruntime": "1", "opencv": "4"},
              "settings": {"quick": False, "seed": 11, "threads": 0, "load_avg_1min_at_start": 0.5},
              "flights": [row("speed", "speed", 30.0, good, 0.8), row("y0-p90-a50", "accuracy", 5.0, bad, 0.5)]}
    md = drone.to_markdown(result)
    assert "| speed | 3840×2160@30 | 60 | 2 | 31/1800 | **48.0** | **0.80** |" in md
    assert "realtime factor 0.80: target ≤ 1.0 met" in md
    assert "| speed | 50 | 0 | -90 | track | 2 | 2 | 0.15 / 0.20 ✓ |" in md
    assert "| y0-p90-a50 | 50 | 0 | -90 | track | 2 | 2 | 3.50 / 3.95 ✗ |" in md
    assert "`speed` (30 fps) and `y0-p90-a50` (5 fps) differ only in frame rate" in md
    assert "| speed | 1 / 1 / 0 |" in md and "| y0-p90-a50 | 1 / 1 / 0 |" in md
    assert md.count("### ") == 3
    assert "| speed | `abcdef012345` | cache | 100 | 2 | 9 |" in md
    assert "| y0-p90-a50 | `abcdef012345` (older generator, same spec: --keep-stale) |" in md
