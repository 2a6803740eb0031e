"""A tiny real training run with ultralytics ([train] extra): from scratch, offline, exported to ONNX that
our runtime loads and runs. Minutes of CPU would prove nothing more about the plumbing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT


def _tiny_dataset(bicycles_dir: Path, out: Path, n_train: int = 8, n_val: int = 4) -> Path:
    for split, src, n in (("train", "train", n_train), ("val", "val", n_val)):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        for img in sorted((bicycles_dir / src / "images").glob("*.jpg"))[:n]:
            os.symlink(img, out / "images" / split / img.name)
            label = bicycles_dir / src / "labels" / f"{img.stem}.txt"
            (out / "labels" / split / f"{img.stem}.txt").write_text(label.read_text())
    data = out / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(out), "train": "images/train", "val": "images/val",
                                    "names": ["bicycle"], "nc": 1}))
    return data


def test_tiny_training_run_exports_onnx_that_the_runtime_loads(bicycles_dir, tmp_path):
    pytest.importorskip("ultralytics", reason="needs the [train] extra (scripts/test.sh installs it)")
    from datasets.release import release_model
    from datasets.train import TrainRequest, describe, train
    from detector.runtime import load_model

    data = _tiny_dataset(bicycles_dir, tmp_path / "tiny")
    req = TrainRequest(data_yaml=data, model="yolov8n.yaml", run_dir=tmp_path / "runs" / "tiny", imgsz_px=64,
                       epochs=1, batch=4, workers=0, hyp={"val": True})
    result = train(req, progress=False)
    assert result.last_pt.is_file() and result.best_pt.is_file()

    card = release_model(result.best_pt, data, "tiny", tmp_path / "models", 64, training=describe(req),
                         training_data="8 bicycles-2000 train photos (test fixture)")
    folder = tmp_path / "models" / "tiny"
    assert (folder / "tiny.onnx").is_file() and (folder / "card.yaml").is_file() and (folder / "tiny.pt").is_file()
    assert card.classes == ["bicycle"] and set(card.thresholds.per_class) == {"bicycle"}
    assert "ap50" in card.metrics["val"]
    # Every NMS IoU candidate was measured on val; a class only leaves the default for a measured gain.
    tried = card.metrics["val"]["nms_iou_val_ap50"]
    assert set(tried) == {"0.45", "0.55", "0.65"}
    assert set(card.thresholds.nms_iou_per_class) <= {"bicycle"}

    model = load_model(str(folder / "card.yaml"))  # sha256 and shapes checked against the card
    assert model.batch_dynamic, "exports must keep a dynamic batch axis"
    import cv2

    image = cv2.imread(str(sorted((bicycles_dir / "val" / "images").glob("*.jpg"))[0]))
    detections = model.detect_batch([image, image], min_score=0.0)
    assert len(detections) == 2  # an untrained network finds nothing useful; it must still run end to end


def test_downloads_are_refused(tmp_path):
    pytest.importorskip("ultralytics", reason="needs the [train] extra (scripts/test.sh installs it)")
    from datasets.train import forbid_downloads

    forbid_downloads()
    from ultralytics.utils import downloads

    with pytest.raises(RuntimeError, match="download refused"):
        downloads.attempt_download_asset(str(tmp_path / "yolov8n.pt"))


def test_inference_path_never_imports_torch(bicycles_dir):
    """`streetwatch detect` (the service's inference path) must run with onnxruntime, OpenCV and numpy only."""
    image = sorted((bicycles_dir / "val" / "images").glob("*.jpg"))[0]
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['streetwatch', 'detect', {str(image)!r}, '--model', 'yolox-nano-coco', '--json']\n"
        "from service.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'ultralytics'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout


@pytest.mark.parametrize("ap50_by_iou, expected", [
    # bikes gain from a looser IoU, stalls lose: only bikes leave the default
    ({0.45: {"bicycle": 0.50, "stall": 0.60}, 0.55: {"bicycle": 0.52, "stall": 0.59},
      0.65: {"bicycle": 0.53, "stall": 0.55}}, {"bicycle": 0.65}),
    # a gain within the noise margin keeps the default
    ({0.45: {"bicycle": 0.500}, 0.55: {"bicycle": 0.504}}, {}),
    # the best candidate wins, not the loosest
    ({0.45: {"ebike": 0.30}, 0.55: {"ebike": 0.35}, 0.65: {"ebike": 0.33}}, {"ebike": 0.55}),
    # a class absent at some candidate is judged on the rest
    ({0.45: {"bicycle": 0.5, "stall": 0.6}, 0.55: {"bicycle": 0.6}}, {"bicycle": 0.55}),
])
def test_pick_nms_ious(ap50_by_iou, expected):
    from datasets.release import pick_nms_ious

    assert pick_nms_ious(ap50_by_iou, 0.45) == expected


def test_pick_nms_ious_needs_the_default_among_the_candidates():
    from datasets.release import pick_nms_ious

    with pytest.raises(ValueError, match="default NMS IoU 0.45 must be among the candidates"):
        pick_nms_ious({0.55: {"bicycle": 0.5}}, 0.45)


def test_the_operating_point_is_chosen_afresh_on_val(bicycles_dir, tmp_path):
    # A third-party COCO model on 12 real val photos: no training needed to check the choice itself.
    from datasets.release import choose_operating_point
    from detector.runtime import resolve_card

    data = _tiny_dataset(bicycles_dir, tmp_path / "tiny", n_train=1, n_val=12)
    base = resolve_card("yolox-nano-coco")
    stale = base.model_copy(update={"thresholds": base.thresholds.model_copy(
        update={"nms_iou_per_class": {"bicycle": 0.95}, "per_class": {"bicycle": 0.9}})})
    card = choose_operating_point(stale, data)
    fresh = choose_operating_point(base, data)
    tried = card.metrics["val"]["nms_iou_val_ap50"]
    assert set(tried) == {"0.45", "0.55", "0.65"}
    # Each trial ran at its own IoU, not the stale override: the AP50s differ by IoU and match a fresh card's.
    assert len({round(v["bicycle"], 4) for v in tried.values()}) > 1
    assert tried == fresh.metrics["val"]["nms_iou_val_ap50"]
    assert card.thresholds.nms_iou_per_class == fresh.thresholds.nms_iou_per_class
    assert card.thresholds.nms_iou_per_class.get("bicycle", 0.45) in (0.45, 0.55, 0.65)
    assert set(card.thresholds.per_class) == {"bicycle"} and card.thresholds.per_class["bicycle"] < 0.9
    assert card.thresholds.track_score == card.thresholds.per_class["bicycle"]


def test_widen_classes_keeps_the_rows_of_known_classes_by_name(tmp_path):
    # Adding distractor classes must not make the network forget the classes it detects: every known class's
    # row of the classification head is copied by name (even when the order changes), the rest stays whole.
    pytest.importorskip("ultralytics", reason="needs the [train] extra (scripts/test.sh installs it)")
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from datasets.train import widen_classes

    old = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    old.names = {0: "bicycle", 1: "stall"}
    with torch.no_grad():
        for branch in old.model[-1].cv3:
            branch[-1].weight.normal_()
            branch[-1].bias.copy_(torch.tensor([1.5, -2.5]))
    src = tmp_path / "old.pt"
    torch.save({"model": old, "train_args": {}}, src)

    out = widen_classes(src, ["stall", "person", "bicycle"], tmp_path / "wide.pt")
    new = torch.load(out, map_location="cpu", weights_only=False)["model"].float()
    assert new.names == {0: "stall", 1: "person", 2: "bicycle"}
    for b_old, b_new in zip(old.model[-1].cv3, new.model[-1].cv3):
        w_old, w_new = b_old[-1].weight, b_new[-1].weight
        assert torch.allclose(w_new[0], w_old[1], atol=1e-3) and torch.allclose(w_new[2], w_old[0], atol=1e-3)
        assert b_new[-1].bias[0].item() == pytest.approx(-2.5, abs=1e-2)
        assert b_new[-1].bias[2].item() == pytest.approx(1.5, abs=1e-2)
        assert b_new[-1].bias[1].item() < -4  # a new class starts from the rare-object prior, not a copy
    # the backbone is copied whole
    assert torch.allclose(new.model[0].conv.weight, old.model[0].conv.weight, atol=1e-3)
    with pytest.raises(ValueError, match="distinct"):
        widen_classes(src, ["stall", "stall"], tmp_path / "bad.pt")
