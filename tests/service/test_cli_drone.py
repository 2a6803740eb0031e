"""``streetwatch drone`` end to end on short synthetic flights (video + SRT, geotagged stills), every bad input of
issue 15 point 8 through the command line, and ``streetwatch dataset flight``.

The flights come from `tests.flights` (rendered once per session); the truth is the generator's truth.json. The
accuracy checks are a loose floor (half of the stalls and bikes the analysed frames show, median error < 1.5 m):
`benchmarks/drone.py` measures accuracy properly.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml

from service.cli import main
from service.kinds import default_category_codes
from tests.flights import (STILLS_SPEC, VIDEO_SPEC, BuiltFlight, copy_flight, corrupt_middle, set_srt_rel_alt,
                           shared_flight, shift_layer, shown_objects, truncate_srt, truth_matches)

FINDING_PROPERTIES = {"finding_id", "class", "kind", "violation_id", "zone_id", "score", "n_frames", "first_t_s",
                      "last_t_s", "first_seen", "last_seen", "grid_code", "category_code", "evidence", "case_id",
                      "lat_deg", "lon_deg", "role"}
SUMMARY_KEYS = {"flight_id", "name", "source", "camera", "origin", "started_at", "timezone", "duration_s", "frames",
                "telemetry", "findings", "violations", "by_class", "by_kind", "timings_s", "realtime_factor", "notes",
                "status"}
KINDS = {"illegal_structure", "bike_misparked", "stall_occupation"}


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str
    out_dir: Path

    def json(self, name: str) -> Any:
        return json.loads((self.out_dir / name).read_text(encoding="utf-8"))

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(argv: list[str], out_dir: Path) -> CliRun:
    """``streetwatch ARGV`` in this process (as `service.cli.main`), its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return CliRun(code, out.getvalue(), err.getvalue(), out_dir)


def drone(flight_path: Path, config: Path, out_dir: Path, *extra: str, quiet: bool = True) -> CliRun:
    argv = ["drone", str(flight_path), "--config", str(config), "--out", str(out_dir), *extra]
    return run_cli(argv + (["--quiet"] if quiet else []), out_dir)


@pytest.fixture(scope="module")
def video_flight(tmp_path_factory) -> BuiltFlight:
    return shared_flight(VIDEO_SPEC, tmp_path_factory)


@pytest.fixture(scope="module")
def stills_flight(tmp_path_factory) -> BuiltFlight:
    return shared_flight(STILLS_SPEC, tmp_path_factory)


@pytest.fixture(scope="module")
def video_run(video_flight, tmp_path_factory) -> CliRun:
    # no --srt: flight.SRT beside flight.mp4 is found by name; the progress bar on (it writes to stderr)
    return drone(video_flight.video, video_flight.config, tmp_path_factory.mktemp("drone-video") / "out",
                 quiet=False)


@pytest.fixture(scope="module")
def stills_run(stills_flight, tmp_path_factory) -> CliRun:
    return drone(stills_flight.stills_dir, stills_flight.config, tmp_path_factory.mktemp("drone-stills") / "out")


# --- RFC 7946 and the output folder -------------------------------------------------------------------------

def _assert_position(pos: Any, origin: dict[str, float]) -> None:
    assert isinstance(pos, list) and len(pos) == 2 and all(isinstance(v, float) for v in pos), pos
    lon, lat = pos
    # [lon, lat], not [lat, lon]: the flight is within a few hundred metres of its take-off point
    assert abs(lon - origin["lon_deg"]) < 0.01 and abs(lat - origin["lat_deg"]) < 0.01, pos


def _assert_polygon(geometry: dict[str, Any], origin: dict[str, float]) -> None:
    from shapely.geometry import LinearRing, shape

    assert geometry["type"] == "Polygon"
    ring = geometry["coordinates"][0]
    assert len(ring) >= 4 and ring[0] == ring[-1], "RFC 7946: a closed ring of at least 4 positions"
    for pos in ring:
        _assert_position(pos, origin)
    assert LinearRing(ring).is_ccw, "RFC 7946: exterior rings are counter-clockwise"
    assert shape(geometry).is_valid


