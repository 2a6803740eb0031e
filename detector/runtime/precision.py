"""Choosing a model's int8 copy where its card allows it.

A quantised copy of a model ships as ``<name>-int8`` under models/ (``streetwatch quantize`` writes it, with a
card of its own). On this project's CPUs it runs about twice as fast (street: 16 ms against 38 ms per
``session.run`` on one thread; benchmarks/results/streams.md), which is the largest single lever on cameras per
core. It is used in place of the float model only where the cards show it is as accurate: on every accuracy
metric both cards report on the same data (same metric key and same ``data``), its AP50 is at most
`MAX_AP50_DROP` below the float model's, and it detects the same classes at the same input size. A card without a
shared metric proves nothing, so the float model stays. The cards measure whole frames at the card's input size,
so a camera that runs tiles or another input size (set up for far, small objects) keeps the float model under
"auto": no int8 card measures small-object recall in tiles (the float street card does:
benchmarks/results/small_objects.md), so nothing shows the copy is as good there.

Example:
    >>> choice = choose_precision("street")  # doctest: +SKIP
    >>> choice.name, choice.precision  # doctest: +SKIP
    ('street-int8', 'int8')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from detector.errors import ModelCardError
from detector.runtime.card import ModelCard
from detector.runtime.registry import resolve_card

__all__ = ["INT8_SUFFIX", "MAX_AP50_DROP", "PRECISIONS", "PrecisionChoice", "choose_precision", "int8_verdict"]

Precision = Literal["auto", "fp32", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "int8")
INT8_SUFFIX = "-int8"
#: The project's acceptance for a quantised model (benchmarks/results/int8_street.md: AP50 change ≥ −0.02).
MAX_AP50_DROP = 0.02


@dataclass(frozen=True)
class PrecisionChoice:
    """Which model file a selection runs.

    Attributes:
        name: The model name (or path) to load.
        precision: "fp32" (the named model as it is) or "int8" (its quantised copy).
        reason: One line: why (for logs and the health endpoint).
    """

    name: str
    precision: str
    reason: str


def int8_verdict(fp32: ModelCard, int8: ModelCard, max_ap50_drop: float = MAX_AP50_DROP) -> tuple[bool, str]:
    """Whether `int8` may replace `fp32` by its cards, and why (one line).

    Example:
        >>> from detector.runtime import resolve_card  # doctest: +SKIP
        >>> int8_verdict(resolve_card("street"), resolve_card("street-int8"))  # doctest: +SKIP
        (True, 'AP50 within 0.02 on 3 shared metrics (worst -0.0162 on holdout_bicycles2000_test)')
    """
    if list(int8.classes) != list(fp32.classes):
        return False, f"{int8.name} detects other classes than {fp32.name}"
    if (int8.input.width_px, int8.input.height_px) != (fp32.input.width_px, fp32.input.height_px):
        return False, f"{int8.name} has another input size than {fp32.name}"
    drops: list[tuple[float, str]] = []
    for key, metric in fp32.metrics.items():
        other = int8.metrics.get(key)
        if not (isinstance(metric, dict) and isinstance(other, dict)):
            continue
        if metric.get("data") != other.get("data"):
            continue  # measured on other data: not comparable
        base, quant = metric.get("ap50"), other.get("ap50")
        if isinstance(base, (int, float)) and isinstance(quant, (int, float)):
            drops.append((float(quant) - float(base), key))
    if not drops:
        return False, f"the cards of {fp32.name} and {int8.name} share no AP50 measured on the same data"
    worst, key = min(drops)
    if worst < -max_ap50_drop:
        return False, f"AP50 {worst:+.4f} on {key} (allowed -{max_ap50_drop:g})"
    return True, f"AP50 within {max_ap50_drop:g} on {len(drops)} shared metrics (worst {worst:+.4f} on {key})"


def _is_name(model: str) -> bool:
    """A model name under models/ (not a card file, an .onnx file or a folder path)."""
    return "/" not in model and "\\" not in model and Path(model).suffix.lower() not in (".onnx", ".yaml", ".yml",
                                                                                           ".json")


def choose_precision(model: str, precision: str = "auto", max_ap50_drop: float = MAX_AP50_DROP,
                     native_input: bool = True) -> PrecisionChoice:
    """The model a selection of `model` at `precision` runs.

    Args:
        model: A model name under models/, or a path (paths run as they are).
        precision: "auto" (the int8 copy when `int8_verdict` allows it), "fp32" (as named) or "int8" (the copy,
            whatever its card says).
        max_ap50_drop: For "auto".
        native_input: The camera runs whole frames at the card's input size; False (tiles, another input size)
            keeps "auto" on the float model, which the cards' metrics do not cover for int8.

    Raises:
        ValueError: `precision` is not one of `PRECISIONS`.
        ModelCardError: "int8" was asked for and `model` has no int8 copy; or the float model's card is unreadable.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return PrecisionChoice(model, "fp32", "fp32 asked for")
    if not _is_name(model) or model.endswith(INT8_SUFFIX):
        already = model.endswith(INT8_SUFFIX)
        return PrecisionChoice(model, "int8" if already else "fp32",
                               "named as it is" if already or precision == "auto" else "a path runs as it is")
    int8_name = model + INT8_SUFFIX
    if precision == "auto" and not native_input:
        return PrecisionChoice(model, "fp32", "tiles or another input size: the int8 card measures whole frames at "
                                              "its input size only")
    try:
        int8_card = resolve_card(int8_name)
    except ModelCardError:
        if precision == "int8":
            raise ModelCardError(f"{model}: precision int8 asked for, but there is no model {int8_name} "
                                 "(make one with streetwatch quantize)") from None
        return PrecisionChoice(model, "fp32", f"no {int8_name} under models/")
    if precision == "int8":
        return PrecisionChoice(int8_name, "int8", "int8 asked for")
    allowed, why = int8_verdict(resolve_card(model), int8_card, max_ap50_drop)
    return PrecisionChoice(int8_name if allowed else model, "int8" if allowed else "fp32", why)
