"""The flight job (`service.drone`): its input, cases from a flight in a real SQLite case store (idempotent, a
later flight of the same area updates the earlier flight's cases), progress and cancelling, and a damaged video
frame replaced by the next readable picture placed with that picture's own telemetry."""

from __future__ import annotations

import json
import math
import threading
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.sources import seek
from detector.sources.seek import DecodedFrame, VideoSeekReader
from service.cases import CaseFilter, CaseSettings, CaseStore
from service.config import AppConfig, load_config
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.drone import (FlightCancelled, FlightInput, FlightInputError, FlightProgress, FlightResult, ingest_flight,
                           run_flight)
from tests.flights import SECOND_VIDEO_SPEC, VIDEO_SPEC, BuiltFlight, copy_flight, shared_flight


@pytest.fixture(scope="module")
def video_flight(tmp_path_factory) -> BuiltFlight:
    return shared_flight(VIDEO_SPEC, tmp_path_factory)


@pytest.fixture(scope="module")
def detector():
    """The aerial model, loaded once for the module (run_flight would load it on every call)."""
    from detector.runtime import OnnxDetector, RuntimeOptions, resolve_card

    return OnnxDetector(resolve_card("aerial"), RuntimeOptions())


@pytest.fixture(scope="module")
def config(video_flight) -> AppConfig:
    # The city's layers are those drawn for the first flight: every flight of the area is judged against them.
    return load_config(video_flight.config)


@pytest.fixture(scope="module")
def first(video_flight, config, detector, tmp_path_factory) -> tuple[FlightResult, list[FlightProgress]]:
    seen: list[FlightProgress] = []
    result = run_flight(FlightInput.from_path(video_flight.video), config, tmp_path_factory.mktemp("f1"),
                        flight_id="f1", name="patrol 1", progress=seen.append, detector=detector)
    return result, seen


def _store(path: Path, config: AppConfig) -> CaseStore:
    engine = make_engine(DatabaseSettings(path=path))
    upgrade_schema(engine)
    return CaseStore(make_session_factory(engine), CaseSettings.from_config(config))


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # equirectangular: exact to millimetres over the metres compared here
    k = 111_320.0
    return math.hypot((lat1 - lat2) * k, (lon1 - lon2) * k * math.cos(math.radians(lat1)))


# --- input -----------------------------------------------------------------------------------------------------

def test_flight_input_finds_the_srt_beside_the_video(video_flight, tmp_path):
    inp = FlightInput.from_path(video_flight.video)
    assert (inp.video, inp.srt, inp.stills_dir) == (video_flight.video, video_flight.srt, None)
    lower = copy_flight(video_flight, tmp_path / "lower", srt=False)
    (lower.root / "flight.srt").write_bytes(video_flight.srt.read_bytes())
    assert FlightInput.from_path(lower.video).srt == lower.root / "flight.srt"
    other = tmp_path / "elsewhere.SRT"
    other.write_bytes(video_flight.srt.read_bytes())
    assert FlightInput.from_path(lower.video, other).srt == other
    assert FlightInput.from_path(tmp_path).stills_dir == tmp_path


@pytest.mark.parametrize("make, says", [
    (lambda f, t: (t / "none.mp4", None), "no such file or folder"),
    (lambda f, t: (f.truth_path, None), "not a video"),
    (lambda f, t: (f.video_path, t / "none.SRT"), "none.SRT: no such SRT file"),
    (lambda f, t: (t, f.srt_path), "a folder of stills takes no --srt"),
], ids=["missing", "not a video", "missing srt", "stills with srt"])
def test_flight_input_errors(make, says, video_flight, tmp_path):
    path, srt = make(video_flight.output, tmp_path)
    with pytest.raises(FlightInputError, match=says):
        FlightInput.from_path(path, srt)


# --- progress and cancel ---------------------------------------------------------------------------------------