def assert_feature_collection(fc: dict[str, Any], origin: dict[str, float]) -> list[dict[str, Any]]:
    """RFC 7946 FeatureCollection of Points, LineStrings and Polygons near `origin`; returns its features."""
    assert fc["type"] == "FeatureCollection" and isinstance(fc["features"], list)
    assert "crs" not in fc, "RFC 7946 has no crs member: WGS84 always"
    for f in fc["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict) and isinstance(f["id"], str)
        g = f["geometry"]
        if g["type"] == "Point":
            _assert_position(g["coordinates"], origin)
        elif g["type"] == "LineString":
            assert len(g["coordinates"]) >= 2
            for pos in g["coordinates"]:
                _assert_position(pos, origin)
        else:
            _assert_polygon(g, origin)
    ids = [f["id"] for f in fc["features"]]
    assert len(ids) == len(set(ids)), "feature ids are unique"
    return fc["features"]


def assert_jpeg(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:3] == b"\xff\xd8\xff", f"{path}: not a JPEG"
    assert cv2.imread(str(path)) is not None, f"{path}: does not decode"


def assert_output_folder(run: CliRun, flight: BuiltFlight) -> dict[str, Any]:
    """Every file of flight_outputs.md, well formed; returns summary.json."""
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr
    out, origin = run.out_dir, flight.truth["origin"]
    summary = run.json("summary.json")
    assert SUMMARY_KEYS <= set(summary)
    assert summary["status"] == "done"
    processed = summary["frames"]["processed"]
    assert 1 <= processed <= summary["frames"]["sampled"] <= summary["frames"]["total"]
    assert set(summary["timings_s"]) >= {"decode", "detect", "georeference", "merge", "rules", "outputs", "total"}
    assert summary["timezone"] == flight.spec.timezone
    assert summary["started_at"].startswith(flight.spec.start_local) and summary["started_at"].endswith("+08:00")

    features = assert_feature_collection(run.json("findings.geojson"), origin)
    points = [f for f in features if f["properties"]["role"] == "point"]
    footprints = {f["id"]: f for f in features if f["properties"]["role"] == "footprint"}
    assert len(points) == summary["findings"] and len(footprints) == len(points) == len(features) / 2
    codes = default_category_codes()
    for p in points:
        props = p["properties"]
        assert set(props) == FINDING_PROPERTIES
        assert p["geometry"]["type"] == "Point" and p["id"] == props["finding_id"]
        twin = footprints[f"{p['id']}:footprint"]
        assert {k: v for k, v in twin["properties"].items() if k != "role"} == \
            {k: v for k, v in props.items() if k != "role"}
        assert p["geometry"]["coordinates"] == [props["lon_deg"], props["lat_deg"]]
        assert props["case_id"] is None, "the CLI opens no case"
        assert 0 < props["score"] <= 1 and props["n_frames"] >= 1
        assert 0 <= props["first_t_s"] <= props["last_t_s"] <= summary["duration_s"] + 1e-6
        assert props["first_seen"].endswith("+08:00") and props["first_seen"] <= props["last_seen"]
        if props["kind"] is None:
            assert props["violation_id"] is None and props["category_code"] is None and props["zone_id"] == ""
        else:
            assert props["kind"] in KINDS and props["violation_id"]
            assert props["category_code"] == codes[props["kind"]]
        assert set(props["evidence"]) == {"annotated", "crop"}
        for rel in props["evidence"].values():
            assert not Path(rel).is_absolute()
            assert_jpeg(out / rel)
    assert len({p["properties"]["violation_id"] for p in points if p["properties"]["kind"]}) == \
        summary["violations"] == sum(summary["by_kind"].values())
    assert sum(summary["by_class"].values()) == summary["findings"]

    track = assert_feature_collection(run.json("track.geojson"), origin)
    assert track[0]["geometry"]["type"] == "LineString" and track[0]["properties"]["role"] == "track"
    frames = track[1:]
    assert len(frames) == processed
    for f in frames:
        props = f["properties"]
        assert props["role"] == "frame" and props["image"] == f"frames/{props['frame_index']:06d}.jpg"
        assert props["alt_m"] == pytest.approx(flight.spec.alt_m, abs=0.01)
        assert props["yaw_source"] in summary["telemetry"]["yaw_sources"]
        assert_jpeg(out / props["image"])
    prints = assert_feature_collection(run.json("footprints.geojson"), origin)
    assert [f["properties"]["frame_index"] for f in prints] == [f["properties"]["frame_index"] for f in frames]
    assert all(0 < f["properties"]["gsd_m"] < 0.2 for f in prints)

    assert_jpeg(out / "mosaic.jpg")
    mosaic = run.json("mosaic.json")
    assert set(mosaic) >= {"m_per_px", "width_px", "height_px", "en_bounds_m", "corners_lonlat_deg", "origin"}
    assert cv2.imread(str(out / "mosaic.jpg")).shape[:2] == (mosaic["height_px"], mosaic["width_px"])
    for pos in mosaic["corners_lonlat_deg"]:
        _assert_position(pos, origin)
    html = (out / "report.html").read_text(encoding="utf-8")  # its page is tested in Chromium elsewhere
    assert "<html" in html.lower() and "mosaic.jpg" in html
    assert all(p["properties"]["evidence"]["crop"] in html for p in points), "every finding with its crop"
    assert f"report: {out / 'report.html'}" in run.stdout
    return summary


def assert_matches_truth(run: CliRun, flight: BuiltFlight) -> None:
    """At least half of the stalls and bikes the analysed frames show are found within 3 m; median error < 1.5 m;
    a finding matched to an object has that object's grid code."""
    findings = run.json("findings.geojson")
    shown = shown_objects(flight.truth, run.json("footprints.geojson"), classes=("stall", "bicycle"))
    assert len(shown) >= 4, "the flight must show a few objects for this to mean anything"
    matches = truth_matches(findings, shown, flight.truth["origin"])
    assert len(matches) >= 0.5 * len(shown), f"{len(matches)} of {len(shown)} shown objects found"
    assert statistics.median(m.error_m for m in matches) < 1.5
    for m in matches:
        assert m.finding["properties"]["grid_code"] == m.truth["grid_code"] or _near_cell_edge(m.truth, flight)


def _near_cell_edge(obj: dict[str, Any], flight: BuiltFlight, margin_deg: float = 3e-5) -> bool:
    from shapely.geometry import Point, shape

    grid = json.loads(flight.output.layer_paths["grid"].read_text(encoding="utf-8"))
    p = Point(obj["lon_deg"], obj["lat_deg"])
    return any(shape(f["geometry"]).exterior.distance(p) < margin_deg for f in grid["features"])


# --- end to end -----------------------------------------------------------------------------------------------

def test_video_flight_end_to_end(video_run, video_flight):
    summary = assert_output_folder(video_run, video_flight)
    assert summary["source"] == {"video": str(video_flight.video), "srt": str(video_flight.srt), "stills": None}
    assert summary["camera"]["how"] == "configured lens and sensor"
    assert (summary["camera"]["width_px"], summary["camera"]["height_px"]) == VIDEO_SPEC.frame_size_px
    assert summary["telemetry"]["covered_s"] == [0.0, pytest.approx(VIDEO_SPEC.duration_s, abs=0.11)]
    assert summary["duration_s"] == pytest.approx(VIDEO_SPEC.duration_s, abs=0.11)
    assert summary["realtime_factor"] > 0
    assert summary["notes"] == []
    assert summary["frames"]["sampled"] < summary["frames"]["total"] / 4, "sampled by ground distance"
    assert "frames" in video_run.stderr, "the progress bar"
    assert_matches_truth(video_run, video_flight)


def test_video_flight_finds_the_truths_violations(video_run, video_flight):
    """Every violation found is one under the generator's verdicts (kind of the matched truth object)."""
    findings = video_run.json("findings.geojson")
    matches = truth_matches(findings, video_flight.truth["objects"], video_flight.truth["origin"])
    judged = [(m.finding["properties"]["kind"], (m.truth["violation"] or {}).get("kind")) for m in matches]
    assert any(kind for kind, _ in judged), "the flight shows a misparked bike"
    assert all(found == expected for found, expected in judged), judged


def test_stills_flight_end_to_end(stills_run, stills_flight):
    summary = assert_output_folder(stills_run, stills_flight)
    assert summary["source"] == {"video": None, "srt": None, "stills": str(stills_flight.stills_dir)}
    assert summary["camera"]["how"].startswith("EXIF model L2D-20c")
    assert summary["realtime_factor"] is None
    assert summary["frames"]["processed"] == len(stills_flight.output.still_paths) - 1
    assert [s["file"] for s in summary["frames"]["stills_skipped"]] == ["DJI_0003.JPG"]
    assert "GPS" in summary["frames"]["stills_skipped"][0]["reason"]
    assert any("DJI_0003.JPG" in note and "GPS" in note for note in summary["notes"])
    assert any(line.startswith("note: ") and "DJI_0003.JPG" in line for line in stills_run.stdout.splitlines())
    assert summary["telemetry"]["yaw_sources"] == {"gimbal": summary["frames"]["processed"]}
    assert_matches_truth(stills_run, stills_flight)


# --- bad input (issue 15, point 8): one clear line, nothing lost ---------------------------------------------

@dataclass(frozen=True)
class BadInput:
    """One bad input: how to make it from a copy of a flight, and what the command must say.

    Attributes:
        make: (copy of the flight, scratch folder) → the ``drone`` arguments after the command name.
        code: Exit status.
        says: Substrings of the error line (status 2) or of the summary's notes (status 0).
        check: More checks of a finished run's output folder.
    """

    make: Callable[[BuiltFlight, Path], list[str]]
    code: int
    says: tuple[str, ...]
    check: Callable[[CliRun, BuiltFlight], None] | None = None


def _video(flight: BuiltFlight, _: Path, *extra: str) -> list[str]:
    return [str(flight.video), "--config", str(flight.config), *extra]


def _no_srt(flight: BuiltFlight, tmp: Path) -> list[str]:
    flight.srt.unlink()
    return _video(flight, tmp)


def _partial_srt(flight: BuiltFlight, tmp: Path) -> list[str]:
    truncate_srt(flight.srt, 0.5)
    return _video(flight, tmp)


def _check_partial(run: CliRun, flight: BuiltFlight) -> None:
    summary = run.json("summary.json")
    assert summary["telemetry"]["covered_s"][1] == pytest.approx(flight.spec.duration_s / 2, abs=0.11)
    assert summary["frames"]["skipped"]["no_telemetry"] > 0
    track = run.json("track.geojson")["features"][1:]
    assert track and all(f["properties"]["t_s"] <= flight.spec.duration_s / 2 for f in track)
    assert any(line.startswith("note: ") and "50%" in line for line in run.stdout.splitlines())


def _corrupt(flight: BuiltFlight, tmp: Path) -> list[str]:
    corrupt_middle(flight.video)
    return _video(flight, tmp)


def _check_corrupt(run: CliRun, _: BuiltFlight) -> None:
    summary = run.json("summary.json")
    assert summary["frames"]["skipped"]["corrupt_packets"] > 0
    assert summary["frames"]["processed"] >= 2, "what can be read is processed"


def _truncated(flight: BuiltFlight, tmp: Path) -> list[str]:
    data = flight.video.read_bytes()
    flight.video.write_bytes(data[:len(data) * 6 // 10])  # the MP4's index (moov) is at its end: lost
    return _video(flight, tmp)


def _text_mp4(flight: BuiltFlight, tmp: Path) -> list[str]:
    fake = flight.root / "notes.mp4"
    fake.write_text("not a video, only text\n", encoding="utf-8")
    (flight.root / "notes.SRT").write_bytes(flight.srt.read_bytes())
    return [str(fake), "--config", str(flight.config)]


def _missing(flight: BuiltFlight, tmp: Path) -> list[str]:
    return [str(flight.root / "nope.mp4"), "--config", str(flight.config)]


def _not_telemetry(flight: BuiltFlight, tmp: Path) -> list[str]:
    subtitles = tmp / "film.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello there\n\n2\n00:00:02,000 --> 00:00:04,000\n"
                         "General Kenobi\n", encoding="utf-8")
    return _video(flight, tmp, "--srt", str(subtitles))


def _rel_alt(value_m: float) -> Callable[[BuiltFlight, Path], list[str]]:
    def make(flight: BuiltFlight, tmp: Path) -> list[str]:
        set_srt_rel_alt(flight.srt, value_m)
        return _video(flight, tmp)
    return make


def _far_grid(flight: BuiltFlight, tmp: Path) -> list[str]:
    shift_layer(flight.output.layer_paths["grid"], 0.05)  # the cells of a district 5 km east
    return _video(flight, tmp)


def _check_far_grid(run: CliRun, _: BuiltFlight) -> None:
    points = [f for f in run.json("findings.geojson")["features"] if f["properties"]["role"] == "point"]
    assert points and all(f["properties"]["grid_code"] == "" for f in points)


def _bad_layer(flight: BuiltFlight, tmp: Path) -> list[str]:
    lon, lat = flight.truth["origin"]["lon_deg"], flight.truth["origin"]["lat_deg"]
    d = 2e-4
    bow_tie = [[lon, lat], [lon + d, lat + d], [lon + d, lat], [lon, lat + d], [lon, lat]]
    square = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    flight.output.layer_paths["bike_parking"].write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "EF-ok", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [square]}},
        {"type": "Feature", "id": "EF-bad", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [bow_tie]}}]}), encoding="utf-8")
    return _video(flight, tmp)


