"""service.timelapse: the strip (first sight, midway, last sight, each with its camera-local time) and the H.264
clip of a violation's dwell, composed without models, decoded back with PyAV, written through the checked evidence
path by the camera worker and served as video/mp4."""

from __future__ import annotations

import dataclasses
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from detector.track_history import TrackHistory
from detector.types import Detections, Frame
from service import timelapse
from service.app import create_app
from service.evidence import EvidenceWriteError, evidence_media_type
from service.evidence_guard import EvidenceGuard
from service.settings import Settings
from service.timelapse import (CLIP_MAX_BYTES, Look, clip_frames, compose_strip, format_elapsed, pick_strip,
                               redact_clip, save_timelapse, strip_labels, violation_looks, write_clip)
from service.workers import CameraRuntime, CameraWorker, DetectorPool, LatestFrames, WorkerContext
from tests.service.test_api import ADMIN, make_config
from tests.service.test_cases import T0, make_origin, make_violation
from tests.service.test_evidence_guard import store  # noqa: F401  (fixture)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADMIN_KEY = ADMIN["Authorization"].removeprefix("Bearer ")
ORANGE = (0, 140, 251)  # bike_misparked's colour, BGR
# Distinct colours per look, far from the background and the box colour: the order of panels and clip pictures.
COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200), (40, 200, 200)]


def look(minute: float, color=(200, 40, 40), hw=(90, 120)) -> Look:
    """A look `minute` minutes after T0: a crop filled with `color`, its box in the middle."""
    h, w = hw
    return Look(T0 + timedelta(minutes=minute), np.full((h, w, 3), color, np.uint8), (w / 4, h / 4, 3 * w / 4, 3 * h / 4))


def near(pixel, color, tol: int = 40) -> bool:
    return bool(np.abs(np.asarray(pixel, int) - color).max() <= tol)


# --- choosing and labelling the panels ------------------------------------------------------------------------

@pytest.mark.parametrize("minutes, first_seen_min, picked", [
    ([0, 3, 5, 8, 11], 0, [0, 5, 11]),
    ([0, 3, 5, 8, 11], 2.9, [3, 8, 11]),     # first sight: the look nearest the violation's first_seen
    ([0, 1, 2, 3, 10], 0, [0, 3, 10]),       # midway: nearest the middle of first..last in time, not in count
    ([0, 11], 0, [0, 11]),                   # two looks: two panels
    ([0, 5, 11], 11, [11]),                  # nothing after first sight: one (no strip is made)
    ([], 0, []),
])
def test_pick_strip(minutes, first_seen_min, picked):
    panels = pick_strip([look(m) for m in minutes], T0 + timedelta(minutes=first_seen_min))
    assert [round((p.t - T0).total_seconds() / 60, 1) for p in panels] == picked


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (59.4, "59 s"), (60, "1 min 0 s"), (328, "5 min 28 s"),
                                           (3600, "1 h 00 min"), (7500, "2 h 05 min"), (-3, "0 s")])
def test_format_elapsed(seconds, text):
    assert format_elapsed(seconds) == text


@pytest.mark.parametrize("tz, minutes, header, labels", [
    ("Asia/Shanghai", [0, 5.5, 11], "cam-1  2026-06-01  UTC+08:00  16:00:00 - 16:11:00  (11 min 0 s)",
     [("first seen 16:00:00", "+0 s"), ("midway 16:05:30", "+5 min 30 s"), ("last seen 16:11:00", "+11 min 0 s")]),
    ("America/New_York", [0, 90], "cam-1  2026-06-01  UTC-04:00  04:00:00 - 05:30:00  (1 h 30 min)",
     [("first seen 04:00:00", "+0 s"), ("last seen 05:30:00", "+1 h 30 min")]),
    ("Asia/Shanghai", [0, 480], "cam-1  2026-06-01  UTC+08:00  16:00:00 - 00:00:00  (8 h 00 min)",  # past midnight
     [("first seen 16:00:00", "+0 s"), ("last seen 06-02 00:00:00", "+8 h 00 min")]),
])
def test_strip_labels_show_camera_local_time_and_time_since_first_sight(tz, minutes, header, labels):
    assert strip_labels([look(m) for m in minutes], ZoneInfo(tz), "cam-1") == (header, labels)


