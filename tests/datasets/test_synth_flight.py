"""Synthetic drone flights: determinism, SRT form, truth that lands on the object's pixels, layers, stills."""

from __future__ import annotations

import itertools
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import av
import cv2
import exifread
import numpy as np
import pytest
from shapely.geometry import Point, Polygon, shape

from datasets.synth.camera import PinholeCamera
from datasets.synth.flight import CAMERA_PROFILES, FlightScene, FlightSpec, flight_poses, generate_flight
from datasets.synth.flight_sidecars import insert_app1, normalize_yaw_deg, srt_time
from datasets.synth.flight_town import Orthophoto, TownDensity, lay_out_town
from detector.geo.enu import LocalFrame
from detector.schedule import WeeklySchedule

# A short low-resolution flight: 2 s at 5 fps, 55 m up, flying north with the camera turned to 37° (so the SRT
# carries gimbal angles), over a small busy town drawn as coarse as the frames (8 cm/px). Seed 16 puts every
# outcome in view: approved and new structures, bikes inside and outside e-fences, stalls outside no-vending
# areas and inside ones whose schedule is and is not in force.
SPEC = FlightSpec(seed=16, frame_size_px=(320, 180), fps=5.0, duration_s=2.0, alt_m=55.0, speed_mps=6.0,
                  yaw_deg=37.0, course_deg=0.0, gsd_m=0.08, town_half_size_m=60.0,
                  density=TownDensity(markets_per_ha=12.0, bike_rows_per_ha=10.0))

_CUE = re.compile(
    r"(?P<n>\d+)\n(?P<t0>\d\d:\d\d:\d\d,\d{3}) --> (?P<t1>\d\d:\d\d:\d\d,\d{3})\n"
    r"<font size=\"28\">FrameCnt: (?P<cnt>\d+), DiffTime: (?P<diff>\d+)ms\n"
    r"(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\n"
    r"\[iso: 100\] \[shutter: 1/1000\.0\] \[fnum: 2\.8\] \[ev: 0\] \[color_md: default\] \[focal_len: 24\.00\] "
    r"\[latitude: (?P<lat>-?\d+\.\d{6})\] \[longitude: (?P<lon>-?\d+\.\d{6})\] "
    r"\[rel_alt: (?P<rel>-?\d+\.\d{3}) abs_alt: (?P<abs>-?\d+\.\d{3})\] "
    r"(?:\[gb_yaw: (?P<gy>-?\d+\.\d) gb_pitch: (?P<gp>-?\d+\.\d) gb_roll: (?P<gr>-?\d+\.\d)\] )?"
    r"\[ct: 5500\] </font>$")


def _ms(text: str) -> int:
    h, m, rest = text.split(":")
    s, ms = rest.split(",")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _cues(path: Path) -> list[re.Match]:
    blocks = path.read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    matches = [_CUE.match(b) for b in blocks]
    bad = [b for b, m in zip(blocks, matches) if m is None]
    assert not bad, f"malformed cue:\n{bad[0]}"
    return matches


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """SPEC generated twice into two folders."""
    root = tmp_path_factory.mktemp("flight")
    return generate_flight(SPEC, root / "a"), generate_flight(SPEC, root / "b")


@pytest.fixture(scope="module")
def truth(pair) -> dict:
    return json.loads(pair[0].truth_path.read_text(encoding="utf-8"))


# --- spec and poses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("alt_m", 0.0, "FlightSpec.alt_m must lie within"),
    ("pitch_deg", -95.0, "FlightSpec.pitch_deg must lie within"),
    ("pitch_deg", 0.0, "FlightSpec.pitch_deg must lie within"),
    ("frame_size_px", (641, 360), "FlightSpec.frame_size_px must be"),
    ("fps", 0.0, "FlightSpec.fps must lie within"),
    ("camera", "phantom9", "FlightSpec.camera must be one of"),
    ("start_local", "2026-06-01T10:00:00+08:00", "FlightSpec.start_local must be a local time without zone"),
    ("start_local", "yesterday", "FlightSpec.start_local must be an ISO 8601"),
    ("timezone", "Mars/Olympus", "FlightSpec.timezone: unknown time zone"),
    ("telemetry_coverage", 0.0, "FlightSpec.telemetry_coverage must lie within"),
    ("omit_classes", ("car",), "FlightSpec.omit_classes must name classes"),
    ("path", "spiral", "FlightSpec.path must be"),
    ("stills_without_gps", (-1,), "FlightSpec.stills_without_gps must hold"),
    ("video_preset", "warp", "FlightSpec.video_preset must be one of"),
])
def test_spec_rejects_bad_values_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        replace(SPEC, **{field: value})


