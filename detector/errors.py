"""Errors the library raises for bad input. Each message is one line that names the thing and the reason,
so a CLI or API can show it to a user as it is (never a stack trace)."""

from __future__ import annotations

__all__ = ["StreetwatchError", "ModelCardError", "ModelLoadError", "ImageReadError"]


class StreetwatchError(Exception):
    """Base class: `str(error)` is a complete one-line explanation for the user."""


class ModelCardError(StreetwatchError):
    """A model card is missing, malformed, or disagrees with its ONNX file (sha256, shapes, format)."""


class ModelLoadError(StreetwatchError):
    """onnxruntime could not load or run a model file."""


class ImageReadError(StreetwatchError):
    """An image file is missing, unreadable, truncated or not an image."""
