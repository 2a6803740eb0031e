"""Synthetic scene generator: determinism, label validity, labels on visible objects, real assets, YOLO output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datasets.synth import (AERIAL_CLASSES, STREET_CLASSES, AerialView, AerialViewSampling, BikeCropBank,
                            generate_dataset, load_street_assets, render_aerial_frame_4k, render_aerial_scene,
                            render_street_scene)
from datasets.synth.bike_bank import cut_out_bicycle
from datasets.synth.classes import BICYCLE, CAR, PERSON
from datasets.synth.compositor import Compositor
from datasets.synth.dataset import split_of
from datasets.synth.sample import yolo_label_text
from datasets.synth.sketch import Layer

SMALL_STREET = (640, 360)
SMALL_AERIAL = (384, 384)


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every image and label file under a dataset folder, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".txt")}


@pytest.fixture(scope="module")
def street_pair(tmp_path_factory):
    """The same small procedural street set generated twice, and once with another seed."""
    root = tmp_path_factory.mktemp("synth")
    kwargs = dict(n_images=4, val_fraction=0.3, image_size_px=SMALL_STREET, progress=False, real_assets=False)
    a = generate_dataset("street", root / "a", seed=11, **kwargs)
    b = generate_dataset("street", root / "b", seed=11, **kwargs)
    c = generate_dataset("street", root / "c", seed=12, **kwargs)
    return a.parent, b.parent, c.parent


def test_same_seed_gives_identical_image_and_label_bytes(street_pair):
    a, b, _ = street_pair
    digest_a, digest_b = _tree_digest(a), _tree_digest(b)
    assert len([k for k in digest_a if k.endswith(".jpg")]) == 4
    assert digest_a == digest_b


def test_different_seed_gives_different_images(street_pair):
    a, _, c = street_pair
    images_a = {hashlib.sha256(p.read_bytes()).hexdigest() for p in a.rglob("*.jpg")}
    images_c = {hashlib.sha256(p.read_bytes()).hexdigest() for p in c.rglob("*.jpg")}
    assert not images_a & images_c


def test_image_does_not_depend_on_how_many_are_made(tmp_path):
    kwargs = dict(seed=3, val_fraction=0.0, image_size_px=SMALL_AERIAL, progress=False)
    two = generate_dataset("aerial", tmp_path / "two", 2, **kwargs).parent
    three = generate_dataset("aerial", tmp_path / "three", 3, **kwargs).parent
    for name in ("aerial_s3_000000.jpg", "aerial_s3_000001.jpg"):
        assert (two / "images/train" / name).read_bytes() == (three / "images/train" / name).read_bytes()
    assert [split_of(3, i, 0.5) for i in range(20)] == [split_of(3, i, 0.5) for i in range(20)]


def test_labels_are_valid_yolo(street_pair):
    a, _, _ = street_pair
    n_boxes = 0
    for label in a.rglob("labels/*/*.txt"):
        image = cv2.imread(str(label.parent.parent.parent / "images" / label.parent.name / f"{label.stem}.jpg"))
        assert image is not None and image.shape[:2] == (SMALL_STREET[1], SMALL_STREET[0])
        for line in label.read_text().splitlines():
            parts = line.split()
            assert len(parts) == 5, line
            cls, cx, cy, w, h = int(parts[0]), *map(float, parts[1:])
            assert 0 <= cls < len(STREET_CLASSES)
            assert all(len(p.split(".")[1]) == 6 for p in parts[1:]), "six decimals"
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 - 1e-6 <= 1
            assert 0 <= cy - h / 2 + 1e-6 and cy + h / 2 - 1e-6 <= 1
            n_boxes += 1
    assert n_boxes > 0


def test_data_yaml_loads_and_matches_the_classes(street_pair, tmp_path):
    a, _, _ = street_pair
    data = yaml.safe_load((a / "data.yaml").read_text())
    assert data["names"] == STREET_CLASSES and data["nc"] == len(STREET_CLASSES)
    assert Path(data["path"]).is_absolute() and Path(data["path"]) == a.resolve()
    assert (a / data["train"]).is_dir() and (a / data["val"]).is_dir()
    assert any((a / data["val"]).iterdir()), "val split is not empty"
    aerial = yaml.safe_load(generate_dataset("aerial", tmp_path / "air", 1, seed=0, image_size_px=SMALL_AERIAL,
                                             progress=False).read_text())
    assert aerial["names"] == AERIAL_CLASSES


def test_aerial_distractors_are_labelled_after_the_violation_classes():
    # People, e-bikes and cars get their own classes (so the model can say "not a bike"), appended so that
    # the violation classes keep the ids a model trained before them uses.
    assert AERIAL_CLASSES[:3] == ["bicycle", "stall", "illegal_structure"]
    names = set()
    for seed in range(6):
        sample = render_aerial_scene(np.random.default_rng([31, seed]), (640, 640))
        names |= {sample.class_names[c] for c in sample.class_id}
    assert {"person", "car"} <= names, names


def test_existing_dataset_is_not_overwritten_by_accident(street_pair):
    a, _, _ = street_pair
    with pytest.raises(FileExistsError):
        generate_dataset("street", a, 1, seed=0, image_size_px=SMALL_STREET, progress=False, real_assets=False)


@pytest.mark.parametrize("render, size, seeds", [
    (render_street_scene, SMALL_STREET, range(6)),
    (render_aerial_scene, (512, 512), range(8)),
])
def test_every_box_lies_on_pixels_its_object_drew(render, size, seeds):
    # The same scene rendered without the labelled classes differs inside every box, and hardly outside.
    checked = 0
    for seed in seeds:
        with_objects = render(np.random.default_rng([21, seed]), size)
        without = render(np.random.default_rng([21, seed]), size,
                         omit_classes=set(range(len(with_objects.class_names))))
        assert len(without) == 0
        diff = np.abs(with_objects.image.astype(np.int16) - without.image.astype(np.int16)).max(axis=2)
        outside = np.ones(diff.shape, bool)
        for (x1, y1, x2, y2), cls in zip(with_objects.xyxy.astype(int), with_objects.class_id):
            changed = float((diff[y1:y2, x1:x2] > 12).mean())
            assert changed > 0.15, f"seed {seed}: box {(x1, y1, x2, y2)} of class {cls} covers {changed:.0%} changed"
            outside[max(0, y1 - 4):y2 + 4, max(0, x1 - 4):x2 + 4] = False
            checked += 1
        # outside the boxes: shadows, and objects too hidden to keep a label
        assert float((diff[outside] > 12).mean()) < 0.08
    assert checked >= 5


def test_small_bicycles_30_to_80_px_wide_occur_in_street_scenes():
    widths = []
    for seed in range(8):
        sample = render_street_scene(np.random.default_rng([5, seed]), (1280, 720))
        bikes = sample.xyxy[sample.class_id == BICYCLE]
        widths.extend((bikes[:, 2] - bikes[:, 0]).tolist())
    widths = np.asarray(widths)
    assert ((widths >= 30) & (widths <= 80)).sum() >= 5, widths
    assert widths.max() > 80  # and bigger ones too


def test_labels_describe_the_visible_part_and_drop_hidden_objects():
    comp = Compositor(np.zeros((20, 40, 3), np.uint8))
    solid = Layer.from_straight(np.full((10, 10, 3), 200.0), np.ones((10, 10)), 0, 0)
    comp.paste(solid, class_id=0)                                # 4/10 of it stays visible
    comp.paste(Layer.from_straight(np.zeros((10, 6, 3)), np.ones((10, 6)), 0, 0))
    comp.paste(Layer.from_straight(np.full((10, 10, 3), 200.0), np.ones((10, 10)), 20, 5), class_id=1)
    comp.paste(Layer.from_straight(np.zeros((10, 8, 3)), np.ones((10, 8)), 20, 5))  # 2/10 visible: dropped
    comp.paste(Layer.from_straight(np.full((10, 10, 3), 99.0), np.ones((10, 10)), 37, 0), class_id=2)  # 3/10 in
    comp.paste(Layer.from_straight(np.full((10, 10, 3), 99.0), np.ones((10, 10)), -8, 10), class_id=2)  # 2/10 in
    xyxy, cls, visible, _ = comp.labels(min_visible_fraction=0.4, min_on_frame_fraction=0.25, min_size_px=2)
    assert cls.tolist() == [0, 2]
    assert xyxy.tolist() == [[6.0, 0.0, 10.0, 10.0], [37.0, 0.0, 40.0, 10.0]]
    assert visible.tolist() == pytest.approx([0.4, 0.3])


def test_yolo_label_text_clips_to_the_image():
    text = yolo_label_text(np.array([[-10, 10, 30, 50]], np.float32), np.array([2]), 100, 40)
    assert text == "2 0.150000 0.625000 0.300000 0.750000\n"


def test_aerial_4k_frame_for_tiled_inference():
    sample = render_aerial_frame_4k(np.random.default_rng(4))
    assert sample.image.shape == (2160, 3840, 3)
    assert len(sample) > 0
    widths = sample.xyxy[:, 2] - sample.xyxy[:, 0]
    assert widths.min() < 160  # objects small against the frame: what tiling is for


# --- aerial view sampling (scale range, oblique share) ---------------------------------------------------


def _scene_views(root: Path) -> list[dict]:
    return [json.loads(line)["meta"]["view"] for line in (root / "scenes.jsonl").read_text().splitlines()]


def test_aerial_view_sampling_is_deterministic_and_keeps_to_its_range(tmp_path):
    views = AerialViewSampling(gsd_range_m=(0.02, 0.03), oblique_probability=0.0)
    kwargs = dict(n_images=4, seed=5, val_fraction=0.3, image_size_px=(256, 256), progress=False,
                  aerial_views=views)
    a = generate_dataset("aerial", tmp_path / "a", **kwargs).parent
    b = generate_dataset("aerial", tmp_path / "b", **kwargs).parent
    default = generate_dataset("aerial", tmp_path / "d", **{**kwargs, "aerial_views": None}).parent
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(default)
    for view in _scene_views(a):
        assert 0.02 <= view["gsd_m"] <= 0.03
        assert view["pitch_deg"] == 90.0


def test_default_view_sampling_is_the_generators_original_one():
    explicit = render_aerial_scene(np.random.default_rng([8, 1]), SMALL_AERIAL, view_sampling=AerialViewSampling())
    implicit = render_aerial_scene(np.random.default_rng([8, 1]), SMALL_AERIAL)
    assert np.array_equal(explicit.image, implicit.image)
    assert np.array_equal(explicit.xyxy, implicit.xyxy)
    assert AerialViewSampling() == AerialViewSampling((0.025, 0.07), 0.35)


@pytest.mark.parametrize("gsd_range_m", [(0.02, 0.05), (0.04, 0.04), (0.1, 0.3)])
@pytest.mark.parametrize("seed", range(6))
def test_gsd_range_rescales_the_view_without_shifting_later_draws(gsd_range_m, seed):
    # The rest of the scene comes from the same generator: it must be in the same state whatever the range.
    reference, rng = np.random.default_rng(seed), np.random.default_rng(seed)
    a = AerialView.sample(reference, (256, 256))
    b = AerialView.sample(rng, (256, 256), sampling=AerialViewSampling(gsd_range_m))
    assert (a.pitch_deg, a.yaw_deg) == (b.pitch_deg, b.yaw_deg)
    assert gsd_range_m[0] <= b.gsd_m <= gsd_range_m[1]
    assert reference.random() == rng.random()


@pytest.mark.parametrize("gsd, oblique", [((0.05, 0.02), 0.3), ((0.0, 0.05), 0.3), ((0.02, 0.05), 1.5),
                                          ((0.02, 2.0), 0.3)])
def test_view_sampling_rejects_impossible_values(gsd, oblique):
    with pytest.raises(ValueError):
        AerialViewSampling(gsd, oblique)


def test_view_sampling_is_for_aerial_datasets_only(tmp_path):
    with pytest.raises(ValueError, match="aerial"):
        generate_dataset("street", tmp_path / "s", 1, seed=0, image_size_px=SMALL_STREET, progress=False,
                         real_assets=False, aerial_views=AerialViewSampling())


def test_cli_synth_takes_the_gsd_range_and_oblique_share(tmp_path, capsys):
    from service.cli import main

    out = tmp_path / "chips"
    code = main(["dataset", "synth", "--kind", "aerial", "--out", str(out), "--n", "2", "--seed", "4",
                 "--size", "192x192", "--gsd-m", "0.03,0.03", "--oblique", "0", "--quiet"])
    assert code == 0
    assert [(v["gsd_m"], v["pitch_deg"]) for v in _scene_views(out)] == [(0.03, 90.0), (0.03, 90.0)]
    assert main(["dataset", "synth", "--kind", "aerial", "--out", str(tmp_path / "bad"), "--n", "1",
                 "--gsd-m", "0.05,0.02", "--quiet"]) == 2
    assert main(["dataset", "synth", "--kind", "street", "--out", str(tmp_path / "street"), "--n", "1",
                 "--oblique", "0.5", "--quiet"]) == 2
    assert "aerial only" in capsys.readouterr().err


# --- real material from ../shared ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_assets(shared_dir, tmp_path_factory):
    if not (shared_dir / "footage" / "parking-lot-cars.mp4").is_file():
        pytest.skip("footage absent from ../shared")
    cache = tmp_path_factory.mktemp("synth-cache")
    return load_street_assets(shared_dir, cache, max_bike_crops=8, real_background_probability=1.0)


def test_real_backgrounds_and_real_bike_cutouts_are_used(real_assets):
    assert {bg.name for bg in real_assets.backgrounds} == {"parking-lot-cars.mp4", "people-walking.mp4"}
    assert real_assets.bike_bank is not None and len(real_assets.bike_bank) == 8
    sources, tags = set(), []
    for seed in range(6):
        sample = render_street_scene(np.random.default_rng([9, seed]), SMALL_STREET, assets=real_assets)
        sources.add(sample.meta["background"])
        tags += sample.meta["tags"]
        assert sample.image.shape == (SMALL_STREET[1], SMALL_STREET[0], 3)
    assert all(s.startswith("footage:") for s in sources) and "footage:parking-lot-bicycle.mp4" not in sources
    assert "real_bicycle" in tags


def test_real_asset_scenes_are_deterministic(real_assets):
    a = render_street_scene(np.random.default_rng([2, 2]), SMALL_STREET, assets=real_assets)
    b = render_street_scene(np.random.default_rng([2, 2]), SMALL_STREET, assets=real_assets)
    assert np.array_equal(a.image, b.image) and a.yolo_labels() == b.yolo_labels()


def test_bike_cutout_is_deterministic_and_train_only(bicycles_dir):
    image_path = sorted((bicycles_dir / "train" / "images").glob("*.jpg"))[0]
    image = cv2.imread(str(image_path))
    h, w = image.shape[:2]
    x1, y1, x2, y2 = int(w * 0.2), int(h * 0.2), int(w * 0.8), int(h * 0.8)
    first, second = cut_out_bicycle(image, (x1, y1, x2, y2)), cut_out_bicycle(image, (x1, y1, x2, y2))
    assert (first is None and second is None) or np.array_equal(first, second)
    with pytest.raises(ValueError, match="train split"):
        BikeCropBank.build(bicycles_dir / "val", max_crops=1)


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_street_distractor_labels_change_the_labels_not_the_picture(seed):
    """The people and cars a street scene draws anyway get boxes of their own classes; nothing else changes."""
    plain = render_street_scene(np.random.default_rng([seed, 0]), (640, 360))
    labelled = render_street_scene(np.random.default_rng([seed, 0]), (640, 360), label_distractors=True)
    assert np.array_equal(plain.image, labelled.image)
    assert labelled.class_names == STREET_CLASSES + ["person", "motorcycle", "car"]
    keep = labelled.class_id < len(STREET_CLASSES)
    # the violation-class boxes are the same ones (a labelled person may hide part of nothing new: hiding is
    # computed the same way for labelled and unlabelled layers)
    assert np.array_equal(labelled.xyxy[keep], plain.xyxy) and np.array_equal(labelled.class_id[keep], plain.class_id)


def test_street_distractors_occur_in_a_batch_of_scenes():
    ids = np.concatenate([render_street_scene(np.random.default_rng([7, i]), (640, 360), label_distractors=True).class_id
                          for i in range(12)])
    assert {PERSON, CAR} <= set(ids.tolist())
