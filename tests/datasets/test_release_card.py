"""Model cards say where a model may be used, and keep results on real and synthetic holdouts apart."""

from __future__ import annotations

import pytest

from datasets.release import card_markdown, metric_imagery, write_card
from detector.runtime.card import ModelCard, load_card
from tests.conftest import REPO_ROOT

SHIPPED = ["street", "street-int8", "aerial", "aerial-int8"]


def _card(**metrics) -> ModelCard:
    return ModelCard(name="toy", file="toy.onnx", format="ultralytics", classes=["bicycle", "stall"],
                     input=load_card(REPO_ROOT / "models" / "street" / "card.yaml").input, intended_use="street cameras",
                     out_of_scope_use="fines", limitations="no night", metrics=metrics)


def _entry(ap50: float, imagery: str | None = None) -> dict:
    return {"data": "d.yaml", "images": 3, "ap50": ap50, "ap50_95": ap50 / 2,
            **({"imagery": imagery} if imagery else {}),
            "per_class": {"bicycle": {"instances": 4, "ap50": ap50, "ap50_95": ap50 / 2}}}


@pytest.mark.parametrize("key, entry, expected", [
    ("holdout_real", _entry(0.9, "real"), "real"),
    ("holdout_synth", _entry(0.5, "synthetic"), "synthetic"),
    ("val", _entry(0.7), "mixed"),
    ("old_key", _entry(0.7), "unknown"),
])
def test_metric_imagery(key, entry, expected):
    assert metric_imagery(key, entry) == expected


def test_real_and_synthetic_results_are_separate_tables(tmp_path):
    card = _card(holdout_synth=_entry(0.512, "synthetic"), holdout_real=_entry(0.934, "real"))
    text = card_markdown(card)
    real_at, synth_at = text.index("## Results on real holdouts"), text.index("## Results on synthetic holdouts")
    assert real_at < synth_at
    assert "0.934" in text[real_at:synth_at] and "0.512" not in text[real_at:synth_at]
    assert "0.512" in text[synth_at:]
    for section in ("## Intended use", "## Out-of-scope use", "## Limitations", "## Training data"):
        assert section in text
    write_card(card, tmp_path)
    assert (tmp_path / "CARD.md").read_text() == text
    assert load_card(tmp_path / "card.yaml").intended_use == "street cameras"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_cards_say_where_they_may_be_used(name):
    folder = REPO_ROOT / "models" / name
    card = load_card(folder / "card.yaml")
    assert card.intended_use and card.out_of_scope_use and card.limitations
    assert card.licence.startswith("AGPL-3.0")
    tagged = {k: metric_imagery(k, v) for k, v in card.metrics.items() if isinstance(v, dict) and "ap50" in v}
    assert "unknown" not in tagged.values(), tagged
    assert "real" in tagged.values(), f"{name}: no result on real imagery in its card"
    # the page for people is the card itself, not a copy left behind by an older release
    assert (folder / "CARD.md").read_text() == card_markdown(card)