def test_spec_is_hashable_and_sizes_the_camera_from_the_profile():
    mavic = CAMERA_PROFILES["mavic3"]
    assert hash(SPEC) == hash(replace(SPEC))
    assert SPEC.focal_px == pytest.approx(320 * mavic.focal_mm / mavic.sensor_width_mm)
    assert SPEC.n_images == 10
    assert replace(SPEC, mode="stills", still_interval_s=0.5).n_images == 5


@pytest.mark.parametrize("path, yaw, course, expect_end_en", [
    ("line", 90.0, None, (8.0 * 0.9, 0.0)),  # along the camera heading: east
    ("line", 37.0, 0.0, (0.0, 8.0 * 0.9)),  # camera turned, flying north
    ("lawnmower", 0.0, None, (3.0, 3.8)),  # 7.2 m: 4 m north, 3 m east, then 0.2 m back south
])
def test_poses_follow_the_path_at_constant_speed(path, yaw, course, expect_end_en):
    spec = FlightSpec(path=path, yaw_deg=yaw, course_deg=course, speed_mps=8.0, fps=10.0, duration_s=1.0,
                      leg_length_m=4.0, leg_spacing_m=3.0)
    poses = flight_poses(spec)
    step = np.hypot(np.diff(poses.east_m), np.diff(poses.north_m))
    assert (step <= 0.8 + 1e-9).all() and np.median(step) == pytest.approx(0.8)
    assert (poses.east_m[0], poses.north_m[0]) == (0.0, 0.0)
    assert (poses.east_m[-1], poses.north_m[-1]) == pytest.approx(expect_end_en)
    assert (poses.yaw_deg == normalize_yaw_deg(yaw)).all()
    if path == "lawnmower":  # north leg, east step, south leg
        assert set(np.round(poses.course_deg).tolist()) == {0.0, 90.0, 180.0}


# --- determinism -----------------------------------------------------------------------------------------------


def test_same_spec_gives_identical_truth_srt_layers_and_frames(pair):
    a, b = pair
    for name in ["truth.json", "flight.SRT", "baseline.geojson", "bike_parking.geojson", "no_vending.geojson",
                 "grid.geojson"]:
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    # the truth holds a digest of every rendered frame, so equal truths mean equal frames
    assert json.loads(a.truth_path.read_text())["media"]["frames_digest"]
    frames_a, frames_b = _decoded(a.video_path), _decoded(b.video_path)
    assert len(frames_a) == len(frames_b) == SPEC.n_images
    for fa, fb in zip(frames_a, frames_b):  # the encoder may differ in a bit; the pictures may not
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 1.0


def test_the_town_depends_on_the_seed(truth):
    same, other = lay_out_town(SPEC.seed, 60.0, SPEC.density), lay_out_town(SPEC.seed + 1, 60.0, SPEC.density)
    shown = {(o["id"], o["east_m"], o["north_m"]) for o in truth["objects"]}
    assert shown <= {(o.object_id, round(o.east_m, 3), round(o.north_m, 3)) for o in same.objects}
    assert not shown & {(o.object_id, round(o.east_m, 3), round(o.north_m, 3)) for o in other.objects}


# --- SRT -----------------------------------------------------------------------------------------------------


