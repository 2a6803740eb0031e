"""Distractor pseudo-labels from two COCO teachers: agreement, the truth-overlap rule, the written dataset."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.teacher import (
    agree,
    output_class_names,
    pseudo_label_dataset,
    teacher_boxes,
    truth_conflicts,
)
from datasets.yolo import DatasetError, load_dataset, write_data_yaml, write_labels
from detector.runtime.card import ModelCard
from detector.types import Detections

COCO_HEAD = ["person", "bicycle", "car", "motorcycle"]  # COCO's first four classes, in COCO's order


def dets(rows: list[tuple], names: list[str] | None = None) -> Detections:
    """Detections from rows of (x1, y1, x2, y2, score, class_id); `names` fills data['class_name']."""
    if not rows:
        return Detections.empty().with_columns(class_name=np.zeros((0,), "<U10"))
    arr = np.asarray(rows, np.float64)
    data = {"class_name": np.asarray(names)} if names is not None else {}
    return Detections(arr[:, :4], arr[:, 4], arr[:, 5].astype(int), data=data)


# --- agree ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows_a, rows_b, min_iou, pairs",
    [
        ([(0, 0, 10, 10, .9, 0)], [(0, 0, 10, 10, .8, 0)], 0.5, [(0, 0)]),        # the same box
        ([(0, 0, 10, 10, .9, 0)], [(0, 0, 10, 10, .8, 1)], 0.5, []),              # same place, other class
        ([(0, 0, 10, 10, .9, 0)], [(5, 0, 15, 10, .8, 0)], 0.5, []),              # IoU 1/3 < 0.5
        ([(0, 0, 10, 10, .9, 0)], [(5, 0, 15, 10, .8, 0)], 0.3, [(0, 0)]),        # ... but >= 0.3
        ([(0, 0, 10, 10, .9, 0)], [(0, 0, 10, 12, .8, 0), (0, 0, 10, 10, .6, 0)], 0.5, [(0, 1)]),  # best IoU wins
        ([(0, 0, 10, 10, .9, 0), (0, 0, 10, 11, .9, 0)], [(0, 0, 10, 10, .8, 0)], 0.5, [(0, 0)]),  # one partner each
        ([(0, 0, 10, 10, .9, 0), (20, 0, 30, 10, .9, 1)],
         [(20, 0, 30, 10, .7, 1), (0, 0, 10, 10, .8, 0)], 0.5, [(0, 1), (1, 0)]),  # order does not matter
        ([], [(0, 0, 10, 10, .8, 0)], 0.5, []),
        ([(0, 0, 10, 10, .9, 0)], [], 0.5, []),
    ],
)
def test_two_teachers_agree_on_a_box_of_the_same_class_and_enough_overlap(rows_a, rows_b, min_iou, pairs):
    m = agree(dets(rows_a), dets(rows_b), min_iou)
    assert list(zip(m.index_a.tolist(), m.index_b.tolist())) == pairs
    assert len(m.boxes) == len(pairs)
    assert m.n_a == len(rows_a) and m.n_b == len(rows_b)
    assert m.rate_a == (len(pairs) / len(rows_a) if rows_a else None)
    assert m.rate_b == (len(pairs) / len(rows_b) if rows_b else None)


def test_the_kept_box_is_the_score_weighted_mean_with_the_lower_score():
    m = agree(dets([(0, 0, 10, 10, 0.9, 3)]), dets([(2, 0, 12, 10, 0.3, 3)]), 0.5)
    # weights 0.75 / 0.25: x1 = 0.25 * 2, x2 = 0.75 * 10 + 0.25 * 12
    np.testing.assert_allclose(m.boxes.xyxy, [[0.5, 0, 10.5, 10]], atol=1e-5)
    assert m.boxes.class_id.tolist() == [3]
    assert m.boxes.confidence.tolist() == pytest.approx([0.3])
    assert m.iou.tolist() == pytest.approx([8 / 12])


@pytest.mark.parametrize("min_iou", [0.0, -0.1, 1.5])
def test_agree_refuses_an_iou_outside_0_1(min_iou):
    with pytest.raises(ValueError, match="min_iou"):
        agree(dets([]), dets([]), min_iou)


@pytest.mark.parametrize(
    "names, scores, min_score, kept_ids",
    [
        (["person", "car"], [0.9, 0.9], 0.5, [3, 5]),          # both mapped
        (["person", "bicycle"], [0.9, 0.9], 0.5, [3]),          # bicycle is not a distractor
        (["person", "car"], [0.49, 0.5], 0.5, [5]),             # threshold is inclusive
        (["truck", "car"], [0.9, 0.9], 0.5, [5]),               # unmapped COCO class dropped
    ],
)
def test_teacher_boxes_keep_mapped_classes_at_the_teachers_threshold(names, scores, min_score, kept_ids):
    d = dets([(0, 0, 10, 10, s, 0) for s in scores], names)
    assert teacher_boxes(d, {"person": 3, "car": 5}, min_score).class_id.tolist() == kept_ids


# --- the truth-overlap rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "teacher_box, name, may_overlap, conflict",
    [
        ((0, 0, 100, 100), "motorcycle", {"person"}, True),    # the labelled bicycle called a motorcycle
        ((2, 0, 100, 104), "car", {"person"}, True),           # ... or a car
        ((0, -60, 100, 90), "person", {"person"}, False),      # a rider over the labelled bicycle: kept
        ((0, 0, 100, 100), "person", set(), True),             # ... unless people may not overlap either
        ((60, 0, 160, 100), "motorcycle", {"person"}, False),  # a motorbike parked beside it (IoU 0.25)
        ((300, 300, 400, 400), "car", {"person"}, False),      # far away
    ],
)
def test_a_teacher_box_on_a_true_box_is_dropped_unless_its_class_may_overlap(teacher_box, name, may_overlap, conflict):
    truth = np.array([[0, 0, 100, 100]])
    assert truth_conflicts(np.array([teacher_box]), [name], truth, 0.5, may_overlap).tolist() == [conflict]


def test_no_truth_means_no_conflict():
    assert truth_conflicts(np.array([[0, 0, 5, 5]]), ["car"], np.zeros((0, 4)), 0.5).tolist() == [False]


@pytest.mark.parametrize(
    "source, distractors, target, expected",
    [
        (["bicycle"], ["person", "car"], None, ["bicycle", "person", "car"]),
        (["bicycle"], ["car", "car"], None, ["bicycle", "car"]),                 # truck=car and car=car: one class
        (["bicycle"], ["person"], ["bicycle", "stall", "person"], ["bicycle", "stall", "person"]),
    ],
)
def test_output_classes(source, distractors, target, expected):
    assert output_class_names(source, distractors, target) == expected


@pytest.mark.parametrize(
    "source, distractors, target, message",
    [
        (["bicycle", "person"], ["person"], None, "labels person itself"),
        (["vendedor"], ["person"], ["stall", "person"], "leave out vendedor"),
        (["bicycle"], ["person"], ["bicycle", "bicycle", "person"], "twice"),
    ],
)
def test_output_classes_refuse_what_would_double_or_lose_boxes(source, distractors, target, message):
    with pytest.raises(DatasetError, match=message):
        output_class_names(source, distractors, target)


# --- the written dataset, with scripted teachers --------------------------------------------------------------


class ScriptedTeacher:
    """A teacher whose boxes are looked up by the grey level of the (uniform) image it is shown."""

    def __init__(self, name: str, by_grey: dict[int, list[tuple]], path: Path) -> None:
        self.card = ModelCard(name=name, file=str(path), sha256=hashlib.sha256(name.encode()).hexdigest(),
                              format="yolox", classes=COCO_HEAD,
                              input={"width_px": 64, "height_px": 64, "channel_order": "bgr", "scale": 1.0})
        self.path = path
        self.by_grey = by_grey
        self.calls: list[float | None] = []

    def detect(self, image: np.ndarray, min_score: float | None = None) -> Detections:
        self.calls.append(min_score)
        rows = [r for r in self.by_grey.get(int(image[0, 0, 0]), []) if min_score is None or r[4] >= min_score]
        return dets(rows, [COCO_HEAD[int(r[5])] for r in rows])


def _source(root: Path) -> Path:
    """Two 200×100 train images (grey 10 and 20), one labelled bicycle at (0, 0)-(100, 100) in each."""
    for grey in (10, 20):
        (root / "images" / "train").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / "train" / f"g{grey}.png"), np.full((100, 200, 3), grey, np.uint8))
        write_labels(root / "labels" / "train" / f"g{grey}.txt", [0], [[0.25, 0.5, 0.5, 1.0]])
    return write_data_yaml(root, ["bicycle"], ["train"])


@pytest.fixture
def teachers(tmp_path):
    """In image 10: a person both see (kept), a motorcycle on the true bicycle (dropped), a car only A sees
    strongly; in image 20: a car both see but B below its threshold (not kept)."""
    a = ScriptedTeacher("a", {10: [(0, 0, 100, 60, 0.9, 0), (0, 0, 100, 100, 0.8, 3), (120, 10, 190, 90, 0.9, 2)],
                              20: [(120, 10, 190, 90, 0.9, 2)]}, tmp_path / "a.onnx")
    b = ScriptedTeacher("b", {10: [(0, 0, 100, 64, 0.7, 0), (2, 0, 100, 100, 0.9, 3), (120, 10, 190, 90, 0.3, 1)],
                              20: [(120, 10, 190, 90, 0.45, 2)]}, tmp_path / "b.onnx")
    return a, b


def test_the_dataset_gets_the_source_boxes_plus_agreed_distractors(tmp_path, teachers):
    src = _source(tmp_path / "src")
    result = pseudo_label_dataset(src, tmp_path / "out", teachers, min_score=0.5, progress=False)

    ds = load_dataset(result.data_yaml)
    assert ds.class_names == ["bicycle", "person", "motorcycle", "car"]
    by_name = {im.image_path.name: im for im in ds.splits["train"]}
    assert by_name["g10.png"].class_id.tolist() == [0, 1]           # the true bicycle, then the agreed person
    np.testing.assert_allclose(by_name["g10.png"].boxes_cxcywh_norm[1], [0.25, 0.30875, 0.5, 0.6175], atol=1e-6)
    assert by_name["g20.png"].class_id.tolist() == [0]
    assert os.path.samefile(by_name["g10.png"].image_path, tmp_path / "src" / "images" / "train" / "g10.png")

    s = json.loads(result.summary_path.read_text())
    assert s == result.summary
    assert s["classes"]["person"] == {
        "teacher_a_boxes": 1, "teacher_b_boxes": 1, "agreed": 1, "a_confirmed_by_b": 1.0, "b_confirmed_by_a": 1.0,
        "dropped_truth_conflict": 0, "kept": 1, "images_with_kept": 1}
    assert (s["classes"]["motorcycle"]["agreed"], s["classes"]["motorcycle"]["dropped_truth_conflict"],
            s["classes"]["motorcycle"]["kept"]) == (1, 1, 0)
    assert (s["classes"]["car"]["teacher_a_boxes"], s["classes"]["car"]["teacher_b_boxes"],
            s["classes"]["car"]["agreed"]) == (2, 0, 0)
    assert s["agreement"]["a_confirmed_by_b"] == pytest.approx(2 / 4)
    assert s["agreement"]["b_confirmed_by_a"] == pytest.approx(2 / 2)
    assert [t["name"] for t in s["teachers"]] == ["a", "b"]
    assert s["teachers"][0]["sha256"] == hashlib.sha256(b"a").hexdigest()
    assert s["thresholds"]["min_score"] == {"a": 0.5, "b": 0.5} and s["thresholds"]["may_overlap_truth"] == ["person"]
    # the teachers' COCO bicycle (B, 0.3) is below threshold: nothing checked against the truth
    assert s["splits"]["train"]["source_class_check"] == {}
    assert s["other_teacher_classes"] == {"a": {}, "b": {}}
    # the audit trail: image 10 only (image 20 has no agreed box), the dropped motorcycle with its IoU
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "pseudo_boxes.jsonl").read_text().splitlines()]
    assert record["image"] == "g10.png"
    assert [b["class"] for b in record["kept"]] == ["person"]
    assert [b["class"] for b in record["dropped_truth_conflict"]] == ["motorcycle"]
    assert record["dropped_truth_conflict"][0]["iou_with_truth"] == pytest.approx(0.989, abs=1e-3)


@pytest.mark.parametrize(
    "bicycle_xyxy, on_truth, off_truth",
    [
        ((2, 0, 100, 100), 1, 0),      # the teachers' COCO bicycle is the labelled one
        ((120, 10, 190, 90), 0, 1),    # a bicycle nobody labelled (or a teacher error): reported, not written
    ],
)
def test_teacher_boxes_of_the_source_classes_are_checked_against_the_truth(tmp_path, bicycle_xyxy, on_truth,
                                                                           off_truth):
    src = _source(tmp_path / "src")
    rows = {10: [(*bicycle_xyxy, 0.9, 1)]}
    a, b = (ScriptedTeacher(n, rows, tmp_path / f"{n}.onnx") for n in "ab")
    result = pseudo_label_dataset(src, tmp_path / "out", [a, b], progress=False)
    assert result.summary["splits"]["train"]["source_class_check"] == {
        "bicycle": {"agreed_on_truth": on_truth, "agreed_off_truth": off_truth}}
    assert result.summary["other_teacher_classes"] == {"a": {"bicycle": 1}, "b": {"bicycle": 1}}
    assert [im.class_id.tolist() for im in load_dataset(result.data_yaml).splits["train"]] == [[0], [0]]


def test_a_threshold_per_teacher_and_a_sample(tmp_path, teachers):
    src = _source(tmp_path / "src")
    result = pseudo_label_dataset(src, tmp_path / "out", teachers, min_score=(0.5, 0.4), max_images=1, seed=1,
                                  progress=False)
    a, b = teachers
    assert a.calls == [0.5] and b.calls == [0.4]
    assert result.summary["images"] == 1


def test_a_sheet_is_drawn_from_the_new_dataset(tmp_path, teachers):
    src = _source(tmp_path / "src")
    result = pseudo_label_dataset(src, tmp_path / "out", teachers, sheet_png=tmp_path / "sheet.png", sheet_n=2,
                                  progress=False)
    sheet = cv2.imread(str(result.sheet_png))
    assert sheet is not None and sheet.shape == (320, 640, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"teachers_n": 1}, "exactly two teachers"),
        ({"min_score": (0.5, 0.5, 0.5)}, "one per teacher"),
        ({"min_score": 0.0}, "min_score"),
        ({"min_iou": 0.0}, "min_iou"),
        ({"splits": ("val",)}, "no split val"),
        ({"classes": {"truck": "car"}}, "has no class 'truck'"),
        ({"max_images": 0}, "max_images"),
    ],
)
def test_bad_arguments_are_named(tmp_path, teachers, kwargs, message):
    src = _source(tmp_path / "src")
    n = kwargs.pop("teachers_n", 2)
    with pytest.raises(DatasetError, match=message):
        pseudo_label_dataset(src, tmp_path / "out", teachers[:n], progress=False, **kwargs)


def test_one_model_twice_is_not_two_teachers(tmp_path, teachers):
    src = _source(tmp_path / "src")
    twin = ScriptedTeacher("a", {}, tmp_path / "a.onnx")
    with pytest.raises(DatasetError, match="same model file"):
        pseudo_label_dataset(src, tmp_path / "out", [teachers[0], twin], progress=False)


def test_the_output_folder_must_be_new(tmp_path, teachers):
    src = _source(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(DatasetError, match="not empty"):
        pseudo_label_dataset(src, tmp_path / "out", teachers, progress=False)


# --- the command line ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--teacher", "yolox-nano-coco"], "exactly two teachers"),
        (["--teacher", "a", "--teacher", "b", "--class", "truck="], "expected TEACHER_CLASS or TEACHER_CLASS=TARGET"),
        (["--teacher", "a", "--teacher", "b", "--min-score", "0.5", "0.5", "0.5"], "one value for both"),
    ],
)
def test_cli_names_a_bad_option_before_loading_any_model(tmp_path, capsys, extra, message):
    from service.cli import main

    code = main(["dataset", "pseudo-label", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


# --- real teachers on real photos ---------------------------------------------------------------------------

# bicycles-2000 train photos (CC BY 4.0, "Bicycle v3" by Roboflow Universe user thesis-2-eoeid), three different
# source photos, each of one person with a bicycle (two riding, one standing beside it); picked from the full
# pseudo-labelling run, where both teachers saw each person at >= 0.5.
REAL_PHOTOS = (
    "BU9SRP1LS5R9_jpg.rf.04b8174364062f41e72fcc1cde98b9d9.jpg",
    "GB0WDLCPIHFP_jpg.rf.47adc7e7364309bdefb592fe0d785761.jpg",
    "focused_227260952-stock-photo-front-view-mountain-biker-riding_jpg.rf.93b87cd9d6a12c74aa5acd65d8fe817f.jpg",
)


def test_cli_with_the_real_teachers_labels_people_on_real_bicycle_photos(bicycles_dir, tmp_path, capsys):
    """The real yolox-nano and yolov8n-int8 models through `streetwatch dataset pseudo-label`, no fakes."""
    from service.cli import main

    root = tmp_path / "src"
    for name in REAL_PHOTOS:
        photo = bicycles_dir / "train" / "images" / name
        (root / "images" / "train").mkdir(parents=True, exist_ok=True)
        os.link(photo, root / "images" / "train" / name)
        label = bicycles_dir / "train" / "labels" / f"{photo.stem}.txt"
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / label.name).write_text(label.read_text())
    src = write_data_yaml(root, ["bicycle"], ["train"])
    out = tmp_path / "out"

    code = main(["dataset", "pseudo-label", str(src), "--out", str(out), "--teacher", "yolox-nano-coco",
                 "--teacher", "yolov8n-int8-coco", "--class", "person", "--class", "motorcycle=motorcycle",
                 "--class", "car", "--min-score", "0.5", "--sheet", str(tmp_path / "sheet.png"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "3 images" in capsys.readouterr().out

    s = json.loads((out / "pseudo_labels.json").read_text())
    assert s["class_names"] == ["bicycle", "person", "motorcycle", "car"]
    assert s["classes"]["person"]["images_with_kept"] == 3
    assert s["agreement"]["a_confirmed_by_b"] >= 0.6 and s["agreement"]["b_confirmed_by_a"] >= 0.6
    assert {t["name"]: t["sha256"][:8] for t in s["teachers"]} == {"yolox-nano-coco": "e8af0749",
                                                                   "yolov8n-int8-coco": "83de8f0d"}
    source = {im.image_path.name: im for im in load_dataset(src).splits["train"]}
    for item in load_dataset(out / "data.yaml").splits["train"]:
        truth = source[item.image_path.name]
        # the true bicycles come first and unchanged; teacher boxes follow
        assert item.class_id[:len(truth)].tolist() == truth.class_id.tolist()
        np.testing.assert_allclose(item.boxes_cxcywh_norm[:len(truth)], truth.boxes_cxcywh_norm, atol=1e-6)
        assert 1 in item.class_id[len(truth):].tolist()
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None

