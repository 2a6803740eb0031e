"""COCO and Pascal VOC to YOLO, on tiny annotation files and real small images built in tmp_path.

Expected label lines are worked out by hand: cx = (x + w / 2) / W, cy = (y + h / 2) / H, w / W, h / H.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.convert import coco_bbox_to_cxcywh, coco_to_yolo, parse_voc_xml, voc_bndbox_to_cxcywh, voc_to_yolo
from datasets.yolo import DatasetError, load_dataset

# --- builders ----------------------------------------------------------------------------------------------


def write_image(path: Path, width_px: int, height_px: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height_px, width_px, 3), 80, np.uint8))
    return path


def coco_file(tmp_path: Path, images: list[dict], annotations: list[dict], categories: list[dict] | None = None,
              name: str = "ann.json") -> Path:
    """A COCO json; every listed image is also written to tmp_path/imgs at its stated size."""
    for im in images:
        write_image(tmp_path / "imgs" / im["file_name"], im.get("width") or 200, im.get("height") or 100)
    for k, ann in enumerate(annotations):
        ann.setdefault("id", k + 1)
        ann.setdefault("iscrowd", 0)
    cats = categories or [{"id": 2, "name": "bicycle"}, {"id": 4, "name": "motorcycle"}, {"id": 1, "name": "person"}]
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return path


def voc_xml(filename: str | None, objects: list[tuple], size: tuple[int, int] | None = (200, 100)) -> str:
    """A VOC annotation: objects are (name, xmin, ymin, xmax, ymax[, difficult])."""
    parts = ["<annotation>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, x1, y1, x2, y2, *rest in objects:
        difficult = f"<difficult>{rest[0]}</difficult>" if rest else ""
        parts.append(f"<object><name>{name}</name>{difficult}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def labels_of(out_dir: Path, split: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out_dir / "labels" / split).glob("*.txt"))}


# --- pure box arithmetic -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bbox, size, cxcywh, valid",
    [
        ([10, 20, 30, 40], (100, 200), [0.25, 0.2, 0.3, 0.2], True),
        ([0, 0, 100, 200], (100, 200), [0.5, 0.5, 1.0, 1.0], True),
        ([-10, 190, 30, 20], (100, 200), [0.1, 0.975, 0.2, 0.05], True),  # clipped to 0..20 x 190..200
        ([100, 50, 10, 10], (100, 200), [1.0, 0.275, 0.0, 0.05], False),  # entirely outside: no area left
        ([5, 5, 0, 10], (100, 200), [0.05, 0.05, 0.0, 0.05], False),  # zero width
    ],
)
def test_coco_bbox_to_cxcywh_table(bbox, size, cxcywh, valid):
    out, ok = coco_bbox_to_cxcywh(np.array([bbox]), *size)
    np.testing.assert_allclose(out[0], cxcywh, atol=1e-12)
    assert ok.tolist() == [valid]


@pytest.mark.parametrize(
    "bndbox, size, cxcywh",
    [
        # 1-based VOC pixels: (11..41, 21..61) -> 0-based (10..40, 20..60): centre (25, 40), size 30 x 40
        ([11, 21, 41, 61], (100, 200), [0.25, 0.2, 0.3, 0.2]),
        ([1, 1, 101, 201], (100, 200), [0.5, 0.5, 1.0, 1.0]),
        ([1, 1, 120, 250], (100, 200), [0.5, 0.5, 1.0, 1.0]),  # overshoot clipped
    ],
)
def test_voc_bndbox_to_cxcywh_table(bndbox, size, cxcywh):
    out, ok = voc_bndbox_to_cxcywh(np.array([bndbox]), *size)
    np.testing.assert_allclose(out[0], cxcywh, atol=1e-12)
    assert ok.tolist() == [True]


# --- COCO --------------------------------------------------------------------------------------------------


@pytest.fixture
def coco(tmp_path):
    images = [
        {"id": 10, "file_name": "a.jpg", "width": 200, "height": 100},
        {"id": 11, "file_name": "b.png", "width": 200, "height": 100},
        {"id": 12, "file_name": "empty.jpg", "width": 200, "height": 100},
    ]
    annotations = [
        {"image_id": 10, "category_id": 2, "bbox": [20, 10, 40, 30]},  # bicycle -> 0.2 0.25 0.2 0.3
        {"image_id": 10, "category_id": 1, "bbox": [0, 0, 200, 100]},  # person -> 0.5 0.5 1 1
        {"image_id": 10, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # crowd: skipped
        {"image_id": 11, "category_id": 4, "bbox": [150, 50, 100, 100]},  # clipped to 150..200 x 50..100
        {"image_id": 11, "category_id": 2, "bbox": [10, 10, 0, 5]},  # zero width: dropped
    ]
    return coco_file(tmp_path, images, annotations)


def test_coco_to_yolo_writes_exact_labels_in_category_id_order(tmp_path, coco):
    out = tmp_path / "out"
    data_yaml = coco_to_yolo(coco, tmp_path / "imgs", out, split="val")
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == ["person", "bicycle", "motorcycle"]  # category ids 1, 2, 4
    assert data["val"] == "images/val" and "train" not in data
    assert labels_of(out, "val") == {
        "a.txt": "1 0.200000 0.250000 0.200000 0.300000\n0 0.500000 0.500000 1.000000 1.000000\n",
        "b.txt": "2 0.875000 0.750000 0.250000 0.500000\n",
        "empty.txt": "",
    }
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["a.jpg", "b.png", "empty.jpg"]
    ds = load_dataset(data_yaml)
    assert [len(im) for im in ds.splits["val"]] == [2, 1, 0]


def test_coco_to_yolo_class_map_merges_renames_and_drops(tmp_path, coco):
    out = tmp_path / "out"
    coco_to_yolo(coco, tmp_path / "imgs", out, class_map={"motorcycle": "two_wheeler", "bicycle": "two_wheeler",
                                                          "person": None})
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == ["two_wheeler"]
    assert labels_of(out, "train") == {
        "a.txt": "0 0.200000 0.250000 0.200000 0.300000\n",
        "b.txt": "0 0.875000 0.750000 0.250000 0.500000\n",
        "empty.txt": "",
    }


def test_coco_to_yolo_fills_a_dataset_split_by_split(tmp_path, coco):
    out = tmp_path / "out"
    coco_to_yolo(coco, tmp_path / "imgs", out, split="train")
    val = coco_file(tmp_path, [{"id": 1, "file_name": "v.jpg", "width": 200, "height": 100}],
                    [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 20, 10]}], name="val.json")
    data = yaml.safe_load(coco_to_yolo(val, tmp_path / "imgs", out, split="val").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert labels_of(out, "val") == {"v.txt": "2 0.050000 0.050000 0.100000 0.100000\n"}
    other = coco_file(tmp_path, [{"id": 1, "file_name": "v.jpg", "width": 200, "height": 100}], [],
                      categories=[{"id": 1, "name": "stall"}], name="other.json")
    with pytest.raises(DatasetError, match=r"has classes \['person', 'bicycle', 'motorcycle'\]"):
        coco_to_yolo(other, tmp_path / "imgs", out, split="test")
    with pytest.raises(DatasetError, match="already holds files"):
        coco_to_yolo(coco, tmp_path / "imgs", out, split="train")


def test_coco_to_yolo_reads_the_size_from_the_image_when_the_json_has_none(tmp_path):
    ann = coco_file(tmp_path, [{"id": 1, "file_name": "a.jpg"}],  # written at 200 x 100
                    [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 100, 50]}])
    coco_to_yolo(ann, tmp_path / "imgs", tmp_path / "out")
    assert labels_of(tmp_path / "out", "train") == {"a.txt": "1 0.250000 0.250000 0.500000 0.500000\n"}


@pytest.mark.parametrize(
    "images, annotations, class_map, message",
    [
        ([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 2, "category_id": 2, "bbox": [0, 0, 1, 1]}], None,
         r"annotations\[0\] refers to image id 2"),
        ([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}], None,
         r"annotations\[0\] has unknown category id 9"),
        ([{"id": 1, "file_name": "a.jpg"}], [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1]}], None,
         r"annotations\[0\] has no \[x, y, w, h\] bbox"),
        ([{"id": 1, "file_name": "a.jpg"}], [], {"bike": "bicycle"}, r"class_map names categories .*\['bike'\]"),
    ],
)
def test_coco_to_yolo_errors_name_the_problem(tmp_path, images, annotations, class_map, message):
    ann = coco_file(tmp_path, images, annotations)
    with pytest.raises(DatasetError, match=message):
        coco_to_yolo(ann, tmp_path / "imgs", tmp_path / "out", class_map=class_map)


def test_coco_to_yolo_missing_image_and_bad_json(tmp_path):
    ann = coco_file(tmp_path, [{"id": 1, "file_name": "a.jpg"}], [])
    with pytest.raises(DatasetError, match="image 'a.jpg' not found in .*elsewhere"):
        coco_to_yolo(ann, tmp_path / "elsewhere", tmp_path / "out")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json: not valid JSON"):
        coco_to_yolo(tmp_path / "bad.json", tmp_path / "imgs", tmp_path / "out")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DatasetError, match="not a COCO detection file"):
        coco_to_yolo(tmp_path / "list.json", tmp_path / "imgs", tmp_path / "out")


# --- VOC ---------------------------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path):
    xml_dir, img_dir = tmp_path / "Annotations", tmp_path / "JPEGImages"
    xml_dir.mkdir()
    write_image(img_dir / "a.jpg", 200, 100)
    write_image(img_dir / "b.png", 200, 100)
    (xml_dir / "a.xml").write_text(voc_xml("a.jpg", [
        ("bicycle", 21, 11, 61, 41),  # 0-based 20..60 x 10..40 -> 0.2 0.25 0.2 0.3
        ("person", 1, 1, 201, 101, 1),  # difficult
        ("dog", 1, 1, 11, 11),
    ]))
    # <filename> without its suffix and no <size>: the image is found by stem and measured.
    (xml_dir / "b.xml").write_text(voc_xml("b", [("person", 101, 51, 201, 101, 0)], size=None))
    return xml_dir, img_dir


def test_voc_to_yolo_skips_difficult_and_sorts_names(tmp_path, voc):
    out = tmp_path / "out"
    data = yaml.safe_load(voc_to_yolo(*voc, out).read_text())
    assert data["names"] == ["bicycle", "dog", "person"]
    assert labels_of(out, "train") == {
        "a.txt": "0 0.200000 0.250000 0.200000 0.300000\n1 0.025000 0.050000 0.050000 0.100000\n",
        "b.txt": "2 0.750000 0.750000 0.500000 0.500000\n",
    }
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["a.jpg", "b.png"]


def test_voc_to_yolo_with_class_names_and_difficult_objects(tmp_path, voc):
    out = tmp_path / "out"
    voc_to_yolo(*voc, out, split="val", class_names=["person", "bicycle"], include_difficult=True)
    assert labels_of(out, "val") == {
        "a.txt": "1 0.200000 0.250000 0.200000 0.300000\n0 0.500000 0.500000 1.000000 1.000000\n",
        "b.txt": "0 0.750000 0.750000 0.500000 0.500000\n",
    }
    assert len(load_dataset(out).splits["val"]) == 2


@pytest.mark.parametrize(
    "xml, message",
    [
        ("<annotation><object>", r"bad\.xml: not valid XML"),
        (voc_xml("a.jpg", [("bicycle", 1, 1, "x", 5)]), r"bad\.xml: <object> #1 \(bicycle\) <xmax> is not a number"),
        ("<annotation><filename>a.jpg</filename><object><name>bicycle</name></object></annotation>",
         r"bad\.xml: <object> #1 \(bicycle\) has no <bndbox>"),
        (voc_xml("zzz.jpg", [("bicycle", 1, 1, 5, 5)]), r"bad\.xml: image 'zzz.jpg' not found"),
    ],
)
def test_voc_to_yolo_errors_name_the_file(tmp_path, voc, xml, message):
    xml_dir, img_dir = voc
    (xml_dir / "bad.xml").write_text(xml)
    with pytest.raises(DatasetError, match=message):
        voc_to_yolo(xml_dir, img_dir, tmp_path / "out")


def test_parse_voc_xml_reads_flags_and_sizes():
    a = parse_voc_xml(voc_xml("a.jpg", [("bicycle", 1, 2, 3, 4, 1), ("person", 5, 6, 7, 8)], size=(0, 0)))
    assert (a.filename, a.width_px, a.height_px) == ("a.jpg", None, None)  # size 0 means unknown
    assert a.names == ["bicycle", "person"] and a.difficult.tolist() == [True, False]
    assert a.bndbox_xyxy.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
