"""`datasets.retrain`: the release gate as tables (worse beyond the tolerance, not better on the reviewed data,
ties, missing holdouts), the holdouts a card lists, the review window, the table writers and the folder swap.
The end-to-end run of `streetwatch retrain` is tests/service/test_cli_retrain.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from datasets.retrain import (
    Holdout,
    HoldoutScore,
    RetrainError,
    compare,
    comparison_json,
    comparison_markdown,
    holdouts_from_card,
    install_candidate,
    parse_holdout,
    reviews_since,
    write_comparison,
)


def hs(name: str, ap50: float | None, *, reviewed: bool = False, instances: int | None = None,
       negatives: int = 0, false_boxes: int | None = None) -> HoldoutScore:
    """A score builder: 10 images, 12 objects unless AP50 is None (then none)."""
    n = (0 if ap50 is None else 12) if instances is None else instances
    return HoldoutScore(name, reviewed, 10, n, ap50, None if ap50 is None else ap50 / 2, negatives, false_boxes)


def rv(ap50: float | None, **kw) -> HoldoutScore:
    return hs("reviewed", ap50, reviewed=True, **kw)


# --- the gate -------------------------------------------------------------------------------------------------

# (current, candidate, tolerance, min_gain, release, verdicts by holdout, words every refusal reason must hold)
GATE = {
    "better everywhere": (
        [hs("bikes", 0.80), hs("synth", 0.50), rv(0.40)], [hs("bikes", 0.82), hs("synth", 0.55), rv(0.60)],
        0.01, 0.0, True, {"bikes": "better", "synth": "better", "reviewed": "better"}, []),
    "one holdout worse beyond the tolerance": (
        [hs("bikes", 0.80), hs("synth", 0.50), rv(0.40)], [hs("bikes", 0.81), hs("synth", 0.47), rv(0.60)],
        0.02, 0.0, False, {"bikes": "better", "synth": "worse", "reviewed": "better"},
        [["holdout synth", "0.500 -> 0.470", "-0.030", "tolerance 0.02"]]),
    "worse within the tolerance": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.79), rv(0.45)],
        0.02, 0.0, True, {"bikes": "within tolerance", "reviewed": "better"}, []),
    "worse by exactly the tolerance passes": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.78), rv(0.45)],
        0.02, 0.0, True, {"bikes": "within tolerance", "reviewed": "better"}, []),
    "two holdouts worse: both named": (
        [hs("bikes", 0.80), hs("synth", 0.50), rv(0.40)], [hs("bikes", 0.70), hs("synth", 0.40), rv(0.60)],
        0.0, 0.0, False, {"bikes": "worse", "synth": "worse", "reviewed": "better"},
        [["holdout bikes"], ["holdout synth"]]),
    "not better on the reviewed data": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.85), rv(0.39)],
        0.01, 0.0, False, {"bikes": "better", "reviewed": "not better"},
        [["reviewed data reviewed", "0.400 -> 0.390", "not better"]]),
    "a tie on the reviewed data is not better": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.80), rv(0.40)],
        0.01, 0.0, False, {"bikes": "same", "reviewed": "not better"}, [["reviewed data reviewed", "+0.000"]]),
    "float noise is no gain": (
        [hs("bikes", 0.80), rv(0.1 + 0.2)], [hs("bikes", 0.80), rv(0.3)],
        0.0, 0.0, False, {"bikes": "same", "reviewed": "not better"}, [["reviewed data"]]),
    "a gain at or below --min-gain is not enough": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.80), rv(0.45)],
        0.01, 0.05, False, {"bikes": "same", "reviewed": "not better"}, [["not better by more than 0.05"]]),
    "a negative tolerance demands a gain on every holdout": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.81), rv(0.60)],
        -0.05, 0.0, False, {"bikes": "too little gain", "reviewed": "better"},
        [["holdout bikes", "short of the gain 0.05"]]),
    "a negative tolerance and a loss": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.70), rv(0.60)],
        -0.05, 0.0, False, {"bikes": "worse", "reviewed": "better"},
        [["holdout bikes", "-0.100", "short of the gain 0.05 a negative tolerance requires"]]),
    "a holdout missing for the candidate": (
        [hs("bikes", 0.80), hs("synth", 0.50), rv(0.40)], [hs("bikes", 0.80), rv(0.60)],
        0.01, 0.0, False, {"bikes": "same", "synth": "missing", "reviewed": "better"},
        [["holdout synth", "not measured on the candidate"]]),
    "a holdout only the candidate has": (
        [hs("bikes", 0.80), rv(0.40)], [hs("bikes", 0.80), hs("new", 0.3), rv(0.60)],
        0.01, 0.0, False, {"bikes": "same", "new": "missing", "reviewed": "better"},
        [["holdout new", "not measured on the current model"]]),
    "a holdout without labelled objects cannot be checked": (
        [hs("bikes", None), rv(0.40)], [hs("bikes", None), rv(0.60)],
        0.01, 0.0, False, {"bikes": "no objects", "reviewed": "better"}, [["holdout bikes", "AP50 undefined"]]),
    "no reviewed data at all": (
        [hs("bikes", 0.80)], [hs("bikes", 0.90)],
        0.01, 0.0, False, {"bikes": "better"}, [["no reviewed data"]]),
    "reviewed negatives only: fewer false boxes is better": (
        [hs("bikes", 0.80), rv(None, negatives=5, false_boxes=4)],
        [hs("bikes", 0.80), rv(None, negatives=5, false_boxes=1)],
        0.01, 0.0, True, {"bikes": "same", "reviewed": "better"}, []),
    "reviewed negatives only: as many false boxes is not better": (
        [hs("bikes", 0.80), rv(None, negatives=5, false_boxes=2)],
        [hs("bikes", 0.80), rv(None, negatives=5, false_boxes=2)],
        0.01, 0.0, False, {"bikes": "same", "reviewed": "not better"}, [["false boxes per negative image 0.40"]]),
    "reviewed data with nothing to measure": (
        [hs("bikes", 0.80), rv(None)], [hs("bikes", 0.80), rv(None)],
        0.01, 0.0, False, {"bikes": "same", "reviewed": "no objects"}, [["cannot show the candidate is better"]]),
}


@pytest.mark.parametrize("current, candidate, tolerance, min_gain, release, verdicts, reason_words",
                         GATE.values(), ids=GATE.keys())
def test_the_gate(current, candidate, tolerance, min_gain, release, verdicts, reason_words):
    decision = compare(current, candidate, tolerance, min_gain)
    assert decision.release is release
    assert {r.name: r.verdict for r in decision.rows} == verdicts
    if release:
        assert all(r.reason is None for r in decision.rows)
        assert any("reviewed data" in line for line in decision.reasons)
    else:
        assert len(decision.reasons) == len(reason_words)
        for reason, words in zip(decision.reasons, reason_words):
            assert all(w in reason for w in words), (reason, words)


def test_rows_keep_the_current_models_order_and_deltas():
    decision = compare([hs("b", 0.5), hs("a", 0.7), rv(0.2)], [rv(0.3), hs("a", 0.75), hs("b", 0.45)], 0.1)
    assert [r.name for r in decision.rows] == ["b", "a", "reviewed"]
    assert [r.delta_ap50 for r in decision.rows] == [-0.05, 0.05, 0.1]


@pytest.mark.parametrize("current, candidate, error", [
    ([hs("a", 0.5), hs("a", 0.6), rv(0.1)], [hs("a", 0.5), rv(0.2)], "current scores name holdout 'a' twice"),
    ([hs("a", 0.5), rv(0.1)], [hs("a", 0.5, reviewed=True), rv(0.2)], "holdout a: reviewed on one side only"),
])
def test_inconsistent_scores_are_refused(current, candidate, error):
    with pytest.raises(ValueError, match=error):
        compare(current, candidate, 0.01)


# --- the table ------------------------------------------------------------------------------------------------


def test_markdown_and_json_tables(tmp_path):
    decision = compare([hs("bikes", 0.8), rv(0.4, negatives=2, false_boxes=3)],
                       [hs("bikes", 0.7), rv(0.6, negatives=2, false_boxes=1)], 0.02)
    md_path, json_path = write_comparison(decision, tmp_path / "cand", {"model": "street"}, title="Retraining street")
    md = md_path.read_text()
    assert md.startswith("# Retraining street\n\n- model: street\n")
    assert "Decision: **not released**" in md
    assert "| bikes | holdout | 10 | 12 | 0.800 | 0.700 | -0.100 | – | worse |" in md
    assert "| reviewed | reviewed | 10 | 12 | 0.400 | 0.600 | +0.200 | 1.50 → 0.50 | better |" in md
    data = json.loads(json_path.read_text())
    assert data == comparison_json(decision, {"model": "street"})
    assert data["release"] is False and data["model"] == "street"
    assert [(h["name"], h["role"], h["verdict"]) for h in data["holdouts"]] == [
        ("bikes", "holdout", "worse"), ("reviewed", "reviewed", "better")]
    assert data["holdouts"][1]["current"]["false_boxes"] == 3
    assert "released" in comparison_markdown(compare([rv(0.1)], [rv(0.2)], 0.0))


# --- which holdouts -------------------------------------------------------------------------------------------


def test_holdouts_from_a_shipped_card():
    # The street card as `streetwatch eval --card-key` filled it: every entry but `val` is a holdout.
    card = yaml.safe_load((Path(__file__).resolve().parents[2] / "models" / "street" / "card.yaml").read_text())
    found, skipped = holdouts_from_card(card["metrics"])
    assert "val" in skipped
    assert found and all(h.split in ("val", "test") and not h.reviewed for h in found)
    assert {h.name for h in found} | set(skipped) == set(card["metrics"])


@pytest.mark.parametrize("key, entry, expected", [
    ("holdout_bikes", {"data": "../shared/b/data.yaml (test, all)"},
     Holdout("holdout_bikes", Path("../shared/b/data.yaml"), "test")),
    ("holdout_unseen", {"data": "b/data.yaml (test, source photos absent from train)"},
     Holdout("holdout_unseen", Path("b/data.yaml"), "test", unseen_sources=True)),
    ("holdout_4k_tiled_s102", {"data": "var/4k/data.yaml (val, all)"},
     Holdout("holdout_4k_tiled_s102", Path("var/4k/data.yaml"), "val", tiled=True)),
    ("chips", {"data": "var/c/data.yaml (val, all)", "tiled": True},
     Holdout("chips", Path("var/c/data.yaml"), "val", tiled=True)),
    ("tiled_but_not", {"data": "var/c/data.yaml (val, all)", "tiled": False},
     Holdout("tiled_but_not", Path("var/c/data.yaml"), "val")),
    ("a path (with) brackets", {"data": "x (1)/data.yaml (val, all)"}, RetrainError),
    ("with_brackets", {"data": "x (1)/data.yaml (val, all)"}, Holdout("with_brackets", Path("x (1)/data.yaml"), "val")),
    ("val", {"data": "var/train/street-v3/data.yaml"}, "val split"),
    ("bare", {"data": "var/some/data.yaml"}, "does not read"),
    ("odd_subset", {"data": "d/data.yaml (test, tiles only)"}, "unknown subset"),
    ("no_data", {"ap50": 0.5}, "no data recorded"),
    ("not_a_mapping", "0.5", "no data recorded"),
])
def test_holdouts_from_card(key, entry, expected):
    if expected is RetrainError:
        with pytest.raises(RetrainError, match="holdout name"):
            holdouts_from_card({key: entry})
        return
    found, skipped = holdouts_from_card({key: entry})
    if isinstance(expected, Holdout):
        assert found == [expected] and skipped == {}
    else:
        assert found == [] and expected in skipped[key]


@pytest.mark.parametrize("text, expected", [
    ("bikes=d/data.yaml:test", Holdout("bikes", Path("d/data.yaml"), "test")),
    ("bikes=d/data.yaml:val:tiled", Holdout("bikes", Path("d/data.yaml"), "val", tiled=True)),
    ("b=d/data.yaml:test:unseen:tiled", Holdout("b", Path("d/data.yaml"), "test", unseen_sources=True, tiled=True)),
    ("b=C:/data/data.yaml:test", Holdout("b", Path("C:/data/data.yaml"), "test")),
    ("bikes=d/data.yaml", "expected NAME=DATA.yaml:SPLIT"),
    ("d/data.yaml:test", "expected NAME=DATA.yaml:SPLIT"),
    ("=d/data.yaml:test", "expected NAME=DATA.yaml:SPLIT"),
    ("bikes=:test", "expected NAME=DATA.yaml:SPLIT"),
    ("bikes=d/data.yaml:holdout", "split must be train, val or test"),
    ("bi kes=d/data.yaml:test", "holdout name"),
])
def test_parse_holdout(text, expected):
    if isinstance(expected, Holdout):
        assert parse_holdout(text) == expected
    else:
        with pytest.raises(RetrainError, match=expected):
            parse_holdout(text)


UTC = timezone.utc


@pytest.mark.parametrize("training, version, expected", [
    ({}, "2026.11.29", (datetime(2026, 11, 29, tzinfo=UTC), "version 2026.11.29")),
    ({"released_at": "2026-12-01T10:00:00+08:00"}, "2026.12.01",
     (datetime(2026, 12, 1, 2, tzinfo=UTC), "training.released_at")),
    # reviews read when the last retraining started win over its release time (decisions made while it trained)
    ({"released_at": "2026-12-02T10:00:00+00:00", "reviews_read_at": "2026-12-02T08:00:00+00:00"}, "2026.12.02",
     (datetime(2026, 12, 2, 8, tzinfo=UTC), "training.reviews_read_at")),
    ({"released_at": "2026-12-01T10:00:00"}, "x", (datetime(2026, 12, 1, 10, tzinfo=UTC), "training.released_at")),
    ({}, "0", None),
    ({}, "v3", None),
])
def test_reviews_since(training, version, expected):
    assert reviews_since(training, version) == expected


def test_reviews_since_names_a_bad_time():
    with pytest.raises(RetrainError, match="training.released_at 'yesterday': not an ISO 8601 time"):
        reviews_since({"released_at": "yesterday"}, "2026.11.29")


# --- the swap -------------------------------------------------------------------------------------------------


def model_folder(path: Path, version: str, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "card.yaml").write_text(yaml.safe_dump({
        "name": "street", "version": version, "file": "street.onnx", "format": "ultralytics", "classes": ["bicycle"],
        "input": {"width_px": 64, "height_px": 64, "channel_order": "rgb", "scale": 1 / 255}}))
    (path / "street.onnx").write_text(marker)
    return path


def test_install_candidate_keeps_every_replaced_model(tmp_path):
    models = tmp_path / "models"
    model_folder(models / "street", "2026.11.29", "v3")
    first = install_candidate(model_folder(tmp_path / "c1" / "street", "2026.12.01", "v4"), models, "street")
    second = install_candidate(model_folder(tmp_path / "c2" / "street", "2026.12.01", "v5"), models, "street")
    assert first == models / "street.previous" / "2026.11.29"
    assert second == models / "street.previous" / "2026.12.01"  # v4, replaced by v5 the same day
    third = install_candidate(model_folder(tmp_path / "c3" / "street", "2026.12.01", "v6"), models, "street")
    assert third == models / "street.previous" / "2026.12.01-2"
    assert [(p / "street.onnx").read_text() for p in (first, second, third, models / "street")] == \
        ["v3", "v4", "v5", "v6"]
    assert not (tmp_path / "c3" / "street").exists()


def test_install_candidate_needs_a_current_model(tmp_path):
    with pytest.raises(RetrainError, match="no current model to replace"):
        install_candidate(model_folder(tmp_path / "c" / "street", "1", "x"), tmp_path / "models", "street")