def test_progress_reports_every_frame_and_ends_done(first):
    result, seen = first
    stages = [p.stage for p in seen]
    assert stages[0] == "telemetry" and stages[-1] == "done"
    assert stages.index("detect") < stages.index("merge") < stages.index("rules") < stages.index("outputs")
    detect = [p for p in seen if p.stage == "detect"]
    assert [p.frames_done for p in detect] == list(range(result.summary["frames"]["processed"] + 1))
    assert all(p.frames_total == result.summary["frames"]["sampled"] for p in detect)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(p.eta_s is not None for p in detect[1:])


def test_cancel_from_the_progress_callback_stops_after_the_first_frame(video_flight, config, detector, tmp_path):
    cancel = threading.Event()
    done: list[int] = []

    def progress(p: FlightProgress) -> None:
        done.append(p.frames_done)
        if p.stage == "detect" and p.frames_done >= 1:
            cancel.set()

    with pytest.raises(FlightCancelled, match="f-cancel"):
        run_flight(FlightInput.from_path(video_flight.video), config, tmp_path / "out", flight_id="f-cancel",
                   progress=progress, cancel=cancel, detector=detector)
    assert max(done) == 1
    assert not (tmp_path / "out" / "findings.geojson").exists()


# --- cases -----------------------------------------------------------------------------------------------------

def test_violations_become_flight_cases_once(first, config, tmp_path):
    result, _ = first
    store = _store(tmp_path / "cases.db", config)
    violations = result.violations
    assert violations, "the flight shows a misparked bike"

    ids = ingest_flight(store, result, config, name="patrol 1", source="flight.mp4")
    assert len(ids) == len(violations) == len(set(ids))
    for case_id, v in zip(ids, violations):
        case = store.get(case_id)
        assert (case.flight_id, case.camera_id, case.kind, case.status) == ("f1", None, v.kind, "pending")
        assert (case.lat_deg, case.lon_deg) == (pytest.approx(v.lat_deg, abs=1e-9), pytest.approx(v.lon_deg,
                                                                                                  abs=1e-9))
        assert case.grid_code == v.grid_code and case.grid_code.startswith("440304001")
        assert case.category_code == config.category_codes[v.kind]
        assert case.violation_id == f"f1:{v.violation_id}"
        assert {e.kind for e in case.evidence} >= {"annotated", "crop"}

    evidence_rows = sum(len(store.get(i).evidence) for i in ids)
    again = ingest_flight(store, result, config, name="patrol 1", source="flight.mp4")
    assert again == ids
    assert len(store.list_cases(CaseFilter(flight_id="f1"), limit=500).items) == len(ids)
    assert sum(len(store.get(i).evidence) for i in ids) == evidence_rows  # a re-run adds no evidence rows
    assert len(store.list_cases(limit=500).items) == len(ids)

    case_of = {fid: case_id for case_id, v in zip(ids, violations) for fid in v.finding_ids}
    points = [f for f in json.loads((result.out_dir / "findings.geojson").read_text(encoding="utf-8"))["features"]
              if f["properties"]["role"] == "point"]
    assert [p["properties"]["case_id"] for p in points] == [case_of.get(p["id"]) for p in points]
    assert any(p["properties"]["case_id"] is None for p in points), "findings that are no violation get none"


