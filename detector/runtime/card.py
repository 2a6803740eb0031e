"""Model cards: everything the runtime must know about an ONNX file, and what users must know about it.

The runtime never guesses pre/post-processing from tensor shapes (YOLOX and ultralytics outputs can have
the same rank); the card says which format a file is, and the runtime checks the file agrees at load.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.errors import ModelCardError
from detector.paths import default_shared_dir

__all__ = ["ModelCard", "InputSpec", "Thresholds", "TilingHints", "load_card", "sha256_of", "card_from_ultralytics_metadata"]

ModelFormat = Literal["ultralytics", "yolox", "fastestdet"]
SUPPORTED_FORMATS: tuple[str, ...] = ("ultralytics", "yolox", "fastestdet")


class InputSpec(BaseModel):
    """How a frame becomes the model's input tensor."""

    model_config = ConfigDict(extra="forbid")

    width_px: int = Field(description="Model input width in pixels.", ge=32, le=4096)
    height_px: int = Field(description="Model input height in pixels.", ge=32, le=4096)
    channel_order: Literal["rgb", "bgr"] = Field(description="Channel order the network was trained on.")
    scale: float = Field(
        description="Factor applied to 0..255 pixel values (1/255 for 0..1 input, 1 for raw 0..255).", gt=0, le=1
    )
    resize: Literal["letterbox", "stretch"] = Field(
        "letterbox", description="letterbox keeps the aspect ratio and pads; stretch resizes to the input size."
    )
    align: Literal["center", "top_left"] = Field(
        "center", description="Where a letterboxed image sits in the padded input (YOLOX trains top-left)."
    )
    pad_value: int = Field(114, description="Grey level of letterbox padding (0..255).", ge=0, le=255)


class Thresholds(BaseModel):
    """Score thresholds: one default, optionally overridden per class name."""

    model_config = ConfigDict(extra="forbid")

    default: float = Field(0.25, description="Minimum score for a detection of any class.", ge=0.0, le=1.0)
    per_class: dict[str, float] = Field(
        default_factory=dict, description="Minimum score per class name, overriding the default."
    )
    nms_iou: float = Field(0.45, description="IoU above which a lower-scored box of the same class is suppressed.",
                           gt=0.0, le=1.0)
    nms_iou_per_class: dict[str, float] = Field(
        default_factory=dict,
        description="NMS IoU per class name, overriding nms_iou (chosen on val by `streetwatch release`).")
    max_det: int = Field(300, description="Most detections kept per image after NMS.", ge=1, le=10000)
    track_score: float | None = Field(
        None, ge=0.0, le=1.0,
        description="The model's operating point for tracking: score at which a detection may start a track and "
                    "the median a track's recent scores need for a rule (chosen on val by `streetwatch release`: "
                    "the highest per-class threshold). Omit: the configuration's built-in values (0.5 / 0.6).")

    @field_validator("nms_iou_per_class")
    @classmethod
    def _nms_ious_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, iou in value.items():
            if not 0.0 < iou <= 1.0:
                raise ValueError(f"NMS IoU for class {name!r} must lie within (0, 1], got {iou}")
        return value

    @field_validator("per_class")
    @classmethod
    def _scores_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, score in value.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"threshold for class {name!r} must lie within [0, 1], got {score}")
        return value


class TilingHints(BaseModel):
    """How tiled inference (`detect_tiled`) should run this model."""

    model_config = ConfigDict(extra="forbid")

    full_frame_pass: bool = Field(
        True,
        description="Also run the whole frame shrunk to the input size, for objects larger than a tile. Turn off "
                    "for a model trained only at tile scale (aerial chips): a 4K frame shrunk 6x shows objects at a "
                    "ground resolution it never saw, and its boxes there are mostly false.")