def test_compose_strip_puts_the_panels_in_time_order_with_the_box_in_the_kind_colour():
    panels = [look(0, COLORS[0]), look(5, COLORS[1], hw=(200, 60)), look(11, COLORS[2], hw=(40, 400))]
    strip = compose_strip(panels, SHANGHAI, ORANGE, "cam-1")
    assert strip.shape[0] == 34 + 240 + 50 + 8 and strip.dtype == np.uint8
    row = strip[34 + 120]  # through the middle of the pictures
    found = []
    for x in range(strip.shape[1]):
        for i, color in enumerate(COLORS[:3]):
            if near(row[x], color, 10) and (not found or found[-1] != i):
                found.append(i)
    assert found == [0, 1, 2]
    assert (np.abs(strip.astype(int) - ORANGE).max(axis=2) < 30).sum() > 200  # the boxes, drawn
    with pytest.raises(ValueError, match="at least two looks"):
        compose_strip(panels[:1], SHANGHAI, ORANGE, "cam-1")


# --- the clip --------------------------------------------------------------------------------------------------

def decode(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pictures = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        return stream, pictures, float(container.duration or 0) / av.time_base


def test_the_clip_is_a_small_h264_mp4_that_decodes_back_to_the_looks_in_order(tmp_path):
    looks = [look(m, COLORS[i]) for i, m in enumerate([0, 2, 4, 7, 9, 11])]
    pictures = list(clip_frames(looks, SHANGHAI, ORANGE))
    path = tmp_path / "v.clip.mp4"
    write_clip(path, pictures)
    stream, decoded, duration_s = decode(path)
    assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    assert (stream.codec_context.width, stream.codec_context.height) == (480, 408)  # <= 640 px wide, even sides
    assert len(decoded) == len(looks) * 4 and abs(duration_s - len(looks) * 0.8) < 0.25
    assert 0 < path.stat().st_size <= CLIP_MAX_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    centres = [decoded[i * 4 + 2][48 + 180, 240] for i in range(len(looks))]  # below the 48 px caption
    assert all(near(c, color) for c, color in zip(centres, COLORS)), centres


@pytest.mark.parametrize("case, error, message", [
    ("no folder", EvidenceWriteError, "not written"),
    ("over the limit", EvidenceWriteError, "over the 100-byte limit"),
    ("odd size", ValueError, "one even size"),
    ("nothing", ValueError, "at least one picture"),
])
def test_write_clip_failures_name_the_file_and_leave_nothing(tmp_path, case, error, message):
    pictures = [np.zeros((64, 64, 3), np.uint8)] * 3
    path, max_bytes = tmp_path / "v.clip.mp4", CLIP_MAX_BYTES
    if case == "no folder":
        path = tmp_path / "missing" / "v.clip.mp4"
    elif case == "over the limit":
        max_bytes = 100
    elif case == "odd size":
        pictures = [np.zeros((64, 64, 3), np.uint8), np.zeros((63, 64, 3), np.uint8)]
    else:
        pictures = []
    with pytest.raises(error, match=message) as raised:
        write_clip(path, pictures, max_bytes=max_bytes)
    assert "v.clip.mp4" in str(raised.value) and not path.exists()


def test_redact_clip_applies_the_function_to_every_picture(tmp_path):
    src, dst = tmp_path / "v.clip.mp4", tmp_path / "v.clip.public.mp4"
    write_clip(src, list(clip_frames([look(m, COLORS[i]) for i, m in enumerate([0, 5, 11])], SHANGHAI, ORANGE)))

    def black_top_half(picture: np.ndarray) -> np.ndarray:
        out = picture.copy()
        out[: out.shape[0] // 2] = 0
        return out

    redact_clip(src, dst, black_top_half)
    _, original, _ = decode(src)
    _, redacted, _ = decode(dst)
    assert len(redacted) == len(original) == 12
    assert all(p[:200].max() < 30 and near(p[48 + 300, 240], COLORS[0]) for p in redacted[:4])  # top black, rest kept
    assert stat.S_IMODE(dst.stat().st_mode) == 0o600 and not list(tmp_path.glob(".*tmp*"))
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(EvidenceWriteError, match="junk.mp4: cannot be read as a clip"):
        redact_clip(tmp_path / "junk.mp4", tmp_path / "out.mp4", black_top_half)


# --- from the track history to evidence files -----------------------------------------------------------------

BIKE = (200.0, 150.0, 260.0, 230.0)
OTHER_BIKE = (300.0, 150.0, 360.0, 230.0)


def street(t_s: float, color=(90, 110, 130)) -> Frame:
    """A 480x360 frame at T0 + t_s with a bike-sized block whose colour tells the time (minute 0: red, 5: green, …)."""
    image = np.full((360, 480, 3), color, np.uint8)
    x1, y1, x2, y2 = (int(v) for v in BIKE)
    image[y1:y2, x1:x2] = COLORS[min(int(t_s // 300), len(COLORS) - 1)]
    return Frame("cam-1", int(t_s), T0 + timedelta(seconds=t_s), image)


def tracked(*tracks) -> Detections:
    n = len(tracks)
    return Detections(xyxy=np.array([b for _, b in tracks], np.float32).reshape(-1, 4),
                      confidence=np.full(n, 0.9, np.float32), class_id=np.zeros(n, int),
                      tracker_id=np.array([t for t, _ in tracks], int), data={"class_name": np.array(["bicycle"] * n)})


def watched(history: TrackHistory, until_s: float, step_s: float = 10.0, late_track_from_s: float = 600.0) -> Frame:
    """Feed the history a bike (track 1) from T0 and a second one (track 2) from `late_track_from_s`; the last frame."""
    t_s = 0.0
    while True:
        frame = street(t_s)
        tracks = [(1, BIKE)] + ([(2, OTHER_BIKE)] if t_s >= late_track_from_s else [])
        history.update(frame.ts_s, frame.image, tracked(*tracks))
        if t_s >= until_s:
            return frame
        t_s += step_s


def bikes_event(last_s: float = 900.0, event: str = "opened"):
    """Both bikes of `watched` as one misparked cluster: tracks (1, 2) with their boxes."""
    return make_violation("cam-1/bike_misparked/z2/1", event=event, kind="bike_misparked", zone_id="z2",
                          first_s=60.0, last_s=last_s, boxes=(BIKE, OTHER_BIKE), classes=["bicycle", "bicycle"])


def test_a_cluster_is_shown_by_the_member_seen_longest_ending_with_the_current_frame():
    history = TrackHistory()
    frame = watched(history, 900.0)
    event = dataclasses.replace(bikes_event(), track_ids=(2, 1), xyxy=np.array([OTHER_BIKE, BIKE], np.float32))
    # track 2 (seen since 600 s) is listed first; track 1 (seen since 0 s) shows the cluster
    looks = violation_looks(event, frame, history)
    assert looks[0].t == T0 and looks[-1].t == frame.ts  # track 1's history, then the frame of the event
    assert [lk.t for lk in looks] == sorted(lk.t for lk in looks) and len(looks) <= history.max_samples + 1
    x1, y1, x2, y2 = (round(v) for v in looks[-1].box_xyxy)
    assert near(looks[-1].image[(y1 + y2) // 2, (x1 + x2) // 2], COLORS[3])  # 900 s: the fourth colour, track 1


def test_save_timelapse_writes_both_files_or_none(tmp_path, monkeypatch):
    history = TrackHistory()
    frame = watched(history, 900.0)
    paths = save_timelapse(tmp_path, "v1-160000", bikes_event(), frame, history, SHANGHAI, ORANGE, "cam-1")
    assert {k: Path(v).name for k, v in paths.items()} == {"strip": "v1-160000.strip.jpg",
                                                            "clip": "v1-160000.clip.mp4"}
    strip = cv2.imread(paths["strip"])
    assert strip is not None and strip.shape[0] == 332
    _, pictures, _ = decode(Path(paths["clip"]))
    assert len(pictures) % 4 == 0 and len(pictures) >= 12
    assert all(stat.S_IMODE(Path(p).stat().st_mode) == 0o600 for p in paths.values())
    # nothing kept before this frame: no duration to prove, no files
    assert save_timelapse(tmp_path, "v2", bikes_event(), street(0.0), TrackHistory(), SHANGHAI, ORANGE, "c") == {}

    def broken(path, *args, **kwargs):
        raise EvidenceWriteError(f"{path}: not written: No space left on device")

    monkeypatch.setattr(timelapse, "write_clip", broken)
    with pytest.raises(EvidenceWriteError, match="v3.clip.mp4: not written"):
        save_timelapse(tmp_path, "v3", bikes_event(), frame, history, SHANGHAI, ORANGE, "cam-1")
    assert not list(tmp_path.glob("v3*"))  # the strip written before the failure is gone too


# --- in the camera worker, the case store and the API ----------------------------------------------------------

def worker_for(store, evidence_dir: Path, guard: EvidenceGuard) -> CameraWorker:  # noqa: F811
    config = make_config()
    ctx = WorkerContext(config=lambda: config, cases=store, evidence_dir=evidence_dir, latest_frames=LatestFrames(),
                        push_sources={}, detectors=DetectorPool(), stop=threading.Event(), evidence_guard=guard)
    return CameraWorker("cam-1", ctx, CameraRuntime("cam-1"))


@pytest.mark.parametrize("clip_fails", [False, True])
def test_the_worker_adds_strip_and_clip_to_the_case_or_counts_their_failure(tmp_path, store, monkeypatch,  # noqa: F811
                                                                              clip_fails):
    guard = EvidenceGuard(tmp_path / "evidence", min_free_bytes=0)
    worker = worker_for(store, tmp_path / "evidence", guard)
    frame = watched(worker._history, 900.0)
    if clip_fails:
        def broken(path, *args, **kwargs):
            raise EvidenceWriteError(f"{path}: not written: No space left on device")
        monkeypatch.setattr(timelapse, "write_clip", broken)
    camera = make_config().cameras[0]
    worker._handle([bikes_event()], camera, frame, tracked((1, BIKE), (2, OTHER_BIKE)))
    case = store.list_cases(limit=10).items[0]
    kinds = sorted(e.kind for e in case.evidence)
    state = guard.state()
    if clip_fails:  # the frame's evidence is kept; the failure is counted and shows in health
        assert kinds == ["annotated", "crop", "original"]
        assert state.write_failures_total == 1 and state.degraded and "clip.mp4: not written" in state.last_error
    else:
        assert kinds == ["annotated", "clip", "crop", "original", "strip"]
        assert state.written_total == 1 and not state.degraded
    for e in case.evidence:
        assert Path(e.path).is_file() and e.sha256 and len(e.sha256) == 64
        assert (e.boxes is None) is (e.kind in ("strip", "clip"))  # frame boxes only on the frame's images


def test_the_evidence_route_serves_the_clip_as_video_mp4(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, api_keys=[{"name": "root", "role": "admin", "key": ADMIN_KEY}])
    app = create_app(settings, make_config())
    history = TrackHistory()
    frame = watched(history, 900.0)
    out = tmp_path / "evidence" / "cam-1"
    out.mkdir(parents=True)
    paths = save_timelapse(out, "v1", bikes_event(), frame, history, SHANGHAI, ORANGE, "cam-1")
    case = app.state.services.cases.ingest(bikes_event(), paths, origin=make_origin("cam-1"))
    with TestClient(app) as client:
        by_kind = {e["kind"]: e["id"] for e in case.model_dump()["evidence"]}
        got = client.get(f"/api/v1/cases/{case.id}/evidence/{by_kind['clip']}", params={"original": "true"},
                         headers=ADMIN)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "video/mp4" and got.content == Path(paths["clip"]).read_bytes()
    assert evidence_media_type(paths["strip"]) == "image/jpeg"


def test_labels_use_frame_timestamps_not_frame_counts():
    # two looks 11 minutes apart but consecutive frame numbers: the label says 11 minutes
    first = Look(datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc), np.zeros((8, 8, 3), np.uint8), (1, 1, 7, 7))
    last = Look(first.t + timedelta(minutes=11), np.zeros((8, 8, 3), np.uint8), (1, 1, 7, 7))
    assert strip_labels([first, last], SHANGHAI, "c")[1][1] == ("last seen 16:11:00", "+11 min 0 s")


class _Pipeline:
    """Stands in for `CameraPipeline` in `CameraWorker._step`: both bikes tracked on every frame, the cluster's
    violation opened on the frame at `due_s`."""

    def __init__(self, due_s: float):
        self.tracker = object()
        self.due_s = due_s

    def process(self, frame: Frame):
        from detector.pipeline import PipelineStep

        t_s = frame.ts_s - T0.timestamp()
        events = [bikes_event(last_s=t_s)] if t_s == self.due_s else []
        return PipelineStep(frame, tracked((1, BIKE), (2, OTHER_BIKE)), events, 1.0)


class _Source:
    live = False

    def queue_depth(self) -> int:
        return 0


def test_the_worker_keeps_history_from_each_frame_and_starts_afresh_with_a_new_tracker(tmp_path, store):  # noqa: F811
    worker = worker_for(store, tmp_path / "evidence", EvidenceGuard(tmp_path / "evidence", min_free_bytes=0))
    pipeline, camera = _Pipeline(due_s=900.0), make_config().cameras[0]
    for t_s in range(0, 901, 10):
        worker._step(pipeline, camera, street(float(t_s)), _Source())
    case = store.list_cases(limit=10).items[0]
    strip = next(e for e in case.evidence if e.kind == "strip")
    assert cv2.imread(strip.path).shape[1] > 600 and len(worker._history.samples(1)) == worker._history.max_samples
    pipeline.tracker = object()  # rebuilt rules with a new tracker: its track 1 is another object
    worker._step(pipeline, camera, street(910.0), _Source())
    assert [s.t_s for s in worker._history.samples(1)] == [T0.timestamp() + 910.0]
