"""ONNX detector runtime: model cards, pre/post-processing for several YOLO exports, batching and tiling."""

from detector.runtime.card import InputSpec, ModelCard, Thresholds, load_card
from detector.runtime.detector import OnnxDetector, RuntimeOptions
from detector.runtime.registry import available_models, models_dir, resolve_card
from detector.runtime.tiling import TilingConfig, detect_tiled, plan_tiles

__all__ = [
    "InputSpec", "ModelCard", "Thresholds", "load_card", "OnnxDetector", "RuntimeOptions", "resolve_card",
    "available_models", "models_dir", "TilingConfig", "detect_tiled", "plan_tiles", "load_model",
]


def load_model(name_or_path: str, card: str | None = None, options: RuntimeOptions = RuntimeOptions()) -> OnnxDetector:
    """Resolve a model by name or path and load it (sha256 and shapes checked, warmed up)."""
    return OnnxDetector(resolve_card(name_or_path, card), options)
