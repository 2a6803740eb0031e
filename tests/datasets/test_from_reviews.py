"""`dataset from-reviews`: a real SQLite case store built with the service's own code (CaseStore ingest of
violations with evidence written by `service.evidence.save_evidence`, then confirm / reject / change class through
the store), read back by `service.review_export`, exported by `datasets.from_reviews` with the kind catalogue's
classes, and the label files, images, split and summary checked exactly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from sqlalchemy import null, text, update

from datasets.from_reviews import (ExportOptions, EvidenceFrame, case_class, choose_frame, export_reviewed_cases,
                                   frame_boxes, mask_outside_boxes, newest_frame_with_boxes, split_key, xyxy_to_yolo)
from datasets.yolo import DatasetError, load_dataset, merge_datasets
from detector.rules import Violation
from detector.types import Detections, Frame
from service.cases import CaseSettings, CaseStore
from service.cli import main
from service.config import CameraConfig, camera_origin
from service.db import DatabaseSettings, Evidence, make_engine, make_session_factory, upgrade_schema
from service.kinds import kind_classes
from service.review_export import read_reviewed_cases
from service.evidence import save_evidence

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=timezone.utc)
W, H = 1280, 720
NAMES = ["bicycle", "stall", "ebike"]


# --- pure logic ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, corrected, detector_class, class_map, expected", [
    ("stall_occupation", None, "stall", None, "stall"),
    ("bike_misparked", None, "bicycle", None, "bicycle"),
    ("bike_misparked", None, "ebike", None, "ebike"),                  # an e-bike cluster stays e-bikes
    ("stall_occupation", "bike_misparked", "stall", None, "bicycle"),  # reviewer corrected the kind
    ("bike_misparked", "stall_occupation", "ebike", None, "stall"),
    ("stall_occupation", "stall_occupation", "stall", None, "stall"),  # a "correction" to the same kind
    ("mobile_vendor", None, "stall", None, "stall"),
    ("illegal_structure", None, None, None, "illegal_structure"),
    ("graffiti", None, "tag", None, "tag"),                            # unknown kind: the detector's class
    ("graffiti", None, None, None, None),
    ("bike_misparked", None, "bicycle", {"bicycle": "bike"}, "bike"),
    ("bike_misparked", None, "bicycle", {"bicycle": None}, None),
])
def test_case_class(kind, corrected, detector_class, class_map, expected):
    assert case_class(kind, corrected, detector_class, kind_classes(), class_map=class_map)[0] == expected


def test_choose_frame_takes_the_newest_frame_not_after_the_boxes():
    frames = [EvidenceFrame("a", T0, None), EvidenceFrame("b", T0 + timedelta(minutes=5), None),
              EvidenceFrame("c", T0 + timedelta(minutes=20), None)]
    frame, age_s = choose_frame(frames, T0 + timedelta(minutes=12))
    assert (frame.path, age_s) == ("b", 420.0)
    assert choose_frame(frames, T0 - timedelta(seconds=1))[0] is None


def test_newest_frame_with_boxes_ignores_frames_without_their_own():
    frames = [EvidenceFrame("a", T0, None, [{"xyxy": [0, 0, 1, 1]}]),
              EvidenceFrame("b", T0 + timedelta(minutes=5), None, []),       # stored, but no boxes: still its own
              EvidenceFrame("c", T0 + timedelta(minutes=20), None, None)]    # written before migration 0002
    assert newest_frame_with_boxes(frames).path == "b"
    assert newest_frame_with_boxes(frames[2:]) is None


@pytest.mark.parametrize("boxes, error", [
    ([{"xyxy": [1, 2, 3, 4], "class_name": "ebike", "track_id": 3}, {"xyxy": [5, 6, 7, 8]}], None),
    ({"xyxy": [1, 2, 3, 4]}, "expected a list"),
    ([{"xyxy": [1, 2, 3]}], "box 0"),
    ([[1, 2, 3, 4]], "box 0"),
    ([{"xyxy": [1, 2, 3, None]}], "box 0"),
    ([{"xyxy": [1, 2, 3, float("nan")]}], "box 0"),
])
def test_frame_boxes(boxes, error):
    frame = EvidenceFrame("a", T0, None, boxes)
    if error:
        with pytest.raises(ValueError, match=error):
            frame_boxes(frame)
        return
    xyxy, classes = frame_boxes(frame)
    assert xyxy.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]] and classes == ("ebike", None)


def test_split_key_and_labels():
    assert split_key("camera-day", 3, "gate", T0 + timedelta(hours=17)) == "gate|2026-06-02"
    assert split_key("case", 3, "gate", T0) == "case-3"
    out = xyxy_to_yolo(np.array([[100, 200, 300, 400], [-10, 700, 50, 730], [1280, 0, 1300, 10]]), W, H)
    np.testing.assert_allclose(out, [[0.15625, 0.416667, 0.15625, 0.277778], [0.019531, 0.986111, 0.039062, 0.027778]],
                               atol=1e-6)


def test_mask_keeps_context_around_each_box():
    image = np.zeros((100, 200, 3), np.uint8)
    out = mask_outside_boxes(image, np.array([[50, 40, 70, 60], [150, 10, 160, 20]]), context_frac=0.5,
                             min_context_px=5)
    keep = out[..., 0] == 0
    assert keep[30:70, 40:80].all() and not keep[29, 40] and not keep[30, 39]   # 20 px box, 10 px margin
    assert keep[5:25, 145:165].all() and not keep[4, 150]                        # 10 px box, 5 px minimum
    assert (out[~keep] == 114).all()


# --- a real store ---------------------------------------------------------------------------------------------

def scene(seed: int) -> np.ndarray:
    """A smooth, distinct frame per case (JPEG keeps it within a few grey levels)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(0.05, 0.2, 3)
    img = np.stack([(xx * a) % 200 + 20, (yy * b) % 200 + 20, ((xx + yy) * c) % 200 + 20], axis=-1)
    return cv2.GaussianBlur(img.astype(np.uint8), (0, 0), 3)