def _stills_all_without_gps(flight: BuiltFlight, tmp: Path) -> list[str]:
    folder = tmp / "no-fix"
    folder.mkdir()
    (folder / "DJI_0003.JPG").write_bytes((flight.stills_dir / "DJI_0003.JPG").read_bytes())
    return [str(folder), "--config", str(flight.config)]


BAD_INPUTS = {
    "video without telemetry": BadInput(_no_srt, 2, ("flight.mp4", "no telemetry", "flight.SRT")),
    "SRT covering half the video": BadInput(_partial_srt, 0, ("flight.SRT", "2.5", "50%", "only that part"),
                                            _check_partial),
    "corrupt bytes in the middle": BadInput(_corrupt, 0, ("flight.mp4", "corrupt"), _check_corrupt),
    "truncated MP4": BadInput(_truncated, 2, ("flight.mp4", "not a readable video")),
    "text file named .mp4": BadInput(_text_mp4, 2, ("notes.mp4", "not a readable video")),
    "missing video": BadInput(_missing, 2, ("nope.mp4", "no such file")),
    "SRT without telemetry": BadInput(_not_telemetry, 2, ("film.srt", "no usable telemetry")),
    "unknown camera": BadInput(lambda f, t: _video(f, t, "--camera", "nope"), 2, ("'nope'", "mavic_3", "air_2s")),
    "bad time zone": BadInput(lambda f, t: _video(f, t, "--timezone", "Mars/Olympus"), 2,
                              ("--timezone", "Mars/Olympus")),
    "altitude 0": BadInput(_rel_alt(0.0), 2, ("altitude ≤ 0", "rel_alt")),
    "altitude below the ground": BadInput(_rel_alt(-3.0), 2, ("altitude ≤ 0", "-3.0 m", "rel_alt")),
    "flight outside every grid cell": BadInput(_far_grid, 0, ("outside every grid cell",), _check_far_grid),
    "bad GeoJSON layer": BadInput(_bad_layer, 2, ("bike_parking.geojson", "'EF-bad'", "self-intersecting")),
    "stills without GPS only": BadInput(_stills_all_without_gps, 2,
                                        ("no-fix", "no usable geotagged still", "DJI_0003.JPG", "GPS")),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input(case, video_flight, stills_flight, tmp_path):
    bad = BAD_INPUTS[case]
    source = stills_flight if case.startswith("stills") else video_flight
    flight = copy_flight(source, tmp_path / "flight")
    out = tmp_path / "out"
    run = run_cli(["drone", *bad.make(flight, tmp_path), "--out", str(out), "--quiet"], out)

    assert run.code == bad.code, run.stderr
    assert "Traceback" not in run.stderr
    if bad.code == 2:
        assert len(run.error_lines) == 1, run.stderr
        line = run.error_lines[0]
        assert line.startswith("streetwatch: error: ")
        for text in bad.says:
            assert text in line, f"{text!r} not in {line!r}"
        assert not (out / "findings.geojson").exists(), "stopped before writing findings"
    else:
        assert run.stderr == ""
        notes = run.json("summary.json")["notes"]
        assert all("\n" not in note for note in notes)
        for text in bad.says:
            assert any(text in note for note in notes), f"{text!r} not in the notes {notes}"
        assert_output_folder(run, flight)
        bad.check(run, flight)


def test_list_cameras(tmp_path):
    run = run_cli(["drone", "--list-cameras"], tmp_path)
    assert run.code == 0
    assert "mavic_3\tL2D-20c" in run.stdout.splitlines()


# --- streetwatch dataset flight -------------------------------------------------------------------------------

def test_dataset_flight_writes_a_flight_that_drone_reads(tmp_path):
    out = tmp_path / "gen"
    run = run_cli(["dataset", "flight", "--out", str(out), "--seed", "5", "--size", "320x180", "--fps", "5",
                   "--duration-s", "1", "--alt-m", "30", "--yaw-deg", "37", "--pitch-deg", "-80",
                   "--telemetry-coverage", "0.6", "--town-half-size-m", "60"], out)
    assert run.code == 0, run.stderr
    for name in ("flight.mp4", "flight.SRT", "truth.json", "drone.yaml", "baseline.geojson", "bike_parking.geojson",
                 "no_vending.geojson", "grid.geojson"):
        assert (out / name).is_file(), name
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    spec = truth["spec"]
    assert (spec["seed"], spec["frame_size_px"], spec["fps"], spec["duration_s"], spec["alt_m"], spec["yaw_deg"],
            spec["pitch_deg"], spec["telemetry_coverage"], spec["town_half_size_m"]) == \
        (5, [320, 180], 5.0, 1.0, 30.0, 37.0, -80.0, 0.6, 60.0)
    assert truth["media"]["n_images"] == 5 and truth["media"]["n_telemetry"] == 3
    assert run.stdout.splitlines()[0].startswith(f"{out}: flight.mp4 (5 frames")
    assert any(line.startswith("note: the SRT covers frames 1-3 of 5") for line in run.stdout.splitlines())
    assert f"streetwatch drone {out / 'flight.mp4'} --config {out / 'drone.yaml'}" in run.stdout

    from service.config import load_config

    config = load_config(out / "drone.yaml")  # valid, its layers found relative to it
    assert config.grid is not None and config.grid.path == out / "grid.geojson"
    assert config.drone.camera.focal_mm == pytest.approx(truth["camera"]["focal_mm"])
    assert config.drone.telemetry.timezone == "Asia/Shanghai"
    assert [p.name for p in config.drone.layers.bike_parking] == ["bike_parking.geojson"]


def test_dataset_flight_stills_config_leaves_the_camera_to_exif(tmp_path):
    out = tmp_path / "gen"
    run = run_cli(["dataset", "flight", "--out", str(out), "--mode", "stills", "--size", "320x240", "--duration-s",
                   "1", "--still-interval-s", "1", "--stills-without-gps", "1", "--quiet"], out)
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in (out / "stills").iterdir()) == ["DJI_0001.JPG", "DJI_0002.JPG"]
    assert "(2 stills, 1 with GPS)" in run.stdout
    config = yaml.safe_load((out / "drone.yaml").read_text(encoding="utf-8"))
    assert "camera" not in config["drone"]
    assert f"streetwatch drone {out / 'stills'} " in run.stdout


