"""YOLO dataset tooling: label text, both folder layouts, merge, split, statistics and contact sheets.

Datasets are built in tmp_path from small real images written by OpenCV; bicycles-2000 from ../shared is
read where present.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.yolo import (
    DatasetError,
    LabelFormatError,
    assign_split,
    box_stats,
    contact_sheet,
    dataset_stats,
    format_labels,
    image_size_px,
    label_path_for,
    load_dataset,
    merge_datasets,
    parse_labels,
    read_labels,
    source_stem,
    split_dataset,
    stats_to_markdown,
    write_labels,
)
from detector.annotate import color_for

# --- builders ----------------------------------------------------------------------------------------------


def write_image(path: Path, width_px: int = 64, height_px: int = 48, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height_px, width_px, 3), value, np.uint8))
    return path


def make_dataset(root: Path, names: list[str] | dict[int, str], images: dict[str, dict[str, str | None]],
                 layout: str = "images/split", size_px: tuple[int, int] = (64, 48), extra_yaml: dict | None = None
                 ) -> Path:
    """A dataset on disk: `images` maps split -> {file name: label text, or None for no label file}.

    `layout` is "images/split" (ultralytics: images/train, labels/train) or "split/images" (Roboflow).
    """
    data: dict = {"path": ".", "names": names, "nc": len(names)}
    for split, files in images.items():
        img_dir = root / "images" / split if layout == "images/split" else root / split / "images"
        data[split] = str(img_dir.relative_to(root))
        img_dir.mkdir(parents=True, exist_ok=True)
        for name, label in files.items():
            image = write_image(img_dir / name, *size_px)
            if label is not None:
                lbl = label_path_for(image)
                lbl.parent.mkdir(parents=True, exist_ok=True)
                lbl.write_text(label)
    data.update(extra_yaml or {})
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root / "data.yaml"


# --- label text --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, class_ids, boxes",
    [
        ("", [], np.zeros((0, 4))),
        ("0 0.5 0.5 0.2 0.4\n", [0], [[0.5, 0.5, 0.2, 0.4]]),
        ("\ufeff1 0.1 0.2 0.3 0.4\n\n  \n2 0.5 0.5 1 1", [1, 2], [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 1, 1]]),
        ("3 0.2 0.2 0.6 0.2 0.4 0.8\n", [3], [[0.4, 0.5, 0.4, 0.6]]),  # a polygon becomes its bounding box
        ("0.0 1.005 0.5 0.1 0.1\n", [0], [[1.005, 0.5, 0.1, 0.1]]),  # ultralytics' tolerance of 0.01
    ],
)
def test_parse_labels_table(text, class_ids, boxes):
    cls, cxcywh = parse_labels(text)
    assert cls.tolist() == class_ids
    np.testing.assert_allclose(cxcywh, np.asarray(boxes, np.float64).reshape(-1, 4))


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 0.5 0.5 0.2\n", r"x\.txt:1: expected 5 values"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 0.9\n", r"x\.txt:2: expected 5 values"),  # a prediction file
        ("0 0.5 0.5 0.2 0.2\n\nbike 0.5 0.5 0.2 0.2\n", r"x\.txt:3: not numbers"),
        ("-1 0.5 0.5 0.2 0.2\n", r"x\.txt:1: class id must be a non-negative integer"),
        ("1.5 0.5 0.5 0.2 0.2\n", r"x\.txt:1: class id must be a non-negative integer"),
        ("2 0.5 0.5 0.2 0.2\n", r"x\.txt:1: class id 2 out of range: the dataset has 2 classes"),
        ("0 50 40 20 10\n", r"x\.txt:1: coordinates must be normalised"),  # pixels instead of fractions
        ("0 0.5 0.5 -0.2 0.2\n", r"x\.txt:1: negative width or height"),
        ("0 nan 0.5 0.2 0.2\n", r"x\.txt:1: NaN or infinite"),
        ("0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.6 0.2 0.4 0.8\n", r"x\.txt:2: file mixes box rows and polygon rows"),
    ],
)
def test_parse_labels_names_file_and_line_of_the_error(text, message):
    with pytest.raises(LabelFormatError, match=message):
        parse_labels(text, "x.txt", num_classes=2)


def test_format_labels_writes_six_decimals_and_nothing_for_no_boxes():
    assert format_labels([0, 12], [[0.5, 1 / 3, 0.1234567, 1.0], [0, 0, 0, 0]]) == (
        "0 0.500000 0.333333 0.123457 1.000000\n12 0.000000 0.000000 0.000000 0.000000\n")
    assert format_labels([], np.zeros((0, 4))) == ""
    with pytest.raises(ValueError, match="2 class ids for 1 boxes"):
        format_labels([0, 1], [[0.5, 0.5, 0.1, 0.1]])


def test_write_then_read_labels_round_trips(tmp_path):
    path = write_labels(tmp_path / "deep" / "a.txt", np.array([2, 0]), np.array([[0.25, 0.5, 0.1, 0.2], [1, 1, 0, 0]]))
    cls, boxes = read_labels(path)
    assert cls.tolist() == [2, 0] and boxes.tolist() == [[0.25, 0.5, 0.1, 0.2], [1, 1, 0, 0]]
    with pytest.raises(DatasetError, match="no such label file"):
        read_labels(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    "image, label",
    [
        ("/d/images/train/a.jpg", "/d/labels/train/a.txt"),
        ("/d/train/images/a.jpg", "/d/train/labels/a.txt"),
        ("/images/d/images/val/a.b_jpg.rf.1.png", "/images/d/labels/val/a.b_jpg.rf.1.txt"),  # last images/ only
        ("/d/images/train/sub/a.jpeg", "/d/labels/train/sub/a.txt"),
        ("/d/flat/a.jpg", "/d/flat/a.txt"),  # no images/ folder: the label sits beside the image
    ],
)
def test_label_path_for_follows_ultralytics_rule(image, label):
    assert label_path_for(Path(image)) == Path(label)


# --- loading -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["images/split", "split/images"])
@pytest.mark.parametrize("names", [["bicycle", "stall"], {0: "bicycle", 1: "stall"}, {"1": "stall", "0": "bicycle"}])
def test_load_dataset_reads_both_layouts_and_both_name_forms(tmp_path, layout, names):
    yaml_path = make_dataset(tmp_path, names, {
        "train": {"a.jpg": "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n", "b.png": ""},
        "val": {"c.jpg": None},
    }, layout=layout)
    ds = load_dataset(tmp_path)  # the folder works as well as the yaml
    assert ds.data_yaml == yaml_path and ds.root == tmp_path.resolve()
    assert ds.class_names == ["bicycle", "stall"]
    assert sorted(ds.splits) == ["train", "val"]
    a, b = ds.splits["train"]
    assert (a.image_path.name, a.class_id.tolist(), len(b), b.has_label_file) == ("a.jpg", [1, 0], 0, True)
    np.testing.assert_allclose(a.boxes_cxcywh_norm, [[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]])
    (c,) = ds.splits["val"]
    assert not c.has_label_file and len(c) == 0


def test_load_dataset_reads_a_split_given_as_a_list_file(tmp_path):
    make_dataset(tmp_path, ["bicycle"], {"train": {"a.jpg": "0 0.5 0.5 0.2 0.2\n", "b.jpg": ""}})
    (tmp_path / "val.txt").write_text("./images/train/b.jpg\n")
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({**data, "val": "val.txt"}))
    ds = load_dataset(tmp_path / "data.yaml")
    assert [im.image_path.name for im in ds.splits["val"]] == ["b.jpg"]


def test_load_dataset_without_path_uses_the_yaml_folder(tmp_path):
    make_dataset(tmp_path, ["bicycle"], {"val": {"a.jpg": ""}})
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    del data["path"]
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(data))
    assert [im.image_path.name for im in load_dataset(tmp_path).splits["val"]] == ["a.jpg"]


@pytest.mark.parametrize(
    "extra, files, message",
    [
        ({"nc": 3}, {"a.jpg": ""}, "'nc: 3' disagrees with 1 names"),
        ({"names": {0: "a", 2: "b"}, "nc": 2}, {"a.jpg": ""}, r"ids must run 0\.\.1"),
        ({"names": None, "nc": None}, {"a.jpg": ""}, "needs 'names'"),
        ({"val": "images/nowhere"}, {"a.jpg": ""}, "split 'val' points at .*nowhere, which does not exist"),
        ({}, {"a.jpg": "1 0.5 0.5 0.1 0.1\n"}, r"a\.txt:1: class id 1 out of range"),
    ],
)
def test_load_dataset_errors_name_the_problem(tmp_path, extra, files, message):
    make_dataset(tmp_path, ["bicycle"], {"train": files}, extra_yaml=extra)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / "data.yaml")


def test_load_dataset_refuses_a_folder_without_yaml(tmp_path):
    with pytest.raises(DatasetError, match="holds no data.yaml"):
        load_dataset(tmp_path)


# --- merge -------------------------------------------------------------------------------------------------


@pytest.fixture
def two_sources(tmp_path):
    bikes = make_dataset(tmp_path / "bikes", ["bicycle"], {
        "train": {"a.jpg": "0 0.5 0.5 0.2 0.2\n"},
        "val": {"b.jpg": "0 0.25 0.25 0.1 0.1\n"},
        "test": {"t.jpg": "0 0.5 0.5 0.5 0.5\n"},
    }, layout="split/images")
    street = make_dataset(tmp_path / "street", ["person", "bike", "stall"], {
        "train": {"a.jpg": "0 0.1 0.1 0.1 0.1\n1 0.2 0.2 0.2 0.2\n2 0.3 0.3 0.3 0.3\n", "e.jpg": "0 0.5 0.5 0.1 0.1\n"},
    })
    return bikes, street


def test_merge_remaps_classes_drops_unmapped_and_keeps_splits(tmp_path, two_sources):
    bikes, street = two_sources
    out = merge_datasets([(bikes, None), (street, {"bike": "bicycle", "person": None})], tmp_path / "merged",
                         ["stall", "bicycle"])
    data = yaml.safe_load(out.read_text())
    assert data == {"path": str((tmp_path / "merged").resolve()), "train": "images/train", "val": "images/val",
                    "test": "images/test", "nc": 2, "names": ["stall", "bicycle"]}
    labels = tmp_path / "merged" / "labels"
    assert sorted(p.relative_to(labels).as_posix() for p in labels.rglob("*.txt")) == [
        "test/00-bikes__t.txt", "train/00-bikes__a.txt", "train/01-street__a.txt", "train/01-street__e.txt",
        "val/00-bikes__b.txt"]
    assert (labels / "train" / "00-bikes__a.txt").read_text() == "1 0.500000 0.500000 0.200000 0.200000\n"
    # person dropped (mapped to None), bike -> bicycle (1), stall keeps its name -> 0
    assert (labels / "train" / "01-street__a.txt").read_text() == (
        "1 0.200000 0.200000 0.200000 0.200000\n0 0.300000 0.300000 0.300000 0.300000\n")
    assert (labels / "train" / "01-street__e.txt").read_text() == ""  # kept as background
    merged = load_dataset(out)
    assert {s: len(v) for s, v in merged.splits.items()} == {"train": 3, "val": 1, "test": 1}
    manifest = json.loads((tmp_path / "merged" / "merge.json").read_text())
    assert [(m["prefix"], m["images"]) for m in manifest["sources"]] == [
        ("00-bikes__", {"train": 1, "val": 1, "test": 1}), ("01-street__", {"train": 2})]
    street_source = manifest["sources"][1]
    assert street_source["boxes_kept"] == {"person": 0, "bike": 1, "stall": 1}
    assert street_source["boxes_dropped"] == {"person": 2, "bike": 0, "stall": 0}


def test_merge_checks_every_source_before_writing(tmp_path, two_sources):
    bikes, street = two_sources
    with pytest.raises(DatasetError, match="does not have"):
        merge_datasets([(bikes, None), (street, {"cyclist": None})], tmp_path / "m", ["bicycle"])
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("link", [True, False])
def test_merge_links_or_copies_images(tmp_path, two_sources, link):
    bikes, _ = two_sources
    merge_datasets([(bikes, None)], tmp_path / "m", ["bicycle"], link=link)
    src = bikes.parent / "train" / "images" / "a.jpg"
    dst = tmp_path / "m" / "images" / "train" / "00-bikes__a.jpg"
    assert dst.read_bytes() == src.read_bytes()
    same_file = os.path.samefile(src, dst)
    assert same_file is link


@pytest.mark.parametrize(
    "sources_of, out_exists, class_names, message",
    [
        (lambda b, s: [(s, {"bycicle": "bicycle"})], False, ["bicycle"], r"does not have: \['bycicle'\]"),
        (lambda b, s: [(b, None)], True, ["bicycle"], "not empty"),
        (lambda b, s: [(b, None)], False, ["bicycle", "bicycle"], "distinct names"),
        (lambda b, s: [(b, None), (b.parent, None)], False, ["bicycle"], None),  # same source twice: no collision
    ],
)
def test_merge_refuses_bad_requests(tmp_path, two_sources, sources_of, out_exists, class_names, message):
    out = tmp_path / "m"
    if out_exists:
        write_image(out / "something.jpg")
    sources = sources_of(*two_sources)
    if message is None:
        assert merge_datasets(sources, out, class_names).is_file()
        return
    with pytest.raises(DatasetError, match=message):
        merge_datasets(sources, out, class_names)


# --- split -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem, source",
    [
        ("street_12_jpg.rf.0123456789abcdef0123456789abcdef", "street_12"),
        ("street_12.rf.0123456789ABCDEF0123456789abcdef", "street_12"),
        ("street_12_png.rf.0123", "street_12_png.rf.0123"),  # not a Roboflow hash: kept
        ("plain", "plain"),
    ],
)
def test_source_stem_table(stem, source):
    assert source_stem(stem) == source


def test_assign_split_is_deterministic_seeded_and_proportional():
    stems = [f"img_{i:05d}" for i in range(4000)]
    fractions = {"train": 0.7, "val": 0.2, "test": 0.1}
    first = [assign_split(s, fractions) for s in stems]
    assert first == [assign_split(s, fractions) for s in stems]
    shares = {k: first.count(k) / len(stems) for k in fractions}
    assert shares == pytest.approx(fractions, abs=0.025)
    reseeded = [assign_split(s, fractions, seed=1) for s in stems]
    assert 0.3 < np.mean([a != b for a, b in zip(first, reseeded)]) < 0.6


def test_assign_split_keeps_roboflow_augmentations_of_one_photo_together():
    copies = [f"photo_{i}_jpg.rf.{h * 32}" for i in range(200) for h in "abc"]
    splits = [assign_split(s, {"train": 0.5, "val": 0.5}) for s in copies]
    assert all(len(set(splits[i:i + 3])) == 1 for i in range(0, len(splits), 3))
    assert set(splits) == {"train", "val"}


@pytest.mark.parametrize(
    "fractions", [{"train": 0.8, "val": 0.3}, {"train": 1.2, "val": -0.2}, {}, {"train": 0.5, "holdout": 0.5}])
def test_assign_split_rejects_bad_fractions(fractions):
    with pytest.raises(DatasetError, match="split"):
        assign_split("x", fractions)


def _raw_folder(root: Path, n: int) -> Path:
    for i in range(n):
        write_image(root / "images" / f"img_{i:03d}.jpg", 32, 32)
        write_labels(root / "labels" / f"img_{i:03d}.txt", [i % 3], [[0.5, 0.5, 0.25, 0.25]])
    return root / "images"


def test_split_dataset_is_stable_when_images_are_added(tmp_path):
    images = _raw_folder(tmp_path / "raw", 40)
    first = split_dataset(images, tmp_path / "s1", {"train": 0.75, "val": 0.25})
    before = {p.name: p.parent.name for p in (tmp_path / "s1" / "images").rglob("*.jpg")}
    _raw_folder(tmp_path / "raw", 60)  # 20 more images
    split_dataset(images, tmp_path / "s2", {"train": 0.75, "val": 0.25})
    after = {p.name: p.parent.name for p in (tmp_path / "s2" / "images").rglob("*.jpg")}
    assert len(before) == 40 and len(after) == 60
    assert {k: after[k] for k in before} == before
    ds = load_dataset(first)
    assert ds.class_names == ["class_0", "class_1", "class_2"]  # from the largest class id found
    assert sum(len(v) for v in ds.splits.values()) == 40 and set(ds.splits) == {"train", "val"}
    item = ds.splits["train"][0]
    assert item.class_id.tolist() == [int(item.image_path.stem[-3:]) % 3]


def test_split_dataset_uses_given_names_and_checks_ids_against_them(tmp_path):
    images = _raw_folder(tmp_path / "raw", 6)
    data = yaml.safe_load(split_dataset(images, tmp_path / "ok", class_names=["a", "b", "c"]).read_text())
    assert data["names"] == ["a", "b", "c"]
    with pytest.raises(LabelFormatError, match=r"img_002\.txt:1: class id 2 out of range"):
        split_dataset(images, tmp_path / "bad", class_names=["a", "b"])


# --- image sizes and statistics ----------------------------------------------------------------------------


def _jpeg_with_orientation(path: Path, width_px: int, height_px: int, orientation: int) -> Path:
    """A JPEG whose EXIF says it must be rotated: decoders swap its width and height for 5..8."""
    data = cv2.imencode(".jpg", np.zeros((height_px, width_px, 3), np.uint8))[1].tobytes()
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    segment = b"Exif\x00\x00" + tiff + b"\x00\x00\x00\x00"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[2:])
    return path


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda p: write_image(p / "a.jpg", 70, 30), (70, 30)),
        (lambda p: write_image(p / "a.png", 33, 17), (33, 17)),
        (lambda p: write_image(p / "a.bmp", 12, 9), (12, 9)),  # no header parser: decoded
        (lambda p: _jpeg_with_orientation(p / "r.jpg", 50, 30, 6), (30, 50)),
        (lambda p: _jpeg_with_orientation(p / "u.jpg", 50, 30, 1), (50, 30)),
    ],
)
def test_image_size_px_agrees_with_opencv(tmp_path, make, size):
    path = make(tmp_path)
    h, w = cv2.imread(str(path)).shape[:2]
    assert image_size_px(path) == size == (w, h)


def test_box_stats_are_in_pixels():
    s = box_stats(np.array([10.0, 20.0, 40.0, 100.0]), np.array([10.0, 40.0, 40.0, 50.0]))
    assert s["boxes"] == 4
    assert s["small_share"] == 0.5  # sqrt(w*h): 10, 28.3 < 32; 40, 70.7 >= 32
    assert s["width_px"]["p50"] == 30.0
    assert s["aspect_w_over_h"]["p50"] == pytest.approx(1.0)
    assert box_stats(np.zeros(0), np.zeros(0))["width_px"] is None


def test_dataset_stats_counts_and_measures_at_real_size(tmp_path):
    make_dataset(tmp_path, ["bicycle", "stall"], {
        "train": {"a.jpg": "0 0.5 0.5 0.1 0.2\n1 0.5 0.5 0.5 0.5\n", "b.jpg": "", "c.jpg": None},
        "val": {"d.jpg": "0 0.5 0.5 0.5 1.0\n"},
    }, size_px=(200, 100))
    stats = dataset_stats(tmp_path / "data.yaml")
    train = stats["splits"]["train"]
    assert (train["images"], train["empty_images"], train["missing_label_files"], train["boxes"]) == (3, 2, 1, 2)
    assert train["boxes_per_class"] == {"bicycle": 1, "stall": 1}
    bike = train["per_class"]["bicycle"]
    assert bike["images"] == 1 and bike["width_px"]["p50"] == pytest.approx(20.0)  # 0.1 of 200 px
    assert bike["height_px"]["p50"] == pytest.approx(20.0) and bike["small_share"] == 1.0
    assert train["per_class"]["stall"]["aspect_w_over_h"]["p50"] == pytest.approx(2.0)  # 100 x 50 px
    assert stats["splits"]["val"]["all_classes"]["width_px"]["p50"] == pytest.approx(100.0)
    assert train["source_photos_shared_with"] == {"val": 0}
    md = stats_to_markdown(stats)
    assert "| train | 3 | 2 | 1 | 2 | 1 | 1 |" in md and "present in two splits" not in md
    assert "| train | bicycle | 1 | 20 / 20 / 20 | 20 / 20 / 20 | 1.00 / 1.00 / 1.00 | 100.0% |" in md


def test_dataset_stats_reports_augmented_copies_shared_between_splits(tmp_path):
    h1, h2 = "a" * 32, "b" * 32
    make_dataset(tmp_path, ["bicycle"], {
        "train": {f"p1_jpg.rf.{h1}.jpg": "", f"p2_jpg.rf.{h1}.jpg": ""},
        "val": {f"p1_jpg.rf.{h2}.jpg": "", "p3.jpg": ""},
    })
    stats = dataset_stats(tmp_path)
    assert stats["splits"]["val"]["source_photos"] == 2
    assert stats["splits"]["val"]["source_photos_shared_with"] == {"train": 1}
    assert "present in two splits: train/val: 1." in stats_to_markdown(stats)


# --- contact sheet -----------------------------------------------------------------------------------------


@pytest.fixture
def sheet_dataset(tmp_path):
    files = {f"{i}.jpg": f"{i % 2} 0.5 0.5 0.6 0.6\n" for i in range(5)}
    return make_dataset(tmp_path / "ds", ["bicycle", "stall"], {"val": files}, size_px=(80, 40))


@pytest.mark.parametrize(
    "n_images, cell_px, shape",
    [
        (4, 100, (200, 200)),  # 2 x 2
        (5, 64, (128, 192)),  # 3 columns, 2 rows
        (16, 64, (128, 192)),  # 16 asked, 5 exist: all 5, as above
    ],
)
def test_contact_sheet_grid_size(tmp_path, sheet_dataset, n_images, cell_px, shape):
    out = contact_sheet(sheet_dataset, "val", tmp_path / "sheets" / "s.png", n_images=n_images, cell_px=cell_px)
    assert cv2.imread(str(out)).shape == (*shape, 3)


def test_contact_sheet_draws_boxes_in_class_colours_and_is_reproducible(tmp_path, sheet_dataset):
    a = contact_sheet(sheet_dataset.parent, "val", tmp_path / "a.png", n_images=4, seed=3)
    b = contact_sheet(sheet_dataset, "val", tmp_path / "b.png", n_images=4, seed=3)
    assert a.read_bytes() == b.read_bytes()
    sheet = cv2.imread(str(a)).reshape(-1, 3)
    for class_id in (0, 1):
        assert (sheet == color_for(class_id)).all(1).sum() > 50, f"no box drawn in class {class_id}'s colour"


@pytest.mark.parametrize("split, kwargs, message", [
    ("train", {}, r"no split 'train'; it has \['val'\]"),
    ("val", {"n_images": 0}, "n_images >= 1"),
])
def test_contact_sheet_errors(tmp_path, sheet_dataset, split, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        contact_sheet(sheet_dataset, split, tmp_path / "x.png", **kwargs)


# --- the real dataset in ../shared -------------------------------------------------------------------------


def test_bicycles_2000_loads_with_its_published_counts(bicycles_dir):
    ds = load_dataset(bicycles_dir / "data.yaml")
    assert ds.class_names == ["bicycle"]
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 1406, "val": 401, "test": 201}
    assert all(im.has_label_file for v in ds.splits.values() for im in v)
    assert sum(len(im) for im in ds.splits["val"]) == 452  # the box count the runtime's recall test uses


def test_bicycles_2000_stats_and_contact_sheet(bicycles_dir, tmp_path):
    stats = dataset_stats(bicycles_dir)
    val = stats["splits"]["val"]["all_classes"]
    assert val["boxes"] == 452
    # Measured 2026-11: Roboflow augmented before splitting, so 193 of val's 248 source photos also appear
    # (augmented) in train. A regression to zero would mean source_stem stopped grouping the copies.
    assert stats["splits"]["val"]["source_photos"] == 248
    assert stats["splits"]["val"]["source_photos_shared_with"]["train"] == 193
    # README: bikes mostly large in frame at 416x416 -> median box width well above 32 px.
    assert 60 < val["width_px"]["p50"] < 416
    assert "| val | 401 |" in stats_to_markdown(stats)
    out = contact_sheet(bicycles_dir, "val", tmp_path / "val.png", n_images=4, cell_px=160)
    assert cv2.imread(str(out)).shape == (320, 320, 3)
