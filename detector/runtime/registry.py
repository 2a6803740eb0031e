"""Finding a model by name or path: `--model street` → models/street/card.yaml → the ONNX file."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from detector.errors import ModelCardError, ModelLoadError
from detector.runtime.card import ModelCard, card_from_ultralytics_metadata, load_card

__all__ = ["models_dir", "resolve_card", "available_models"]

CARD_NAMES = ("card.yaml", "card.yml", "card.json")


def models_dir() -> Path:
    """$STREETWATCH_MODELS, else the repository's models/ folder."""
    env = os.environ.get("STREETWATCH_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def available_models() -> list[str]:
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / c).is_file() for c in CARD_NAMES))


def _card_in(folder: Path) -> Path | None:
    return next((folder / c for c in CARD_NAMES if (folder / c).is_file()), None)


def resolve_card(name_or_path: str, card_path: str | Path | None = None) -> ModelCard:
    """Resolve `--model` (and optional `--card`) to a validated card.

    Order: an explicit card; a card file; an ONNX file (card beside it as `<stem>.card.yaml`, or its
    ultralytics metadata); a model folder; a name under models/.
    """
    if card_path is not None:
        card = load_card(card_path)
        if name_or_path.endswith(".onnx"):
            card = card.model_copy(update={"file": str(Path(name_or_path).resolve())})
        return card
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        return load_card(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise ModelLoadError(f"{path}: model file not found")
        for sibling in (path.with_suffix(".card.yaml"), path.with_suffix(".card.json")):
            if sibling.is_file():
                card = load_card(sibling)
                return card.model_copy(update={"file": str(path.resolve())})
        return _card_from_metadata(path)
    if path.is_dir() and (found := _card_in(path)):
        return load_card(found)
    if (found := _card_in(models_dir() / name_or_path)) is not None:
        return load_card(found)
    known = ", ".join(available_models()) or "none"
    raise ModelCardError(f"{name_or_path}: no such model (known: {known}); pass an .onnx file or a card")


def _card_from_metadata(path: Path) -> ModelCard:
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
        raise ModelLoadError(f"{path}: onnxruntime cannot load the model: {str(exc).strip().splitlines()[0]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "names" not in meta:
        raise ModelCardError(
            f"{path}: unknown format: no model card and no ultralytics metadata; pass --card "
            "(formats: ultralytics, yolox, fastestdet)"
        )
    shape = session.get_inputs()[0].shape
    h, w = (shape[2], shape[3]) if all(isinstance(v, int) for v in shape[2:4]) else (640, 640)
    return card_from_ultralytics_metadata(path, meta, (int(h), int(w)))
