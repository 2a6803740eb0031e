"""Training with ultralytics (the [train] extra), ONNX export, and the model card that ships with it.

Everything runs offline: the project ships no pretrained weights and nothing may be fetched at run time,
so models train from a YAML architecture (or from a checkpoint the project made earlier), and every
ultralytics download path is replaced by one that raises. Training is resumable: ultralytics writes
`last.pt` every epoch, and `resume=True` continues from it with the optimizer state.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainRequest", "TrainResult", "train", "export_onnx", "forbid_downloads", "widen_classes"]


@dataclass
class TrainRequest:
    """One training run.

    Attributes:
        data_yaml: ultralytics dataset YAML (train/val paths, names).
        model: An architecture YAML (`yolov8n.yaml`, trained from scratch) or a `.pt` checkpoint made by
            this project (fine-tuning, or continuing a finished run for more epochs).
        run_dir: Folder of the run; `weights/last.pt` and `weights/best.pt` land there.
        imgsz_px: Training input size (square).
        epochs: Total epochs of this run.
        batch: Images per batch.
        workers: Data-loading worker processes.
        device: "cpu", or a CUDA index such as "0".
        resume: Continue an interrupted run from run_dir/weights/last.pt (same epochs, optimizer state).
        seed: Random seed for ultralytics.
        hyp: Further ultralytics training arguments (mosaic, scale, lr0, close_mosaic, ...).
    """

    data_yaml: Path
    model: str = "yolov8n.yaml"
    run_dir: Path = Path("runs/train/street")
    imgsz_px: int = 416
    epochs: int = 30
    batch: int = 16
    workers: int = 2
    device: str = "cpu"
    resume: bool = False
    seed: int = 0
    patience: int = 100
    hyp: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_dir: Path
    best_pt: Path
    last_pt: Path
    epochs: int
    elapsed_s: float
    metrics: dict[str, float]


def forbid_downloads() -> None:
    """Make every ultralytics download path fail loudly instead of reaching the network.

    ultralytics fetches fonts for plots, `yolov8n.pt` for its AMP check and weights named by stem; here
    none of those may happen (no network at run time, and shipped models must be trained by the project).
    """
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics.data import utils as data_utils
    from ultralytics.utils import checks, downloads

    def refuse(*args: Any, **kwargs: Any) -> None:
        target = kwargs.get("url") or (args[0] if args else "?")
        raise RuntimeError(f"streetwatch: download refused (offline): {target}")

    def no_font(font: str = "Arial.ttf") -> None:
        return None  # plots fall back to PIL's default font

    downloads.safe_download = refuse
    downloads.attempt_download_asset = lambda file, *a, **k: (
        str(file) if Path(str(file)).exists() else refuse(url=str(file)))
    checks.check_font = no_font
    data_utils.check_font = no_font


def widen_classes(weights_pt: Path, class_names: list[str], out_pt: Path) -> Path:
    """A checkpoint whose head predicts `class_names`, keeping what the network learnt of the classes it knows.

    ultralytics transfers a checkpoint's weights into a model for a new class list only where tensor shapes
    match, so the last convolution of every classification branch (one row per class) starts from scratch when a
    class is added, and the network forgets the classes it already detected well. Here each class row is copied
    by name from the old head; rows of new classes keep ultralytics' prior (`Detect.bias_init`: about 1 % of the
    anchors positive). Everything else (backbone, neck, box branch) is copied whole.

    Args:
        weights_pt: A detection checkpoint made by this project (``model`` or ``ema`` in it).
        class_names: The new class list in id order; every old class that appears in it keeps its row.
        out_pt: Where the widened checkpoint goes (to pass as ``--model`` to `train`).

    Returns:
        ``out_pt``.

    Example:
        >>> widen_classes(Path("models/aerial/aerial.pt"), AERIAL_CLASSES, Path("var/aerial-6.pt"))  # doctest: +SKIP
        PosixPath('var/aerial-6.pt')
    """
    import copy

    import torch
    from ultralytics.nn.tasks import DetectionModel

    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be distinct names, got {class_names}")
    ckpt = torch.load(Path(weights_pt), map_location="cpu", weights_only=False)
    old = (ckpt.get("ema") or ckpt["model"]).float()
    old_names = [old.names[i] for i in range(len(old.names))]
    cfg = copy.deepcopy(old.yaml)
    cfg["nc"] = len(class_names)
    new = DetectionModel(cfg, nc=len(class_names), verbose=False)
    state = new.state_dict()
    state.update({k: v for k, v in old.state_dict().items() if k in state and state[k].shape == v.shape})
    new.load_state_dict(state)
    kept = 0
    with torch.no_grad():
        for branch_old, branch_new in zip(old.model[-1].cv3, new.model[-1].cv3):
            for j, name in enumerate(class_names):
                if name in old_names:
                    i = old_names.index(name)
                    branch_new[-1].weight[j] = branch_old[-1].weight[i]
                    branch_new[-1].bias[j] = branch_old[-1].bias[i]
                    kept += 1
    new.names = dict(enumerate(class_names))
    new.args = getattr(old, "args", {})
    out_pt = Path(out_pt)
    out_pt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": new.half(), "ema": None, "optimizer": None, "epoch": -1, "updates": 0,
                "train_args": ckpt.get("train_args", {}), "date": ckpt.get("date"), "version": ckpt.get("version"),
                "license": ckpt.get("license"), "widened_from": {"weights": str(weights_pt), "classes": old_names,
                                                                 "rows_kept": kept}}, out_pt)
    return out_pt


def resolved_data_yaml(data_yaml: Path, out_dir: Path) -> Path:
    """A copy of a dataset YAML whose `path` is absolute.

    ultralytics resolves a relative `path` (such as bicycles-2000's `path: .`) against the working
    directory, not against the YAML's folder as the file's authors mean it.
    """
    import yaml

    data_yaml = Path(data_yaml).resolve()
    spec = yaml.safe_load(data_yaml.read_text())
    root = Path(spec.get("path") or ".")
    spec["path"] = str(root if root.is_absolute() else (data_yaml.parent / root).resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "data.resolved.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return out


def train(req: TrainRequest, progress: bool = True) -> TrainResult:
    """Train (or resume) one model with ultralytics; returns where the weights are."""
    forbid_downloads()
    from ultralytics import YOLO

    run_dir = req.run_dir.resolve()
    last = run_dir / "weights" / "last.pt"
    started = time.monotonic()
    if req.resume:
        if not last.is_file():
            raise FileNotFoundError(f"{last}: nothing to resume")
        model = YOLO(str(last))
        model.train(resume=True, device=req.device, workers=req.workers, verbose=progress)
    else:
        model = YOLO(req.model)
        args = dict(
            data=str(resolved_data_yaml(req.data_yaml, run_dir.parent / f"{run_dir.name}-data")),
            imgsz=req.imgsz_px,
            epochs=req.epochs,
            batch=req.batch,
            workers=req.workers,
            device=req.device,
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            # From a YAML nothing is loaded; from a .pt checkpoint its weights must be (False drops them).
            pretrained=str(req.model).lower().endswith(".pt"),
            amp=False,  # the AMP check downloads yolov8n.pt; CPU training gains nothing from AMP anyway
            plots=False,
            seed=req.seed,
            deterministic=True,
            patience=req.patience,
            save_period=-1,
            verbose=progress,
        )
        args.update(req.hyp)
        model.train(**args)
    best = run_dir / "weights" / "best.pt"
    metrics = {}
    trainer = getattr(model, "trainer", None)
    if trainer is not None and getattr(trainer, "metrics", None):
        metrics = {k: float(v) for k, v in trainer.metrics.items() if isinstance(v, (int, float))}
    epochs = int(getattr(getattr(trainer, "args", None), "epochs", req.epochs)) if trainer else req.epochs
    return TrainResult(run_dir, best if best.is_file() else last, last, epochs, time.monotonic() - started, metrics)


def export_onnx(weights_pt: Path, out_onnx: Path, imgsz_px: int, dynamic_batch: bool = True,
                simplify: bool = True) -> Path:
    """Export a checkpoint to ONNX with a dynamic batch axis (so tiles and cameras can share one run).

    The export keeps ultralytics' raw head output (1 x (4+nc) x N, no NMS inside), which
    `detector.runtime` decodes as format `ultralytics`; class names go into the file's metadata.
    """
    forbid_downloads()
    from ultralytics import YOLO

    model = YOLO(str(weights_pt))
    exported = Path(model.export(format="onnx", imgsz=imgsz_px, dynamic=dynamic_batch, simplify=simplify,
                                 nms=False, half=False, device="cpu", verbose=False))
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    if exported.resolve() != out_onnx.resolve():
        out_onnx.write_bytes(exported.read_bytes())
    return out_onnx


def describe(req: TrainRequest) -> dict[str, Any]:
    """JSON-ready record of a request, for the model card's `training` section."""
    out = asdict(req)
    out["data_yaml"] = str(req.data_yaml)
    out["run_dir"] = str(req.run_dir)
    return out