def test_a_second_flight_of_the_area_updates_the_first_flights_cases(first, config, detector, tmp_path_factory,
                                                                     tmp_path):
    result1, _ = first
    store = _store(tmp_path / "cases.db", config)
    ids1 = ingest_flight(store, result1, config)
    second = shared_flight(SECOND_VIDEO_SPEC, tmp_path_factory)
    result2 = run_flight(FlightInput.from_path(second.video), config, tmp_path / "f2", flight_id="f2",
                         detector=detector)
    ids2 = ingest_flight(store, result2, config)

    radius_m = config.drone.detection.case_match_radius_m
    attached = 0
    for case_id, v2 in zip(ids2, result2.violations):
        near = sorted((_distance_m(v2.lat_deg, v2.lon_deg, v1.lat_deg, v1.lon_deg), c1)
                      for c1, v1 in zip(ids1, result1.violations) if v1.kind == v2.kind)
        if near and near[0][0] <= radius_m:
            assert case_id == near[0][1], "the same object seen again updates its case"
            case = store.get(case_id)
            assert case.flight_id == "f1", "the case keeps its first flight"
            assert case.last_seen.date() == date(2026, 6, 8), "seen again a week later"
            attached += 1
        else:
            assert store.get(case_id).flight_id == "f2", "a new object opens a new case"
    assert attached >= 1, "the second flight sees the first flight's misparked bike again"
    assert len(store.list_cases(limit=500).items) == len(set(ids1) | set(ids2)) < len(ids1) + len(ids2)
    assert all(store.has_violation(f"f2:{v.violation_id}") for v in result2.violations)
    points = [f for f in json.loads((result2.out_dir / "findings.geojson").read_text(encoding="utf-8"))["features"]
              if f["properties"]["role"] == "point" and f["properties"]["kind"]]
    assert {p["properties"]["case_id"] for p in points} == set(ids2)


# --- a damaged frame -------------------------------------------------------------------------------------------

class _OneFrameDamaged(VideoSeekReader):
    """A reader whose second wanted picture is damaged: the decoder gives the next one instead (as a real
    decoder does after a corrupt packet; see `VideoSeekReader.read_at`)."""

    def read_at(self, times_s):
        wanted = sorted({float(t) for t in times_s})
        victim = wanted[1]
        after = victim + 1.0 / self.info.fps
        for frame in super().read_at(sorted(set(wanted) | {after})):
            if frame.requested_t_s == victim:
                continue
            if frame.requested_t_s == after:
                frame = DecodedFrame(frame.index, frame.t_s, frame.image, victim)
            yield frame


def test_a_damaged_frame_is_replaced_by_the_next_with_its_own_telemetry(video_flight, config, detector, tmp_path,
                                                                       monkeypatch):
    clean = run_flight(FlightInput.from_path(video_flight.video), config, tmp_path / "clean", flight_id="c",
                       detector=detector)
    clean_frames = [f["properties"]["frame_index"] for f in _track_frames(clean.out_dir)]
    monkeypatch.setattr(seek, "VideoSeekReader", _OneFrameDamaged)
    result = run_flight(FlightInput.from_path(video_flight.video), config, tmp_path / "damaged", flight_id="d",
                        detector=detector)
    victim = clean_frames[1]
    frames = {f["properties"]["frame_index"]: f for f in _track_frames(result.out_dir)}
    assert victim not in frames and victim + 1 in frames
    # the picture saved as frame victim+1 is that frame of the video, and it is placed where the drone was then
    video = _decode_all(video_flight.video)
    saved = cv2.imread(str(result.out_dir / f"frames/{victim + 1:06d}.jpg")).astype(np.float32)
    diffs = [float(np.abs(saved - video[i]).mean()) for i in (victim, victim + 1)]
    assert diffs[1] < diffs[0]
    pose = video_flight.truth["poses"]
    lon, lat = frames[victim + 1]["geometry"]["coordinates"]
    assert _distance_m(lat, lon, pose["lat_deg"][victim + 1], pose["lon_deg"][victim + 1]) < 0.2
    assert frames[victim + 1]["properties"]["t_s"] == pytest.approx(pose["t_s"][victim + 1])
    assert any("unreadable" in n and f"{pose['t_s'][victim]:.2f} s by {pose['t_s'][victim + 1]:.2f} s" in n
               for n in result.summary["notes"]), result.summary["notes"]


def _track_frames(out_dir: Path) -> list[dict]:
    track = json.loads((out_dir / "track.geojson").read_text(encoding="utf-8"))
    return [f for f in track["features"] if f["properties"]["role"] == "frame"]


def _decode_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image.astype(np.float32))
    cap.release()
    return frames