def violation(vid: str, kind: str, camera_id: str, boxes, classes, first_s: float, last_s: float,
              event: str = "opened") -> Violation:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Violation(violation_id=vid, kind=kind, event=event, status="closed" if event == "closed" else "open",
                     camera_id=camera_id, zone_id=f"z-{vid}", track_ids=tuple(range(1, len(boxes) + 1)),
                     first_seen=T0 + timedelta(seconds=first_s), last_seen=T0 + timedelta(seconds=last_s),
                     dwell_s=last_s - first_s, xyxy=boxes, score=0.8, class_names=tuple(classes))


class Store:
    """A SQLite case store on disk with evidence files, filled through the service's own API."""

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "cases.db"
        engine = make_engine(DatabaseSettings(path=self.db))
        upgrade_schema(engine)
        self.engine = engine
        self.cases = CaseStore(make_session_factory(engine), CaseSettings(),
                               clock=lambda: T0 + timedelta(days=1))
        self.evidence_dir = root / "evidence"

    def add(self, vid: str, kind: str, boxes, classes, *, camera_id: str = "cam-1", day: int = 0,
            seed: int = 0) -> int:
        first_s, last_s = day * 86400.0, day * 86400.0 + 300.0
        v = violation(vid, kind, camera_id, boxes, classes, first_s, last_s)
        frame = Frame(source_id=camera_id, index=0, ts=v.last_seen, image=scene(seed))
        camera = CameraConfig(id=camera_id, name=camera_id, source="rtsp://10.0.0.5/stream", timezone="Asia/Shanghai")
        paths = save_evidence(self.evidence_dir / camera_id, v, frame, camera, Detections.empty())
        return self.cases.ingest(v, paths, camera_origin(camera)).id

    def update(self, vid: str, kind: str, boxes, classes, last_s: float, *, camera_id: str = "cam-1",
               evidence: bool = True, seed: int = 0, event: str = "updated") -> None:
        """A later event of `vid` (day 0), with a new evidence frame (its own file) unless `evidence` is False."""
        v = violation(vid, kind, camera_id, boxes, classes, 0.0, last_s, event=event)
        paths = None
        if evidence:
            frame = Frame(source_id=camera_id, index=1, ts=v.last_seen, image=scene(seed))
            camera = CameraConfig(id=camera_id, name=camera_id, source="rtsp://10.0.0.5/stream",
                                  timezone="Asia/Shanghai")
            paths = save_evidence(self.evidence_dir / camera_id, v, frame, camera, Detections.empty(),
                                  stem=f"{vid}-{int(last_s)}")
        self.cases.ingest(v, paths)

    def legacy(self, case_id: int, ts_s: float | None = None) -> None:
        """Make the case's evidence rows (those of the frame at `ts_s` s, or all) look written before migration
        0002: no boxes of their own."""
        stmt = update(Evidence).where(Evidence.case_id == case_id).values(boxes=null())
        if ts_s is not None:
            stmt = stmt.where(Evidence.ts == T0 + timedelta(seconds=ts_s))
        with self.engine.begin() as conn:
            assert conn.execute(stmt).rowcount > 0

    def set_boxes(self, case_id: int, boxes_json: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE evidence SET boxes = :b WHERE case_id = :id"), {"b": boxes_json, "id": case_id})


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(tmp_path_factory.mktemp("reviews"))
    c = s.cases
    ids = {}
    # confirmed stall (cam-1, day 0)
    ids["stall"] = s.add("stall", "stall_occupation", [[100, 200, 300, 400]], ["stall"], seed=1)
    c.confirm(ids["stall"], "li")
    # a misparked cluster of two bicycles (cam-1, day 1)
    ids["bikes"] = s.add("bikes", "bike_misparked", [[500, 500, 560, 540], [570, 505, 630, 545]],
                         ["bicycle", "bicycle"], day=1, seed=2)
    c.confirm(ids["bikes"], "li")
    # the detector called it a stall; the reviewer changed the kind to misparked bikes, then confirmed (cam-2)
    ids["corrected"] = s.add("corrected", "stall_occupation", [[640, 360, 704, 400]], ["stall"],
                             camera_id="cam-2", seed=3)
    c.change_class(ids["corrected"], "wang", "bike_misparked")
    c.confirm(ids["corrected"], "wang")
    # an e-bike cluster (cam-2, day 1)
    ids["ebike"] = s.add("ebike", "bike_misparked", [[10, 600, 90, 700]], ["ebike"], camera_id="cam-2", day=1,
                         seed=4)
    c.confirm(ids["ebike"], "wang")
    # rejected: an awning taken for a stall (a detector error) and a bike in the allowed area (a rule error)
    ids["awning"] = s.add("awning", "stall_occupation", [[900, 100, 1200, 250]], ["stall"], camera_id="cam-3",
                          seed=5)
    c.reject(ids["awning"], "li", "not a stall: shop awning")
    ids["allowed"] = s.add("allowed", "bike_misparked", [[300, 600, 360, 650]], ["bicycle"], camera_id="cam-3",
                           day=1, seed=6)
    c.reject(ids["allowed"], "li", "parked in the allowed area")
    # still pending: not exported
    ids["pending"] = s.add("pending", "stall_occupation", [[100, 100, 150, 150]], ["stall"], camera_id="cam-4")
    # confirmed illegal structure: the street classes have no such class
    ids["structure"] = s.add("structure", "illegal_structure", [[0, 0, 400, 300]], ["structure"],
                             camera_id="cam-4", day=1)
    c.confirm(ids["structure"], "li")
    # boxes moved on two hours after the only evidence frame (a closed event carries the last boxes), and the
    # frame was stored before per-frame boxes (migration 0002): the old pairing applies and refuses it
    ids["stale"] = s.add("stale", "bike_misparked", [[700, 600, 760, 650]], ["bicycle"], camera_id="cam-5")
    s.legacy(ids["stale"])
    c.ingest(violation("stale", "bike_misparked", "cam-5", [[720, 600, 780, 650]], ["bicycle"], 0, 7500,
                       event="closed"))
    c.confirm(ids["stale"], "li")
    # the evidence file is gone
    ids["lost"] = s.add("lost", "stall_occupation", [[200, 200, 260, 260]], ["stall"], camera_id="cam-5", day=1)
    c.confirm(ids["lost"], "li")
    lost = [e for e in c.get(ids["lost"]).evidence if e.kind == "original"][0]
    Path(lost.path).unlink()
    s.ids = ids
    yield s
    s.engine.dispose()


def export(store: Store, out: Path, **options) -> dict:
    """Read the store's reviewed cases through the service and export them, as `dataset from-reviews` does."""
    defaults = dict(class_names=NAMES, val_frac=0.5, negative_reason="not a", kind_classes=kind_classes())
    export_options = ExportOptions(**{**defaults, **options})
    found = read_reviewed_cases(f"sqlite:///{store.db}", export_options.since)
    return export_reviewed_cases(found.cases, out, export_options, not_reviewed=found.not_reviewed,
                                 source=found.source)


def labels_of(out: Path, summary: dict) -> dict[int, str]:
    by_case = {}
    for rec in summary["cases"]:
        label = out / rec["image"].replace("images/", "labels/", 1)
        by_case[rec["case_id"]] = label.with_suffix(".txt").read_text()
    return by_case


def test_export_labels_classes_and_skips(store, tmp_path):
    out = tmp_path / "ds"
    summary = export(store, out)
    ids = store.ids
    labels = labels_of(out, summary)
    assert labels == {
        ids["stall"]: "1 0.156250 0.416667 0.156250 0.277778\n",
        ids["bikes"]: "0 0.414062 0.722222 0.046875 0.055556\n0 0.468750 0.729167 0.046875 0.055556\n",
        ids["corrected"]: "0 0.525000 0.527778 0.050000 0.055556\n",
        ids["ebike"]: "2 0.039062 0.902778 0.062500 0.138889\n",
        ids["awning"]: "",
    }
    assert summary["positives"] == 4 and summary["negatives"] == 1 and summary["exported"] == 5
    assert summary["boxes_per_class"] == {"bicycle": 3, "stall": 1, "ebike": 1}
    assert summary["reviewed_cases"] == 9 and summary["not_reviewed"] == {"pending": 1}
    assert summary["skipped"] == {
        "boxes newer than the evidence frame": 1,
        "class not in target names": 1,
        "evidence file missing": 1,
        "rejection reason does not match --negative-reason": 1,
    }
    by_reason = {s["case_id"]: s["reason"] for s in summary["skipped_cases"]}
    assert by_reason[ids["stale"]] == "boxes newer than the evidence frame"
    assert by_reason[ids["structure"]] == "class not in target names"
    assert summary["boxes_from"] == {"frame": 5, "case": 0}
    records = {r["case_id"]: r for r in summary["cases"]}
    assert records[ids["corrected"]]["label_from"] == "class of corrected kind bike_misparked"
    assert records[ids["corrected"]]["box_classes"] == ["bicycle"]  # the stall box, relabelled with the kind
    assert records[ids["awning"]]["box_classes"] == []
    assert records[ids["corrected"]]["decided_by"] == "wang"
    # the original frame is used, never the annotated one
    assert all(r["evidence"].endswith(".orig.jpg") for r in records.values())


def test_split_keeps_camera_days_together_and_loads(store, tmp_path):
    out = tmp_path / "ds"
    summary = export(store, out)
    groups: dict[str, set[str]] = {}
    for rec in summary["cases"]:
        groups.setdefault(rec["group"], set()).add(rec["split"])
    assert all(len(splits) == 1 for splits in groups.values())
    assert {"train", "val"} <= set(summary["images"])
    ds = load_dataset(out / "data.yaml")
    assert ds.class_names == NAMES
    assert sum(len(v) for v in ds.splits.values()) == 5
    items = [im for v in ds.splits.values() for im in v]
    assert all(im.has_label_file for im in items)
    assert sorted(len(im) for im in items) == [0, 1, 1, 1, 2]
    # merges with another dataset through `dataset merge`
    merged = merge_datasets([(out / "data.yaml", None)], tmp_path / "merged", NAMES)
    assert sum(len(v) for v in load_dataset(merged).splits.values()) == 5


def exported_and_original(store, tmp_path, case: str):
    """The exported image of one case and the evidence frame it was made from."""
    out = tmp_path / "ds"
    summary = export(store, out)
    rec = next(r for r in summary["cases"] if r["case_id"] == store.ids[case])
    return cv2.imread(str(out / rec["image"])), cv2.imread(rec["evidence"])


def test_region_scope_greys_out_everything_but_the_boxes(store, tmp_path):
    image, original = exported_and_original(store, tmp_path, "stall")
    assert image.shape == original.shape == (H, W, 3)
    # box (100, 200)-(300, 400): 100 px context on each side
    inside = np.abs(image[200:400, 100:300].astype(int) - original[200:400, 100:300]).mean()
    assert inside < 3.0
    assert np.abs(image[520:, 420:].astype(int) - 114).max() <= 3
    assert np.abs(image[:90].astype(int) - 114).max() <= 3


def test_frame_scope_links_the_original_frame(store, tmp_path):
    out = tmp_path / "ds"
    summary = export(store, out, scope="frame")
    rec = next(r for r in summary["cases"] if r["case_id"] == store.ids["awning"])
    assert (out / rec["image"]).read_bytes() == Path(rec["evidence"]).read_bytes()
    assert rec["label"] is None


def test_export_is_deterministic(store, tmp_path):
    a, b = export(store, tmp_path / "a"), export(store, tmp_path / "b")
    assert a == b
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for rel in files_a:
        if rel.name != "data.yaml":  # holds the absolute dataset path
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


@pytest.mark.parametrize("options, expected", [
    (dict(split_by="case"), {"bikes", "stall", "corrected", "ebike", "awning"}),
    (dict(negatives=False), {"bikes", "stall", "corrected", "ebike"}),
    (dict(negative_reason=None), {"bikes", "stall", "corrected", "ebike", "awning", "allowed"}),
    (dict(class_names=["bicycle", "stall", "ebike", "illegal_structure"]),
     {"bikes", "stall", "corrected", "ebike", "awning", "structure"}),
    (dict(max_box_age_s=7200), {"bikes", "stall", "corrected", "ebike", "awning", "stale"}),  # old pairing
    (dict(since=T0 + timedelta(days=2)), None),  # every decision was made on day 1 (the store's clock)
])
def test_options(store, tmp_path, options, expected):
    names = {v: k for k, v in store.ids.items()}
    if expected is None:
        with pytest.raises(DatasetError, match="no reviewed cases .* decided since"):
            export(store, tmp_path / "ds", **options)
        return
    summary = export(store, tmp_path / "ds", **options)
    assert {names[r["case_id"]] for r in summary["cases"]} == expected


# --- per-frame boxes (evidence.boxes) and the fallback for rows without them ---------------------------------------

@pytest.fixture(scope="module")
def frames_store(tmp_path_factory) -> Store:
    """Cases whose latest boxes differ from those of their evidence frames."""
    s = Store(tmp_path_factory.mktemp("frames"))
    ids = {}
    # "moved": an old frame (no boxes of its own) at 300 s, a frame at 900 s with its own boxes (a bicycle and an
    # e-bike), then two hours on the cluster is one bicycle somewhere else (closed event, no frame)
    ids["moved"] = s.add("moved", "bike_misparked", [[100, 100, 160, 150]], ["bicycle"], camera_id="cam-1", seed=1)
    s.legacy(ids["moved"], ts_s=300)
    s.update("moved", "bike_misparked", [[500, 500, 560, 540], [570, 505, 630, 545]], ["bicycle", "ebike"], 900,
             camera_id="cam-1", seed=2)
    s.update("moved", "bike_misparked", [[720, 600, 780, 650]], ["bicycle"], 7500, camera_id="cam-1",
             evidence=False, event="closed")
    s.cases.confirm(ids["moved"], "li")
    # "legacy": its only frame has no boxes of its own; the case's boxes moved 100 s later (within the limit)
    ids["legacy"] = s.add("legacy", "bike_misparked", [[100, 100, 160, 150]], ["bicycle"], camera_id="cam-2",
                          seed=3)
    s.legacy(ids["legacy"])
    s.update("legacy", "bike_misparked", [[110, 100, 170, 150]], ["bicycle"], 400, camera_id="cam-2",
             evidence=False)
    s.cases.confirm(ids["legacy"], "li")
    # "garbled": the frame's stored boxes cannot be read
    ids["garbled"] = s.add("garbled", "stall_occupation", [[100, 200, 300, 400]], ["stall"], camera_id="cam-3")
    s.set_boxes(ids["garbled"], '[{"xyxy": [1, 2]}]')
    s.cases.confirm(ids["garbled"], "li")
    s.ids = ids
    yield s
    s.engine.dispose()


@pytest.mark.parametrize("name, label, boxes_from, box_age_s, frame_s", [
    # the frame's own boxes and classes, although the case's latest boxes are two hours newer
    ("moved", "0 0.414062 0.722222 0.046875 0.055556\n2 0.468750 0.729167 0.046875 0.055556\n", "frame", 0.0, 900),
    # no boxes of its own: the case's boxes (110, 100)-(170, 150), seen 100 s after the frame
    ("legacy", "0 0.109375 0.173611 0.046875 0.069444\n", "case", 100.0, 300),
])
def test_export_uses_the_frames_own_boxes_else_the_cases(frames_store, tmp_path, name, label, boxes_from, box_age_s,
                                                          frame_s):
    out = tmp_path / "ds"
    summary = export(frames_store, out)
    case_id = frames_store.ids[name]
    assert labels_of(out, summary)[case_id] == label
    rec = next(r for r in summary["cases"] if r["case_id"] == case_id)
    assert (rec["boxes_from"], rec["box_age_s"]) == (boxes_from, box_age_s)
    assert rec["frame_ts"] == (T0 + timedelta(seconds=frame_s)).isoformat()
    assert rec["evidence"].endswith(".orig.jpg")


def test_summary_counts_frame_and_case_boxes(frames_store, tmp_path):
    summary = export(frames_store, tmp_path / "ds")
    assert summary["boxes_from"] == {"frame": 1, "case": 1}
    assert summary["boxes_per_class"] == {"bicycle": 2, "stall": 0, "ebike": 1}
    assert summary["box_age_s"] == {"median": 50.0, "max": 100.0}
    records = {r["case_id"]: r for r in summary["cases"]}
    assert records[frames_store.ids["moved"]]["box_classes"] == ["bicycle", "ebike"]
    assert records[frames_store.ids["moved"]]["label"] == "bicycle"  # the case's (main) class
    assert summary["skipped"] == {"evidence frame boxes unreadable": 1}
    assert summary["skipped_cases"][0]["case_id"] == frames_store.ids["garbled"]


def test_region_scope_keeps_the_frames_boxes(frames_store, tmp_path):
    image, original = exported_and_original(frames_store, tmp_path, "moved")
    assert np.abs(image[500:545, 500:630].astype(int) - original[500:545, 500:630]).mean() < 3.0
    assert np.abs(image[600:650, 720:780].astype(int) - 114).max() <= 3  # the case's latest box: masked


def test_a_database_at_schema_0001_is_read_with_the_case_boxes(tmp_path):
    # Downgraded to 0001 (no evidence.boxes column): read as evidence without boxes, the old pairing applies.
    from service.db.session import run_migrations

    s = Store(tmp_path)
    case_id = s.add("bikes", "bike_misparked", [[500, 500, 560, 540]], ["bicycle"])
    s.cases.confirm(case_id, "li")
    run_migrations(s.engine, "downgrade", "0001")  # SQLite: rebuilds `cases` with foreign keys checked after
    s.engine.dispose()
    out = tmp_path / "ds"
    summary = export(s, out)
    assert summary["boxes_from"] == {"frame": 0, "case": 1}
    assert labels_of(out, summary)[case_id] == "0 0.414062 0.722222 0.046875 0.055556\n"


# --- command line ---------------------------------------------------------------------------------------------

def test_cli_writes_the_dataset(store, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["dataset", "from-reviews", "--db", f"sqlite:///{store.db}", "--out", str(out), "--classes", *NAMES,
                 "--negative-reason", "not a", "--since", "2026-06-01"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "4 positives, 1 negatives" in printed and "4 skipped" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["since"] == "2026-06-01T00:00:00+00:00"


def test_cli_settings_file_names_the_database(store, tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"database_path: {store.db}\nevidence_dir: {store.evidence_dir}\n")
    code = main(["dataset", "from-reviews", "--settings", str(settings), "--out", str(tmp_path / "ds"),
                 "--classes", *NAMES])
    assert code == 0, capsys.readouterr().err


def test_cli_missing_database_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.db"
    code = main(["dataset", "from-reviews", "--db", f"sqlite:///{missing}", "--out", str(tmp_path / "ds"),
                 "--classes", *NAMES])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("streetwatch: error: ") and "no such case database" in err
    assert "Traceback" not in err and not missing.exists()  # opened read-only: nothing created


def test_cli_no_reviewed_cases_is_a_clear_error(tmp_path, capsys):
    s = Store(tmp_path)
    s.add("pending", "stall_occupation", [[100, 100, 150, 150]], ["stall"])
    s.engine.dispose()
    code = main(["dataset", "from-reviews", "--db", str(s.db), "--out", str(tmp_path / "ds"), "--classes", *NAMES])
    err = capsys.readouterr().err
    assert code == 2 and "no reviewed cases (confirmed, posted or rejected)" in err and "Traceback" not in err


def test_cli_not_a_case_database(tmp_path, capsys):
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE t (x INTEGER)").connection.commit()
    code = main(["dataset", "from-reviews", "--db", str(other), "--out", str(tmp_path / "ds"), "--classes", *NAMES])
    assert code == 2 and "not a streetwatch case database" in capsys.readouterr().err


def test_cli_kind_classes_are_the_catalogues_plus_kind_class(store, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["dataset", "from-reviews", "--db", str(store.db), "--out", str(out), "--classes", *NAMES,
                 "--kind-class", "graffiti=tag", "mobile_vendor=cart,stall"])
    assert code == 0, capsys.readouterr().err
    recorded = json.loads((out / "summary.json").read_text())["settings"]["kind_classes"]
    expected = {**kind_classes(), "graffiti": ("tag",), "mobile_vendor": ("cart", "stall")}
    assert recorded == {k: list(v) for k, v in sorted(expected.items())}


def test_cli_kind_class_help_lists_the_catalogue(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "from-reviews", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for kind, classes in kind_classes().items():
        assert f"{kind}={','.join(classes)}" in help_text


@pytest.mark.parametrize("table, error", [
    ({"bike_misparked": "bicycle"}, "kind_classes\\['bike_misparked'\\]"),  # a string is not a list of classes
    ({"bike_misparked": ()}, "non-empty list"),
    ({"bike_misparked": ("bicycle", "")}, "non-empty list"),
])
def test_export_options_refuse_a_malformed_kind_table(table, error):
    with pytest.raises(DatasetError, match=error):
        ExportOptions(class_names=NAMES, kind_classes=table)
