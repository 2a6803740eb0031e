"""ONNX detector: frame(s) in, `Detections` in frame pixels out. Needs only onnxruntime, OpenCV and numpy."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from detector.errors import ModelCardError, ModelLoadError
from detector.geometry import nms
from detector.runtime.card import ModelCard, sha256_of
from detector.runtime.decode import (
    Candidates,
    dense_fastestdet,
    dense_ultralytics,
    dense_yolox,
    decode_fastestdet,
    decode_ultralytics,
    decode_yolox,
    expected_output_shape,
    yolox_grid,
)
from detector.runtime.preprocess import InputTransform, make_blob, prepare_image, to_frame_xyxy
from detector.types import Detections

__all__ = ["RuntimeOptions", "OnnxDetector"]

# Keep at most this many candidates per image before NMS (as ultralytics' max_nms): bounds NMS cost
# on pathological frames where thousands of anchors pass a low threshold.
MAX_NMS_CANDIDATES = 30000


@dataclass(frozen=True)
class RuntimeOptions:
    """onnxruntime settings.

    Attributes:
        intra_op_threads: Threads inside one operator; 0 lets onnxruntime use every core.
        inter_op_threads: Threads across independent operators (only used in parallel execution mode).
        parallel_execution: Run independent graph branches in parallel (rarely helps YOLO graphs).
        max_batch: Most images per session.run when the model has a dynamic batch axis.
        warmup: Run one dummy input at load so the first real frame does not pay for allocation.
        providers: onnxruntime execution providers, in order of preference.
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 0
    parallel_execution: bool = False
    max_batch: int = 8
    warmup: bool = True
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


def _dim_matches(actual: object, expected: int | None) -> bool:
    # Symbolic (str/None) axes accept anything; -1 is how some exporters mark a dynamic axis.
    return expected is None or not isinstance(actual, int) or actual < 0 or actual == expected