def test_srt_has_one_well_formed_cue_per_frame(pair, truth):
    out = pair[0]
    cues = _cues(out.srt_path)
    assert out.video_codec == "libx264" and out.n_images == len(cues) == SPEC.n_images
    assert [int(c["n"]) for c in cues] == [int(c["cnt"]) for c in cues] == list(range(1, len(cues) + 1))
    assert _ms(cues[0]["t0"]) == 0
    for c, nxt in itertools.pairwise(cues):
        assert _ms(c["t1"]) == _ms(nxt["t0"])  # contiguous
    for i, c in enumerate(cues):
        assert _ms(c["t0"]) == round(i * 1000 / SPEC.fps)
        assert int(c["diff"]) == _ms(c["t1"]) - _ms(c["t0"])
        stamp = datetime.strptime(c["stamp"], "%Y-%m-%d %H:%M:%S.%f")
        assert (stamp - datetime.fromisoformat(SPEC.start_local)).total_seconds() * 1000 == _ms(c["t0"])
        assert float(c["lat"]) == pytest.approx(truth["poses"]["lat_deg"][i], abs=6e-7)
        assert float(c["lon"]) == pytest.approx(truth["poses"]["lon_deg"][i], abs=6e-7)
        assert float(c["rel"]) == SPEC.alt_m and float(c["abs"]) == pytest.approx(SPEC.alt_m + SPEC.ground_alt_m)
        # the camera looks at 37° while the drone flies north: the gimbal angles are written
        assert (float(c["gy"]), float(c["gp"]), float(c["gr"])) == (37.0, -90.0, 0.0)
    # the first sample is the take-off point, the origin of the local frame
    assert (float(cues[0]["lat"]), float(cues[0]["lon"])) == (SPEC.origin_lat_deg, SPEC.origin_lon_deg)


@pytest.mark.parametrize("ms, text", [(0, "00:00:00,000"), (33, "00:00:00,033"), (3_723_045, "01:02:03,045")])
def test_srt_time(ms, text):
    assert srt_time(ms) == text


def test_partial_telemetry_covers_the_first_part_of_a_complete_video(tmp_path):
    spec = replace(SPEC, frame_size_px=(160, 96), duration_s=1.2, alt_m=20.0, telemetry_coverage=0.5,
                   srt_gimbal="never", town_half_size_m=30.0)
    out = generate_flight(spec, tmp_path)
    cues = _cues(out.srt_path)
    assert len(_decoded(out.video_path)) == spec.n_images == 6
    assert len(cues) == out.n_telemetry == 3
    assert all(c["gy"] is None for c in cues)
    assert _ms(cues[-1]["t1"]) == 600
    assert any("covers frames 1-3 of 6" in note for note in out.notes)
    truth = json.loads(out.truth_path.read_text())
    assert truth["media"]["n_telemetry"] == 3 and len(truth["poses"]["t_s"]) == 6


def test_no_srt_option_writes_a_video_without_telemetry(tmp_path):
    out = generate_flight(replace(SPEC, frame_size_px=(160, 96), duration_s=0.4, alt_m=20.0, write_srt=False,
                                  town_half_size_m=30.0), tmp_path)
    assert out.srt_path is None and not list(tmp_path.glob("*.SRT")) and out.video_path.exists()


# --- truth lands on the object's pixels ------------------------------------------------------------------------


