"""Choosing a model's int8 copy where its card allows it (`detector.runtime.precision`)."""

from __future__ import annotations

import pytest

from detector.errors import ModelCardError
from detector.runtime import resolve_card
from detector.runtime.precision import MAX_AP50_DROP, choose_precision, int8_verdict

DATA_A = "holdout A (test, all)"
DATA_B = "holdout B (val, all)"


def card_with(metrics: dict, name: str = "m", **changes):
    """The shipped street card with other metrics (and other fields), as a builder."""
    base = resolve_card("street")
    return base.model_copy(update={"name": name, "metrics": metrics, **changes})


def metric(ap50: float, data: str = DATA_A) -> dict:
    return {"data": data, "ap50": ap50}


@pytest.mark.parametrize("fp32_metrics, int8_metrics, allowed, why", [
    ({"a": metric(0.90)}, {"a": metric(0.885)}, True, "within 0.02 on 1"),
    ({"a": metric(0.90), "b": metric(0.50, DATA_B)}, {"a": metric(0.89), "b": metric(0.47, DATA_B)}, False,
     "-0.0300 on b"),
    ({"a": metric(0.90)}, {"a": metric(0.95)}, True, "worst +0.0500"),         # better is fine
    ({"a": metric(0.90)}, {"a": metric(0.80, DATA_B)}, False, "share no AP50"),  # other data: not comparable
    ({"a": metric(0.90)}, {"b": metric(0.90)}, False, "share no AP50"),
    ({"a": metric(0.90)}, {}, False, "share no AP50"),                         # no evidence: keep fp32
    ({"a": {"data": DATA_A, "ap50": "n/a"}}, {"a": metric(0.9)}, False, "share no AP50"),
])
def test_int8_verdict_compares_ap50_on_the_same_data(fp32_metrics, int8_metrics, allowed, why):
    ok, reason = int8_verdict(card_with(fp32_metrics), card_with(int8_metrics, "m-int8"))
    assert ok is allowed
    assert why in reason


def test_int8_verdict_needs_the_same_classes_and_input():
    fp32 = card_with({"a": metric(0.9)})
    other_classes = card_with({"a": metric(0.9)}, "m-int8", classes=["bicycle", "stall"])
    assert int8_verdict(fp32, other_classes) == (False, "m-int8 detects other classes than m")
    bigger = card_with({"a": metric(0.9)}, "m-int8", input=fp32.input.model_copy(update={"width_px": 640}))
    assert int8_verdict(fp32, bigger)[0] is False


def test_the_limit_is_the_projects_int8_acceptance():
    fp32 = card_with({"a": metric(0.90)})
    assert int8_verdict(fp32, card_with({"a": metric(0.90 - MAX_AP50_DROP + 1e-6)}, "m-int8"))[0]
    assert not int8_verdict(fp32, card_with({"a": metric(0.90 - MAX_AP50_DROP - 1e-3)}, "m-int8"))[0]
    assert int8_verdict(fp32, card_with({"a": metric(0.85)}, "m-int8"), max_ap50_drop=0.06)[0]


@pytest.mark.parametrize("model, precision, name, chosen", [
    ("street", "auto", "street-int8", "int8"),     # shipped cards: AP50 -0.016, -0.009, -0.012 on shared holdouts
    ("street", "fp32", "street", "fp32"),
    ("street", "int8", "street-int8", "int8"),
    ("street-int8", "auto", "street-int8", "int8"),
    ("yolox-nano-coco", "auto", "yolox-nano-coco", "fp32"),  # no int8 copy
    ("models/street/card.yaml", "auto", "models/street/card.yaml", "fp32"),  # a path runs as it is
])
def test_choose_precision_with_the_shipped_models(model, precision, name, chosen):
    choice = choose_precision(model, precision)
    assert (choice.name, choice.precision) == (name, chosen)
    assert choice.reason


@pytest.mark.parametrize("precision, name", [("auto", "street"), ("int8", "street-int8"), ("fp32", "street")])
def test_tiles_or_another_input_size_keep_auto_on_the_float_model(precision, name):
    assert choose_precision("street", precision, native_input=False).name == name


def test_int8_asked_for_without_a_copy_is_an_error():
    with pytest.raises(ModelCardError, match="yolox-nano-coco: precision int8 asked for, but there is no model "
                                             "yolox-nano-coco-int8"):
        choose_precision("yolox-nano-coco", "int8")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("street", "fp16")