class OnnxDetector:
    """Runs one ONNX detector described by a `ModelCard`.

    The instance keeps no per-call state: `detect` may be called from several threads at once
    (onnxruntime's `InferenceSession.run` is thread-safe), so one loaded model serves every camera worker.

    Example:
        >>> det = OnnxDetector(load_card("models/yolox-nano-coco/card.yaml"))  # doctest: +SKIP
        >>> d = det.detect(cv2.imread("street.jpg"))  # doctest: +SKIP
        >>> det.class_names[d.class_id[0]]  # doctest: +SKIP
        'bicycle'
    """

    def __init__(self, card: ModelCard, options: RuntimeOptions = RuntimeOptions()) -> None:
        self.card = card
        self.options = options
        self.path = card.resolved_file()
        self.class_names: list[str] = list(card.classes)
        self._class_names_arr = np.asarray(self.class_names)
        self._class_min_score = np.asarray(card.class_thresholds(), np.float32)
        self.class_nms_iou = np.asarray(card.class_nms_ious(), np.float32)
        self.session = self._open_session()
        self._input_name, self.batch_dynamic = self._check_io()
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        if card.format == "yolox":
            self._grid = yolox_grid((card.input.height_px, card.input.width_px))
        if options.warmup:
            self.run_raw(np.zeros((1, 3, card.input.height_px, card.input.width_px), np.float32))

    # --- loading and checking -------------------------------------------------------------------

    def _open_session(self) -> ort.InferenceSession:
        path = self.path
        if not path.is_file():
            raise ModelLoadError(f"{path}: model file not found (card {self.card.card_path or self.card.name})")
        if self.card.sha256 is not None:
            actual = sha256_of(path)
            if actual != self.card.sha256:
                raise ModelCardError(
                    f"{path}: sha256 {actual[:12]}… does not match the card's {self.card.sha256[:12]}… "
                    f"(card {self.card.card_path or self.card.name})"
                )
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads
        so.inter_op_num_threads = self.options.inter_op_threads
        so.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL if self.options.parallel_execution else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), sess_options=so, providers=list(self.options.providers))
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{path}: onnxruntime cannot load the model: {reason}") from None

    def _check_io(self) -> tuple[str, bool]:
        card, path = self.card, self.path
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelCardError(f"{path}: expected one image input, the model has {len(inputs)}")
        in_shape = list(inputs[0].shape)
        want_in = (None, 3, card.input.height_px, card.input.width_px)
        if len(in_shape) != 4 or not all(_dim_matches(a, e) for a, e in zip(in_shape, want_in)):
            raise ModelCardError(
                f"{path}: input shape {in_shape} does not match the card's 1x3x{card.input.height_px}x"
                f"{card.input.width_px}"
            )
        out_shape = list(outputs[0].shape)
        want_out = expected_output_shape(card.format, len(card.classes), (card.input.height_px, card.input.width_px))
        if len(out_shape) != len(want_out) or not all(_dim_matches(a, e) for a, e in zip(out_shape, want_out)):
            want = "x".join("?" if e is None else str(e) for e in want_out)
            raise ModelCardError(
                f"{path}: output shape {out_shape} does not match format '{card.format}' with "
                f"{len(card.classes)} classes at {card.input.width_px}x{card.input.height_px} (expected {want})"
            )
        self._check_embedded_names()
        batch = in_shape[0]
        return inputs[0].name, not (isinstance(batch, int) and batch > 0)

    def _check_embedded_names(self) -> None:
        """ultralytics exports carry their class names; a card that lists others describes another model."""
        raw = self.session.get_modelmeta().custom_metadata_map.get("names")
        if not raw:
            return
        try:
            names = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
        if names != self.class_names:
            diff = next((i for i, (a, b) in enumerate(zip(names, self.class_names)) if a != b), min(len(names),
                                                                                                 len(self.class_names)))
            raise ModelCardError(
                f"{self.path}: class names embedded in the file differ from the card's "
                f"(file has {len(names)}, card {len(self.class_names)}; first difference at index {diff})"
            )

    # --- inference ----------------------------------------------------------------------------

    def run_raw(self, tensor: np.ndarray) -> np.ndarray:
        """session.run on a prepared NCHW tensor; returns the first output with its batch axis."""
        return self.session.run(None, {self._input_name: tensor})[0]

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[InputTransform]]:
        prepared, transforms = zip(*(prepare_image(img, self.card.input) for img in images))
        return make_blob(prepared, self.card.input), list(transforms)

    def decode(self, raw_one: np.ndarray, min_score: float | None = None) -> Candidates:
        """Decode one image's raw output (no batch axis) into candidates in input pixels."""
        floor = float(self._class_min_score.min()) if min_score is None else min_score
        if self.card.format == "ultralytics":
            return decode_ultralytics(raw_one, floor)
        if self.card.format == "yolox":
            assert self._grid is not None
            return decode_yolox(raw_one, floor, *self._grid)
        return decode_fastestdet(raw_one, floor, (self.card.input.height_px, self.card.input.width_px))

    def postprocess(self, raw: np.ndarray, transforms: Sequence[InputTransform],
                    min_score: float | None = None) -> list[Detections]:
        results = []
        for raw_one, transform in zip(raw, transforms):
            cand = self.decode(raw_one, min_score)
            if min_score is None:
                # Per-class thresholds from the card; the decoder used the lowest of them.
                passed = cand.score >= self._class_min_score[cand.class_id]
                cand = Candidates(cand.xyxy[passed], cand.score[passed], cand.class_id[passed])
            if len(cand.score) > MAX_NMS_CANDIDATES:
                top = np.argpartition(-cand.score, MAX_NMS_CANDIDATES)[:MAX_NMS_CANDIDATES]
                cand = Candidates(cand.xyxy[top], cand.score[top], cand.class_id[top])
            keep = nms(cand.xyxy, cand.score, self.class_nms_iou, cand.class_id, self.card.thresholds.max_det)
            class_id = cand.class_id[keep]
            results.append(
                Detections(
                    xyxy=to_frame_xyxy(cand.xyxy[keep], transform),
                    confidence=np.clip(cand.score[keep], 0.0, 1.0),
                    class_id=class_id,
                    data={"class_name": self._class_names_arr[class_id]},
                )
            )
        return results

    def detect(self, image: np.ndarray, min_score: float | None = None) -> Detections:
        """Detect objects in one HxWx3 uint8 BGR image; boxes come back in its pixels.

        Args:
            image: The frame.
            min_score: One threshold for every class, overriding the card's (e.g. 0.001 for evaluation).
        """
        tensor, transforms = self.preprocess([image])
        return self.postprocess(self.run_raw(tensor), transforms, min_score)[0]

    def detect_batch(self, images: Sequence[np.ndarray], min_score: float | None = None) -> list[Detections]:
        """Detect in several images; one session.run per chunk when the model has a dynamic batch axis."""
        chunk = self.options.max_batch if self.batch_dynamic else 1
        out: list[Detections] = []
        for start in range(0, len(images), chunk):
            tensor, transforms = self.preprocess(images[start:start + chunk])
            out.extend(self.postprocess(self.run_raw(tensor), transforms, min_score))
        return out

    def detect_multilabel(self, image: np.ndarray, min_score: float, class_ids: Sequence[int] | None = None,
                          max_per_class: int = 3000) -> Detections:
        """Every (anchor, class) pair scoring at least `min_score` can become a box, NMS per class.

        This is how mAP is conventionally measured (and how `ultralytics val` does it): an anchor whose best
        class is "motorcycle" may still contribute a lower-scored "bicycle" box to the bicycle curve. The
        service uses `detect` (one class per anchor); this is for evaluation only.

        Args:
            image: The frame.
            min_score: Lowest score kept (e.g. 0.001).
            class_ids: Model classes to decode (default all): evaluation needs only those it scores.
            max_per_class: Highest-scored candidates per class kept before NMS (bounds NMS cost).
        """
        tensor, transforms = self.preprocess([image])
        raw = self.run_raw(tensor)[0]
        if self.card.format == "ultralytics":
            boxes, scores = dense_ultralytics(raw)
        elif self.card.format == "yolox":
            assert self._grid is not None
            boxes, scores = dense_yolox(raw, *self._grid)
        else:
            boxes, scores = dense_fastestdet(raw, (self.card.input.height_px, self.card.input.width_px))
        parts = []
        for c in (range(scores.shape[1]) if class_ids is None else class_ids):
            idx = np.flatnonzero(scores[:, c] >= min_score)
            if len(idx) > max_per_class:
                idx = idx[np.argpartition(-scores[idx, c], max_per_class)[:max_per_class]]
            if not len(idx):
                continue
            keep = idx[nms(boxes[idx], scores[idx, c], float(self.class_nms_iou[c]))]
            parts.append((keep, np.full(len(keep), c, np.int32)))
        if not parts:
            return Detections.empty().with_columns(class_name=np.zeros((0,), self._class_names_arr.dtype))
        rows = np.concatenate([p[0] for p in parts])
        class_id = np.concatenate([p[1] for p in parts])
        score = scores[rows, class_id].astype(np.float32)
        order = np.argsort(-score, kind="stable")[: self.card.thresholds.max_det]
        return Detections(
            xyxy=to_frame_xyxy(boxes[rows[order]], transforms[0]),
            confidence=np.clip(score[order], 0.0, 1.0),
            class_id=class_id[order],
            data={"class_name": self._class_names_arr[class_id[order]]},
        )

    def __repr__(self) -> str:
        return f"OnnxDetector({self.card.name!r}, format={self.card.format}, file={Path(self.path).name})"