class ModelCard(BaseModel):
    """Description of one shipped or third-party detector (see models/<name>/card.yaml)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name used with --model.", min_length=1, max_length=80)
    version: str = Field("0", description="Version of this model file.", max_length=80)
    file: str = Field(description="ONNX file, relative to the card or absolute; ${VARS} are expanded.")
    sha256: str | None = Field(None, description="SHA-256 of the ONNX file; checked at load when given.")
    format: ModelFormat = Field(description="Output layout and decoding: ultralytics, yolox or fastestdet.")
    input: InputSpec = Field(description="Input size and pixel format.")
    classes: list[str] = Field(description="Class names in output order.", min_length=1, max_length=1000)
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Score and NMS thresholds.")
    tiling: TilingHints = Field(default_factory=TilingHints, description="How tiled inference runs this model.")
    violation_classes: dict[str, str] = Field(
        default_factory=dict,
        description="Map from this model's class names to the pipeline's classes (bicycle, ebike, stall, ...).",
    )
    licence: str = Field("unknown", description="Licence of the weights.")
    source: str = Field("", description="Where the weights come from.")
    training_data: str = Field("", description="What the model was trained on, with credits.")
    training: dict[str, Any] = Field(default_factory=dict, description="How it was trained (command, epochs, time).")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Measured accuracy, with the data it was measured on.")
    notes: str = Field("", description="Anything a user should know (limits, known failure modes).")
    intended_use: str = Field("", description="Where the model may be used: imagery, viewpoint, scale, classes.",
                              max_length=4000)
    out_of_scope_use: str = Field("", description="Uses the model was not made or measured for.", max_length=4000)
    limitations: str = Field("", description="Known failure modes and what was not measured.", max_length=4000)

    # Where the card was read from: relative `file` paths resolve against it.
    card_path: str | None = Field(None, description="Set by load_card; not written in card files.")

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be 64 lowercase hex digits")
        return value

    @model_validator(mode="after")
    def _per_class_names_exist(self) -> "ModelCard":
        unknown = sorted(set(self.thresholds.per_class) - set(self.classes))
        if unknown:
            raise ValueError(f"thresholds.per_class names unknown classes: {unknown}")
        unknown = sorted(set(self.thresholds.nms_iou_per_class) - set(self.classes))
        if unknown:
            raise ValueError(f"thresholds.nms_iou_per_class names unknown classes: {unknown}")
        unknown = sorted(set(self.violation_classes) - set(self.classes))
        if unknown:
            raise ValueError(f"violation_classes names unknown classes: {unknown}")
        return self

    def resolved_file(self) -> Path:
        raw = _expand_vars(self.file)
        path = Path(raw).expanduser()
        if not path.is_absolute() and self.card_path:
            path = Path(self.card_path).parent / path
        return path

    def class_thresholds(self) -> list[float]:
        return [self.thresholds.per_class.get(name, self.thresholds.default) for name in self.classes]

    def class_nms_ious(self) -> list[float]:
        return [self.thresholds.nms_iou_per_class.get(name, self.thresholds.nms_iou) for name in self.classes]


def _expand_vars(text: str) -> str:
    # STREETWATCH_SHARED defaults to ../shared beside the repository, where the third-party models live.
    env = dict(os.environ)
    env.setdefault("STREETWATCH_SHARED", str(default_shared_dir()))
    return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), m.group(0)), text)


def load_card(path: Path | str) -> ModelCard:
    """Read and validate a card (YAML or JSON). Raises ModelCardError naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise ModelCardError(f"{path}: model card not found")
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"{path}: cannot parse model card: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ModelCardError(f"{path}: model card must be a mapping, got {type(raw).__name__}")
    raw["card_path"] = str(path.resolve())
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise ModelCardError(f"{path}: invalid model card: {problems}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_from_ultralytics_metadata(onnx_path: Path, metadata: dict[str, str], input_hw: tuple[int, int]) -> ModelCard:
    """Build a card for an ultralytics export that came without one, from the metadata it embeds."""
    names_raw = metadata.get("names")
    if not names_raw:
        raise ModelCardError(f"{onnx_path}: ultralytics metadata has no class names; write a card")
    try:
        names = ast.literal_eval(names_raw)
    except (ValueError, SyntaxError):
        raise ModelCardError(f"{onnx_path}: cannot parse class names in ultralytics metadata") from None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if metadata.get("end2end", "False") == "True":
        raise ModelCardError(f"{onnx_path}: end-to-end (NMS inside) ultralytics exports are not supported; "
                             "export with nms=False")
    return ModelCard(
        name=onnx_path.stem,
        file=str(onnx_path.resolve()),
        format="ultralytics",
        input=InputSpec(width_px=input_hw[1], height_px=input_hw[0], channel_order="rgb", scale=1 / 255),
        classes=list(names),
        licence=metadata.get("license", "unknown"),
        source=metadata.get("description", ""),
        notes="card inferred from the ONNX file's ultralytics metadata",
    )