@pytest.mark.parametrize("argv, says", [
    (["--alt-m", "-5"], "--alt-m must lie within [5, 500] m, got -5.0"),
    (["--pitch-deg", "10"], "--pitch-deg must lie within [-90, -20]"),
    (["--size", "640"], "--size '640': expected WxH"),
    (["--size", "641x360"], "--size must be (width, height), even numbers"),
    (["--mode", "panorama"], "--mode must be 'video' or 'stills', got 'panorama'"),
    (["--telemetry-coverage", "1.5"], "--telemetry-coverage must lie within"),
    (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'"),
    (["--stills-without-gps", "a,b"], "--stills-without-gps 'a,b': expected 0-based still indices"),
    (["--omit-classes", "car"], "--omit-classes must name classes of"),
    (["--start-local", "tomorrow"], "--start-local must be an ISO 8601 local time"),
], ids=lambda v: v[0] if isinstance(v, list) else None)
def test_dataset_flight_bad_values_are_named(argv, says, tmp_path):
    out = tmp_path / "gen"
    run = run_cli(["dataset", "flight", "--out", str(out), "--quiet", *argv], out)
    assert run.code == 2
    assert run.error_lines == [f"streetwatch: error: {says}"] or (
        len(run.error_lines) == 1 and run.error_lines[0].startswith(f"streetwatch: error: {says}")), run.stderr
    assert not out.exists(), "nothing generated"