def _grown(poly: np.ndarray, by_m: float) -> np.ndarray:
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pts = (poly[:, None, :] + by_m * np.stack([np.cos(ang), np.sin(ang)], 1)[None]).reshape(-1, 2)
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _project_mask(cams, polys_en: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Union of ground polygons drawn into the image through the spec's camera (checked against the library's
    independent camera model)."""
    pinhole, (intr, pose, ground_to_pixel) = cams
    mask = np.zeros(size[::-1], np.uint8)
    for poly in polys_en:
        pts = np.column_stack([poly, np.zeros(len(poly))])
        uv, depth = pinhole.project(pts)
        uv_lib, in_front = ground_to_pixel(intr, pose, pts)
        assert in_front.all() and (depth > 0).all()
        assert np.abs(uv - uv_lib).max() < 0.01  # two independent camera models agree
        cv2.fillPoly(mask, [np.round((uv - 0.5) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


@pytest.mark.parametrize("yaw, pitch, roll", [(0.0, -90.0, 0.0), (37.0, -60.0, 2.0)])
def test_truth_projected_with_the_pose_lands_on_the_objects_pixels(tmp_path, yaw, pitch, roll):
    """Frames drawn with and without the structures differ exactly where the truth footprints project."""
    geo = pytest.importorskip("detector.geo.camera")
    # seed 1: several structures under a 30 m flight, in sunlight (their shadows change too)
    spec = replace(SPEC, seed=1, frame_size_px=(480, 270), duration_s=0.6, yaw_deg=yaw, course_deg=0.0,
                   pitch_deg=pitch, roll_deg=roll, alt_m=30.0, gsd_m=0.04, town_half_size_m=60.0,
                   density=TownDensity())
    town = lay_out_town(spec.seed, 60.0)
    with FlightScene(spec, tmp_path / "with", town=town) as full, \
            FlightScene(replace(spec, omit_classes=("illegal_structure",)), tmp_path / "without", town=town) as bare:
        i = 2
        changed = np.abs(full.image(i).astype(int) - bare.image(i).astype(int)).sum(axis=2) > 12
        objects = [o for o in full.town.objects if o.class_name == "illegal_structure"]
        visible = full.ortho.visible_fraction()
        k_of = {o.object_id: k for k, o in enumerate(full.town.objects)}
    # the camera from the spec alone (not the generator's poses): flying north at speed, DJI angles
    t = i / spec.fps
    east, north = 0.0, spec.speed_mps * t
    pinhole = PinholeCamera(*spec.frame_size_px, spec.focal_px, height_m=spec.alt_m, pitch_deg=-pitch, yaw_deg=yaw,
                            roll_deg=roll, x_m=east, y_m=north)
    w, h = spec.frame_size_px
    intr = geo.CameraIntrinsics(w, h, spec.focal_px, spec.focal_px, w / 2.0, h / 2.0)
    pose = geo.CameraPose(east_m=east, north_m=north, up_m=spec.alt_m, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)
    cams = (pinhole, (intr, pose, geo.ground_to_pixel))
    in_frame = []
    for o in objects:
        uv, _ = pinhole.project(np.column_stack([o.footprint_en_m, np.zeros(len(o.footprint_en_m))]))
        if (uv >= 4).all() and (uv[:, 0] <= w - 4).all() and (uv[:, 1] <= h - 4).all():
            in_frame.append(o)
    assert len(in_frame) >= 2, "the test flight should show several structures"
    checked = 0
    for o in in_frame:
        if o.tag not in ("shed", "new_build") or visible[k_of[o.object_id]] < 0.8:
            continue  # rooftop ones only (their shadows fall on the roof and stay), not under a tree
        own = _project_mask(cams, [o.footprint_en_m], (w, h))
        drawn = changed & _project_mask(cams, [_grown(o.footprint_en_m, 1.5)], (w, h))
        iou = (drawn & own).sum() / (drawn | own).sum()
        (ys, xs), (ys_t, xs_t) = np.nonzero(drawn), np.nonzero(own)
        offset_px = math.hypot(xs.mean() - xs_t.mean(), ys.mean() - ys_t.mean())
        # a pose 10 cm off (about 1 px here) already fails one of these
        assert iou >= 0.93 and offset_px <= 1.0, f"{o.object_id}: IoU {iou:.3f}, centroid {offset_px:.2f} px off"
        checked += 1
    assert checked >= 2
    # and nothing changed away from the structures (allowing 6 m for the ground shadows of yard structures)
    near = _project_mask(cams, [_grown(o.footprint_en_m, 6.0) for o in objects if _fully_ahead(pinhole, o)], (w, h))
    assert changed.sum() > 0 and (changed & ~near).sum() <= 0.01 * changed.sum()


def _fully_ahead(cam: PinholeCamera, o) -> bool:
    grown = _grown(o.footprint_en_m, 6.0)
    _, depth = cam.project(np.column_stack([grown, np.zeros(len(grown))]))
    return bool((depth > 1.0).all())


def test_orthophoto_tiles_join_without_seams(tmp_path):
    """The same ground drawn in tiles of 256 and of 512 pixels is the same picture."""
    town = lay_out_town(5, 20.0)
    small = Orthophoto(town, 0.04, tmp_path / "s", tile_px=256)
    big = Orthophoto(town, 0.04, tmp_path / "b", tile_px=512)
    small.render([(0, 0), (1, 0), (0, 1), (1, 1)])
    big.render([(0, 0)])
    a, b = small.crop(0, 0, 512, 512, (0, 0, 0)), big.crop(0, 0, 512, 512, (0, 0, 0))
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() < 0.2 and np.percentile(diff, 99.9) <= 8
    halved = small.crop(0, 0, 256, 256, (0, 0, 0), level=1)
    assert np.abs(halved.astype(int) - cv2.resize(a, (256, 256), interpolation=cv2.INTER_AREA)).max() <= 1


# --- layers and verdicts -----------------------------------------------------------------------------------


def _ring_en(local: LocalFrame, ring: list) -> Polygon:
    lonlat = np.asarray(ring)
    e, n, _ = local.to_enu(lonlat[:, 1], lonlat[:, 0], local.h0_m)
    return Polygon(np.column_stack([e, n]))


def test_layers_are_valid_geojson_around_the_flight(pair, truth):
    origin = truth["origin"]
    for name, path in pair[0].layer_paths.items():
        fc = json.loads(path.read_text(encoding="utf-8"))
        assert fc["type"] == "FeatureCollection" and fc["features"], name
        for f in fc["features"]:
            assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon" and f["id"] == f["properties"]["id"]
            ring = f["geometry"]["coordinates"][0]
            assert len(ring) >= 4 and ring[0] == ring[-1], f"{name} {f['id']}: ring not closed"
            lon, lat = np.asarray(ring).T
            assert np.abs(lon - origin["lon_deg"]).max() < 0.01 and np.abs(lat - origin["lat_deg"]).max() < 0.01
            geom = shape(f["geometry"])
            assert geom.is_valid and geom.exterior.is_ccw, f"{name} {f['id']}: RFC 7946 rings are counter-clockwise"
    codes = [f["properties"]["code"] for f in json.loads(pair[0].layer_paths["grid"].read_text())["features"]]
    assert len(set(codes)) == len(codes) and all(re.fullmatch(r"440304001\d{3}", c) for c in codes)


def test_verdicts_agree_with_the_layers(pair, truth):
    """Every object's verdict, re-derived from the GeoJSON with shapely (the oracle) and the project's schedules."""
    local = LocalFrame(truth["origin"]["lat_deg"], truth["origin"]["lon_deg"], truth["origin"]["ground_alt_m"])
    layers = {name: json.loads(p.read_text()) for name, p in pair[0].layer_paths.items()}

    def polys(name):
        return [(f["id"], _ring_en(local, f["geometry"]["coordinates"][0]), f["properties"])
                for f in layers[name]["features"]]

    baseline, fences, areas, grid = polys("baseline"), polys("bike_parking"), polys("no_vending"), polys("grid")
    start = datetime.fromisoformat(truth["flight_start_local"])
    kinds = set()
    for o in truth["objects"]:
        point = Point(o["east_m"], o["north_m"])
        foot = Polygon(o["footprint_en_m"])
        assert foot.contains(point)
        assert o["grid_code"] == next(p["code"] for _, g, p in grid if g.covers(point))
        kind = (o["violation"] or {}).get("kind", "")
        kinds.add(kind)
        if o["class"] == "illegal_structure":
            covered = max((foot.intersection(b).area / foot.area for _, b, _ in baseline), default=0.0)
            assert (kind == "illegal_structure") == (covered < 0.2), o["id"]
        elif o["class"] == "bicycle":
            assert (kind == "bike_misparked") == (not any(f.covers(point) for _, f, _ in fences)), o["id"]
        else:
            enforced = [a for _, a, p in areas if a.covers(point)
                        and WeeklySchedule.from_windows(p["schedule"], p["timezone"]).active(start)]
            assert (kind == "stall_occupation") == bool(enforced), o["id"]
    assert {"illegal_structure", "bike_misparked", "stall_occupation", ""} <= kinds, "every outcome is exercised"
    assert truth["counts"]["objects"] == len(truth["objects"]) and all(o["frames_seen"] > 0 for o in truth["objects"])


def test_truth_positions_are_the_local_frame_of_the_take_off_point(truth):
    local = LocalFrame(truth["origin"]["lat_deg"], truth["origin"]["lon_deg"], truth["origin"]["ground_alt_m"])
    for o in truth["objects"][:20]:
        e, n, _ = local.to_enu(o["lat_deg"], o["lon_deg"])
        assert math.hypot(float(e) - o["east_m"], float(n) - o["north_m"]) < 0.001
        lon, lat = np.asarray(o["footprint_lonlat_deg"]).T
        e, n, _ = local.to_enu(lat, lon)
        assert np.abs(np.column_stack([e, n]) - np.asarray(o["footprint_en_m"])).max() < 0.002
    poses = truth["poses"]
    assert len(poses["t_s"]) == SPEC.n_images and poses["pitch_deg"][0] == -90.0 and poses["yaw_deg"][0] == 37.0


# --- stills --------------------------------------------------------------------------------------------------


def _exif_deg(tags, key: str) -> float:
    d, m, s = (float(v.num) / float(v.den) for v in tags[f"GPS {key}"].values)
    sign = -1.0 if str(tags[f"GPS {key}Ref"]) in ("S", "W") else 1.0
    return sign * (d + m / 60.0 + s / 3600.0)


def test_stills_carry_exif_gps_and_a_dji_xmp_packet(tmp_path):
    spec = replace(SPEC, mode="stills", still_size_px=(320, 240), still_interval_s=0.5, duration_s=1.0,
                   stills_without_gps=(1,), xmp_longitude_key="GpsLongtitude", pitch_deg=-70.0, alt_m=20.0,
                   town_half_size_m=30.0)
    out = generate_flight(spec, tmp_path)
    truth = json.loads(out.truth_path.read_text())
    assert [p.name for p in out.still_paths] == ["DJI_0001.JPG", "DJI_0002.JPG", "DJI_0003.JPG"]
    assert out.video_path is None and out.srt_path is None and out.n_telemetry == 2
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dji": "http://www.dji.com/drone-dji/1.0/"}
    for i, path in enumerate(out.still_paths):
        with path.open("rb") as fh:
            tags = exifread.process_file(fh, details=False)
        assert str(tags["Image Make"]) == "DJI" and str(tags["Image Model"]) == "L2D-20c"
        assert str(tags["EXIF FocalLengthIn35mmFilm"]) == "24"
        data = path.read_bytes()
        xmp = data[data.index(b"<x:xmpmeta"):data.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")]
        desc = ET.fromstring(xmp).find("rdf:RDF/rdf:Description", ns)
        dji = {k.split("}")[1]: v for k, v in desc.attrib.items() if k.startswith("{" + ns["dji"])}
        assert float(dji["RelativeAltitude"]) == spec.alt_m
        assert float(dji["GimbalYawDegree"]) == 37.0 and float(dji["GimbalPitchDegree"]) == -70.0
        assert float(dji["FlightYawDegree"]) == 0.0  # the aircraft flies north; the camera looks at 37°
        if i == 1:  # no GPS fix: neither EXIF GPS nor XMP position
            assert "GPS GPSLatitude" not in tags and "GpsLatitude" not in dji
            continue
        lat, lon = truth["poses"]["lat_deg"][i], truth["poses"]["lon_deg"][i]
        assert _exif_deg(tags, "GPSLatitude") == pytest.approx(lat, abs=1e-7)
        assert _exif_deg(tags, "GPSLongitude") == pytest.approx(lon, abs=1e-7)
        assert float(dji["GpsLatitude"]) == pytest.approx(lat, abs=1e-8)
        assert float(dji["GpsLongtitude"]) == pytest.approx(lon, abs=1e-8)  # DJI's older spelling, as asked
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


def test_xmp_segment_goes_after_the_leading_app_segments():
    jpeg = b"\xff\xd8" + b"\xff\xe0\x00\x04ab" + b"\xff\xe1\x00\x04cd" + b"\xff\xdb\x00\x03x"
    out = insert_app1(jpeg, b"XMP")
    assert out == jpeg[:14] + b"\xff\xe1\x00\x05XMP" + jpeg[14:]
    with pytest.raises(ValueError, match="not a JPEG"):
        insert_app1(b"GIF89a", b"x")
