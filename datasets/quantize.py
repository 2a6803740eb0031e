"""Static int8 quantisation of a detector with onnxruntime, calibrated on real images.

Static (not dynamic) quantisation: activation ranges are measured once on calibration images, so at run
time no DynamicQuantizeLinear is computed per tensor (QDQ format, per-channel weights).

Which operators: for ultralytics exports, the whole body (`BODY_OPS`: convolutions and what lies between them,
SiLU's Sigmoid and Mul, residual Add, Concat, MaxPool, Resize, Split), so a tensor stays int8 from one
convolution to the next instead of being dequantised and requantised around every activation: on the street
model (YOLOv8n, 416 px, one thread) that ran 1.39x faster than fp32 where Conv/MatMul alone ran 1.20x, with the same
holdout AP50, measured interleaved on a busy machine. The detection head's non-convolution nodes (the last
module: box distribution decoding, sigmoid of the class scores, the final concatenation of boxes and scores)
stay in float: quantised with one scale, box coordinates (0..416) and scores (0..1) share a tensor and every
score rounds to 0 (AP50 0.000 measured). Other formats (YOLOX's head concatenates boxes and scores inside the
body's naming) keep Conv/MatMul only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from datasets.progress import Progress, no_progress
from detector.imageio import read_image
from detector.runtime.card import ModelCard
from detector.runtime.preprocess import make_blob, prepare_image

if TYPE_CHECKING:
    import onnx

__all__ = ["quantize_static_int8", "calibration_images", "BODY_OPS", "CALIBRATION_METHODS", "CONV_OPS", "head_nodes",
           "head_output_convs"]

CONV_OPS = ("Conv", "MatMul")
BODY_OPS = ("Conv", "MatMul", "Sigmoid", "Mul", "Add", "Concat", "MaxPool", "Resize", "Split")
_MODULE = re.compile(r"^/model\.(\d+)/")


def _last_module_nodes(model: "onnx.ModelProto") -> list:
    """The nodes of an ultralytics export's last module (its Detect head), found by their ``/model.<i>/`` names;
    empty for graphs not named that way."""
    indexed = [(int(m.group(1)), n) for n in model.graph.node if (m := _MODULE.match(n.name))]
    if not indexed:
        return []
    last = max(i for i, _ in indexed)
    return [n for i, n in indexed if i == last]


def head_nodes(model: "onnx.ModelProto") -> list[str]:
    """Names of the non-convolution nodes of an ultralytics export's last module (its Detect head).

    Ultralytics names nodes after their module (``/model.22/dfl/...``); the head is the highest index.
    Returns an empty list for graphs not named that way.
    """
    return [n.name for n in _last_module_nodes(model) if n.op_type not in CONV_OPS]


def head_output_convs(model: "onnx.ModelProto") -> list[str]:
    """Names of the convolutions of a Detect head that produce raw outputs (box distributions, class logits,
    and the DFL's expectation): those of the last module not followed by an activation (SiLU's Sigmoid).

    Returns an empty list for graphs not named the ultralytics way.
    """
    activated = {name for n in model.graph.node if n.op_type == "Sigmoid" for name in n.input}
    return [n.name for n in _last_module_nodes(model)
            if n.op_type in CONV_OPS and not any(o in activated for o in n.output)]


def calibration_images(folder: Path, n_images: int, seed: int = 0) -> list[Path]:
    """A deterministic sample of images from a folder (the training split: never the holdout)."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no calibration images")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(paths), size=min(n_images, len(paths)), replace=False)
    return [paths[i] for i in sorted(pick)]


CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def quantize_static_int8(card: ModelCard, out_onnx: Path, calibration: Sequence[Path],
                         per_channel: bool = True, method: str = "minmax", percentile: float = 99.999,
                         float_head_outputs: bool = False, progress: Progress = no_progress) -> Path:
    """Write a statically quantised copy of the card's model to `out_onnx`.

    Args:
        card: Card of the fp32 model (its input spec drives the calibration preprocessing).
        out_onnx: Destination file.
        calibration: Images run through the model to measure activation ranges.
        per_channel: Per-output-channel weight scales (better accuracy for conv nets, same speed).
        method: How activation ranges are taken from the calibration outputs: ``minmax`` (the extremes),
            ``percentile`` (clip the top `percentile` % of each tensor's values: one bright outlier pixel no
            longer stretches the scale for every other value) or ``entropy`` (KL-divergence, TensorRT's).
        percentile: For ``percentile``: the share of values kept inside the range.
        float_head_outputs: Keep the head's output convolutions (`head_output_convs`) in float too: their
            outputs are the box distributions and class logits, whose fine steps int8 rounds away.
        progress: Wraps the calibration images as the model runs over them (label ``calibrate``).
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import onnxruntime as ort

    src = card.resolved_file()
    input_name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[Path] = iter(progress(calibration, "calibrate"))

        def get_next(self) -> dict[str, np.ndarray] | None:
            path = next(self._it, None)
            if path is None:
                return None
            prepared, _ = prepare_image(read_image(path), card.input)
            return {input_name: make_blob([prepared], card.input)}

    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    pre = out_onnx.with_suffix(".pre.onnx")
    try:
        # Per-channel DequantizeLinear (its `axis`) needs opset 13; older exports (YOLOX) are converted first.
        import onnx
        from onnx import version_converter

        model = onnx.load(str(src))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        source = src
        if opset < 13:
            source = out_onnx.with_suffix(".opset13.onnx")
            onnx.save(version_converter.convert_version(model, 13), str(source))
        # Shape inference and graph folding first, as onnxruntime recommends before static quantisation.
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        if source != src:
            source.unlink(missing_ok=True)
        body = card.format == "ultralytics"
        pre_model = onnx.load(str(pre))
        excluded = head_nodes(pre_model) if body else []
        if body and float_head_outputs:
            excluded += head_output_convs(pre_model)
        if body and not excluded:
            body = False  # no recognisable head: quantising its concatenation would zero every score
        quantize_static(
            str(pre),
            str(out_onnx),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(BODY_OPS if body else CONV_OPS),
            nodes_to_exclude=excluded,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
            extra_options={"CalibPercentile": percentile} if method == "percentile" else {},
        )
    finally:
        pre.unlink(missing_ok=True)
    return out_onnx
