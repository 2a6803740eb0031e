"""Retraining from reviewer decisions: which holdouts judge a candidate, the release gate, and the swap.

`streetwatch retrain` (service/cli/train.py) fine-tunes the current model on the cases reviewers decided since
its last release, evaluates the candidate *and* the current model on every holdout in the same run, and
releases the candidate only when `compare` says so:

* on no holdout is the candidate's AP50 lower than the current model's by more than ``tolerance_ap50`` (a
  negative tolerance demands a gain of at least its size on every holdout), and
* on the reviewed data's own val split (never trained on) the candidate is better: its AP50 higher by more than
  ``min_gain_ap50`` (default 0: strictly higher; a tie is not better). A reviewed split without labelled
  objects (only rejected cases, i.e. hard negatives) has no AP50; there the candidate must draw fewer boxes
  per image at its operating thresholds.

A holdout measured for one model and not the other, or one without labelled objects, refuses the release: a
gate that cannot be checked does not pass.

The holdouts are those a card lists under ``metrics`` in the form ``streetwatch eval --card-key`` writes
(``data: PATH (SPLIT, SUBSET)``; `holdouts_from_card`), plus any given as ``NAME=DATA.yaml:SPLIT``
(`parse_holdout`), plus the reviewed data. The card's ``val`` entry is the training data's val split, on which
thresholds were chosen: it is no holdout and is skipped.

The decision logic is pure (`compare`, `comparison_markdown`, `comparison_json`); the functions under "I/O"
evaluate models, write the table and swap folders.

Rolling back: a released candidate replaces ``<models>/<name>/``; the replaced model is kept as
``<models>/<name>.previous/<its version>/`` (see `install_candidate`). To roll back, move the folders back::

    mv models/street models/street.rejected && mv models/street.previous/2026.11.29 models/street
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.errors import StreetwatchError

if TYPE_CHECKING:  # heavy imports (onnxruntime) only where models are run
    from datasets.evaluate import EvalRun
    from detector.runtime import OnnxDetector
    from detector.runtime.card import ModelCard

__all__ = [
    "RetrainError", "Holdout", "HoldoutScore", "ComparisonRow", "RetrainDecision", "holdouts_from_card",
    "parse_holdout", "reviews_since", "compare", "comparison_markdown", "comparison_json", "check_holdouts",
    "score_holdout", "write_comparison", "summarise_in_card", "install_candidate", "SUBSET_ALL", "SUBSET_UNSEEN",
]

SUBSET_ALL = "all"
SUBSET_UNSEEN = "source photos absent from train"
"""The subsets `datasets.evaluate.evaluate_model` names, as they appear in a card's ``data`` string."""

# A card entry written by `streetwatch eval --card-key`: "PATH (SPLIT, SUBSET)".
_CARD_DATA = re.compile(r"^(?P<path>.+) \((?P<split>train|val|test), (?P<subset>[^()]+)\)$")
_NOTE_PREFIX = "Retrained by `streetwatch retrain`"
"""How the summary line `summarise_in_card` puts first in a card's notes begins."""
# AP values are rounded to this many decimals before they are compared, so float noise (0.1 + 0.2) is no gain.
_DECIMALS = 6


class RetrainError(StreetwatchError):
    """A retraining input is unusable: a holdout, the current model, the reviewed data (message names it)."""


# --- what is measured ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holdout:
    """One labelled split both models are evaluated on.

    Attributes:
        name: Its key in the card's ``metrics`` and its row in the table.
        data_yaml: A YOLO dataset (relative paths resolve against the working directory, as in the card).
        split: ``train``, ``val`` or ``test``.
        unseen_sources: Only images whose source photo is absent from the dataset's train split.
        tiled: Run tiled, as the service runs large (drone) frames.
        reviewed: The reviewed data of this retraining: the candidate must be better here, not only not worse.
    """

    name: str
    data_yaml: Path
    split: str
    unseen_sources: bool = False
    tiled: bool = False
    reviewed: bool = False

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise RetrainError(f"holdout name {self.name!r}: use letters, digits, '_', '.' or '-'")
        if self.split not in ("train", "val", "test"):
            raise RetrainError(f"holdout {self.name}: split must be train, val or test, got {self.split!r}")

    @property
    def subset(self) -> str:
        return SUBSET_UNSEEN if self.unseen_sources else SUBSET_ALL

    def describe(self) -> str:
        """The ``data`` string of a card entry, as `streetwatch eval --card-key` writes it.

        Example:
            >>> Holdout("h", Path("bikes/data.yaml"), "test").describe()
            'bikes/data.yaml (test, all)'
        """
        return f"{self.data_yaml} ({self.split}, {self.subset})"


def holdouts_from_card(metrics: Mapping[str, Any]) -> tuple[list[Holdout], dict[str, str]]:
    """The holdouts a card's ``metrics`` list, and the entries that are none (key → why).

    An entry is a holdout when its ``data`` reads ``PATH (SPLIT, SUBSET)`` (what ``streetwatch eval --card-key``
    and `summarise_in_card` write). ``eval --tile`` does not record tiling in the card, so an entry is run tiled
    when it says ``tiled: true`` or, failing that, when its key contains ``tiled`` (as this project's tiled
    holdouts do: ``holdout_synth_aerial_4k_tiled_seed102``).

    Example:
        >>> found, skipped = holdouts_from_card({
        ...     "val": {"data": "var/train/street-v3/data.yaml"},
        ...     "holdout_bikes": {"data": "bikes/data.yaml (test, all)"},
        ...     "holdout_4k_tiled": {"data": "4k/data.yaml (val, all)"}})
        >>> [(h.name, h.split, h.tiled) for h in found]
        [('holdout_bikes', 'test', False), ('holdout_4k_tiled', 'val', True)]
        >>> skipped
        {'val': 'the training data val split (thresholds were chosen on it), not a holdout'}
    """
    found: list[Holdout] = []
    skipped: dict[str, str] = {}
    for key, entry in metrics.items():
        data = entry.get("data") if isinstance(entry, Mapping) else None
        if key == "val":
            skipped[key] = "the training data val split (thresholds were chosen on it), not a holdout"
            continue
        if not isinstance(data, str):
            skipped[key] = "no data recorded"
            continue
        m = _CARD_DATA.match(data.strip())
        if m is None:
            skipped[key] = f"data {data!r} does not read 'PATH (SPLIT, SUBSET)'"
            continue
        subset = m["subset"].strip()
        if subset not in (SUBSET_ALL, SUBSET_UNSEEN):
            skipped[key] = f"unknown subset {subset!r}"
            continue
        tiled = entry.get("tiled")
        found.append(Holdout(key, Path(m["path"]), m["split"], unseen_sources=subset == SUBSET_UNSEEN,
                             tiled=bool(tiled) if tiled is not None else "tiled" in key.lower()))
    return found, skipped


def parse_holdout(text: str) -> Holdout:
    """A holdout given on the command line: ``NAME=DATA.yaml:SPLIT`` with optional ``:tiled`` and ``:unseen``.

    Raises:
        RetrainError: The text does not have that form (the message quotes it).

    Example:
        >>> h = parse_holdout("bikes=../shared/data/bicycles-2000/data.yaml:test:unseen")
        >>> h.name, str(h.data_yaml), h.split, h.unseen_sources, h.tiled
        ('bikes', '../shared/data/bicycles-2000/data.yaml', 'test', True, False)
    """
    name, sep, rest = text.partition("=")
    parts = rest.split(":")
    flags = set()
    while len(parts) > 2 and parts[-1] in ("tiled", "unseen"):
        flags.add(parts.pop())
    if not sep or not name or len(parts) < 2 or not parts[-1] or not ":".join(parts[:-1]):
        raise RetrainError(f"--holdout {text!r}: expected NAME=DATA.yaml:SPLIT[:tiled][:unseen]")
    return Holdout(name, Path(":".join(parts[:-1])), parts[-1], unseen_sources="unseen" in flags,
                   tiled="tiled" in flags)


def reviews_since(card_training: Mapping[str, Any], version: str) -> tuple[datetime, str] | None:
    """When the reviews a retraining of this model should use begin, and where that time comes from.

    In order: the time the last retraining read its reviews (``training.reviews_read_at``: decisions made while
    it trained were not in it), the release time (``training.released_at``), or the start (UTC) of the day a
    ``YYYY.MM.DD`` version names (cards written by `streetwatch release` carry only the day). None: none known.

    Example:
        >>> reviews_since({}, "2026.11.29")
        (datetime.datetime(2026, 11, 29, 0, 0, tzinfo=datetime.timezone.utc), 'version 2026.11.29')
        >>> reviews_since({"released_at": "2026-12-01T10:00:00+00:00"}, "2026.12.01")[1]
        'training.released_at'
    """
    for key in ("reviews_read_at", "released_at"):
        raw = card_training.get(key)
        if raw:
            try:
                t = datetime.fromisoformat(str(raw))
            except ValueError:
                raise RetrainError(f"training.{key} {raw!r}: not an ISO 8601 time") from None
            return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)), f"training.{key}"
    m = re.fullmatch(r"(\d{4})\.(\d{2})\.(\d{2})", version.strip())
    if m:
        return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=timezone.utc), f"version {version}"
    return None


@dataclass(frozen=True)
class HoldoutScore:
    """One model's accuracy on one holdout.

    Attributes:
        name: The holdout's name.
        reviewed: The holdout is the reviewed data (see `Holdout.reviewed`).
        images: Images evaluated.
        instances: Labelled objects.
        ap50: Mean AP50 over the classes present (None: no labelled objects, AP undefined).
        ap50_95: Likewise, AP50-95.
        negative_images: Images without labelled objects (rejected cases in the reviewed data).
        false_boxes: Boxes the model draws on those at its card's thresholds (None: not counted).
        per_class_ap50: AP50 by class name.
    """

    name: str
    reviewed: bool
    images: int
    instances: int
    ap50: float | None
    ap50_95: float | None = None
    negative_images: int = 0
    false_boxes: int | None = None
    per_class_ap50: Mapping[str, float] = field(default_factory=dict)

    @property
    def false_boxes_per_negative_image(self) -> float | None:
        if self.false_boxes is None or self.negative_images == 0:
            return None
        return self.false_boxes / self.negative_images


@dataclass(frozen=True)
class ComparisonRow:
    """One holdout in the comparison.

    Attributes:
        verdict: ``better``, ``same``, ``within tolerance``, ``worse``, ``too little gain`` (a negative tolerance
            demands a gain), ``not better`` (reviewed data), ``missing`` or ``no objects``.
        reason: Why this row refuses the release (None: it does not).
    """

    name: str
    reviewed: bool
    current: HoldoutScore | None
    candidate: HoldoutScore | None
    delta_ap50: float | None
    verdict: str
    reason: str | None = None


@dataclass(frozen=True)
class RetrainDecision:
    """The gate's answer.

    Attributes:
        release: Whether the candidate may replace the current model.
        reasons: Why not (one line per failed check), or, when released, what justified it.
        rows: One row per holdout, the current model's holdouts first.
    """

    release: bool
    reasons: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    tolerance_ap50: float
    min_gain_ap50: float


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def compare(current: Sequence[HoldoutScore], candidate: Sequence[HoldoutScore], tolerance_ap50: float,
            min_gain_ap50: float = 0.0) -> RetrainDecision:
    """Decide whether `candidate` may replace `current`, holdout by holdout (matched by name).

    Args:
        current: The current model's scores.
        candidate: The candidate's scores on the same holdouts.
        tolerance_ap50: How much lower the candidate's AP50 may be on a holdout (negative: the gain required).
        min_gain_ap50: How much higher its AP50 must be on the reviewed data (strictly more than this).

    Example:
        >>> cur = [HoldoutScore("bikes", False, 20, 30, 0.90), HoldoutScore("reviewed", True, 8, 9, 0.40)]
        >>> cand = [HoldoutScore("bikes", False, 20, 30, 0.88), HoldoutScore("reviewed", True, 8, 9, 0.55)]
        >>> compare(cur, cand, tolerance_ap50=0.01).reasons
        ('holdout bikes: AP50 0.900 -> 0.880 (-0.020), worse than the tolerance 0.01',)
        >>> compare(cur, cand, tolerance_ap50=0.05).release
        True
    """
    if not math.isfinite(tolerance_ap50) or not math.isfinite(min_gain_ap50):
        raise ValueError("tolerance_ap50 and min_gain_ap50 must be finite")
    cur_by = _by_name(current, "current")
    cand_by = _by_name(candidate, "candidate")
    names = list(dict.fromkeys([*cur_by, *cand_by]))
    rows: list[ComparisonRow] = []
    for name in names:
        cur, cand = cur_by.get(name), cand_by.get(name)
        if cur is None or cand is None:
            which = "current model" if cur is None else "candidate"
            rows.append(ComparisonRow(name, (cur or cand).reviewed, cur, cand, None, "missing",
                                      f"holdout {name}: not measured on the {which}"))
            continue
        if cur.reviewed != cand.reviewed:
            raise ValueError(f"holdout {name}: reviewed on one side only")
        rows.append(_reviewed_row(cur, cand, min_gain_ap50) if cur.reviewed
                    else _holdout_row(cur, cand, tolerance_ap50))
    blocking = [r.reason for r in rows if r.reason]
    if not any(r.reviewed for r in rows):
        blocking.append("no reviewed data among the holdouts: nothing shows the candidate is better")
    if blocking:
        return RetrainDecision(False, tuple(blocking), tuple(rows), tolerance_ap50, min_gain_ap50)
    why = [f"reviewed data {r.name}: " + (
        f"AP50 {_fmt(r.current.ap50)} -> {_fmt(r.candidate.ap50)} ({r.delta_ap50:+.3f})" if r.delta_ap50 is not None
        else f"false boxes per negative image {_fmt(r.current.false_boxes_per_negative_image, 2)} -> "
             f"{_fmt(r.candidate.false_boxes_per_negative_image, 2)}")
           for r in rows if r.reviewed]
    others = [r for r in rows if not r.reviewed]
    why.append(f"no holdout worse than the tolerance {tolerance_ap50:g} AP50 (holdouts: {len(others)})")
    return RetrainDecision(True, tuple(why), tuple(rows), tolerance_ap50, min_gain_ap50)


def _by_name(scores: Sequence[HoldoutScore], side: str) -> dict[str, HoldoutScore]:
    out: dict[str, HoldoutScore] = {}
    for s in scores:
        if s.name in out:
            raise ValueError(f"{side} scores name holdout {s.name!r} twice")
        out[s.name] = s
    return out


def _delta(cur: float, cand: float) -> float:
    return round(round(cand, _DECIMALS) - round(cur, _DECIMALS), _DECIMALS)


def _holdout_row(cur: HoldoutScore, cand: HoldoutScore, tolerance_ap50: float) -> ComparisonRow:
    name = cur.name
    if cur.ap50 is None or cand.ap50 is None:
        return ComparisonRow(name, False, cur, cand, None, "no objects",
                             f"holdout {name}: no labelled objects, AP50 undefined")
    delta = _delta(cur.ap50, cand.ap50)
    if delta < -tolerance_ap50:
        verdict = "worse" if delta < 0 else "too little gain"
        limit = (f"worse than the tolerance {tolerance_ap50:g}" if tolerance_ap50 >= 0
                 else f"short of the gain {-tolerance_ap50:g} a negative tolerance requires")
        return ComparisonRow(name, False, cur, cand, delta, verdict,
                             f"holdout {name}: AP50 {cur.ap50:.3f} -> {cand.ap50:.3f} ({delta:+.3f}), {limit}")
    verdict = "better" if delta > 0 else "same" if delta == 0 else "within tolerance"
    return ComparisonRow(name, False, cur, cand, delta, verdict)


def _reviewed_row(cur: HoldoutScore, cand: HoldoutScore, min_gain_ap50: float) -> ComparisonRow:
    name = cur.name
    if cur.ap50 is not None and cand.ap50 is not None:
        delta = _delta(cur.ap50, cand.ap50)
        if delta > min_gain_ap50:
            return ComparisonRow(name, True, cur, cand, delta, "better")
        return ComparisonRow(name, True, cur, cand, delta, "not better",
                             f"reviewed data {name}: AP50 {cur.ap50:.3f} -> {cand.ap50:.3f} ({delta:+.3f}), not "
                             f"better by more than {min_gain_ap50:g}")
    cur_fp, cand_fp = cur.false_boxes_per_negative_image, cand.false_boxes_per_negative_image
    if cur.instances == 0 and cand.instances == 0 and cur_fp is not None and cand_fp is not None:
        # Only hard negatives (rejected cases): AP is undefined, fewer false boxes is what "better" means.
        if cand_fp < cur_fp:
            return ComparisonRow(name, True, cur, cand, None, "better")
        return ComparisonRow(name, True, cur, cand, None, "not better",
                             f"reviewed data {name}: false boxes per negative image {cur_fp:.2f} -> {cand_fp:.2f}, "
                             "not fewer")
    return ComparisonRow(name, True, cur, cand, None, "no objects",
                         f"reviewed data {name}: neither labelled objects nor counted negative images: cannot show "
                         "the candidate is better")


# --- the table ------------------------------------------------------------------------------------------------


def comparison_json(decision: RetrainDecision, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The decision as a JSON-ready dict (what ``retrain.json`` holds), with `context` (models, data, times)."""

    def score(s: HoldoutScore | None) -> dict[str, Any] | None:
        if s is None:
            return None
        return {"images": s.images, "instances": s.instances, "ap50": _round(s.ap50), "ap50_95": _round(s.ap50_95),
                "negative_images": s.negative_images, "false_boxes": s.false_boxes,
                "per_class_ap50": {k: round(v, 4) for k, v in s.per_class_ap50.items()}}

    return {
        **dict(context or {}),
        "release": decision.release,
        "reasons": list(decision.reasons),
        "tolerance_ap50": decision.tolerance_ap50,
        "min_gain_ap50": decision.min_gain_ap50,
        "holdouts": [{"name": r.name, "role": "reviewed" if r.reviewed else "holdout", "verdict": r.verdict,
                      "delta_ap50": r.delta_ap50, "reason": r.reason, "current": score(r.current),
                      "candidate": score(r.candidate)} for r in decision.rows],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def comparison_markdown(decision: RetrainDecision, title: str = "Retraining comparison",
                        context: Mapping[str, Any] | None = None) -> str:
    """The decision as a markdown table (what ``retrain.md`` holds).

    Example:
        >>> cur = [HoldoutScore("bikes", False, 20, 30, 0.90), HoldoutScore("reviewed", True, 8, 9, 0.40)]
        >>> cand = [HoldoutScore("bikes", False, 20, 30, 0.90), HoldoutScore("reviewed", True, 8, 9, 0.40)]
        >>> print(comparison_markdown(compare(cur, cand, 0.01)).splitlines()[-1])
        | reviewed | reviewed | 8 | 9 | 0.400 | 0.400 | +0.000 | – | not better |
    """
    lines = [f"# {title}", ""]
    if context:
        lines += [f"- {key}: {value}" for key, value in context.items()] + [""]
    verdict = "**released**" if decision.release else "**not released**"
    lines += [(f"Decision: {verdict} (tolerance {decision.tolerance_ap50:g} AP50 on each holdout; "
               f"the reviewed data must gain more than {decision.min_gain_ap50:g})."), ""]
    lines += [f"- {r}" for r in decision.reasons]
    lines += ["", ("| holdout | role | images | objects | current AP50 | candidate AP50 | Δ AP50 "
                   "| false boxes / negative image | verdict |"),
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in decision.rows:
        ref = r.current or r.candidate
        fp = "–"
        if r.current is not None and r.candidate is not None and (
                r.current.false_boxes_per_negative_image is not None
                or r.candidate.false_boxes_per_negative_image is not None):
            fp = (f"{_fmt(r.current.false_boxes_per_negative_image, 2)} → "
                  f"{_fmt(r.candidate.false_boxes_per_negative_image, 2)}")
        delta = "–" if r.delta_ap50 is None else f"{r.delta_ap50:+.3f}"
        lines.append(f"| {r.name} | {'reviewed' if r.reviewed else 'holdout'} | {ref.images} | {ref.instances} "
                     f"| {_fmt(r.current.ap50 if r.current else None)} "
                     f"| {_fmt(r.candidate.ap50 if r.candidate else None)} | {delta} | {fp} | {r.verdict} |")
    return "\n".join(lines)


# --- I/O ------------------------------------------------------------------------------------------------------


def check_holdouts(holdouts: Iterable[Holdout]) -> None:
    """Fail before any training when a holdout's data or split is missing.

    Raises:
        RetrainError: Naming the holdout, its data file and the problem.
    """
    from datasets.yolo import DatasetError, load_dataset

    for h in holdouts:
        try:
            ds = load_dataset(h.data_yaml)
        except DatasetError as exc:
            raise RetrainError(f"holdout {h.name}: {exc} (leave it out with --skip-holdout {h.name})") from None
        if h.split not in ds.splits:
            raise RetrainError(f"holdout {h.name}: {h.data_yaml} has no split {h.split!r} "
                               f"(has {', '.join(ds.splits) or 'none'})")


def score_holdout(model: OnnxDetector, holdout: Holdout,
                  progress: Callable[[Iterable], Iterable] = lambda it: it) -> tuple[HoldoutScore, EvalRun]:
    """Evaluate `model` on `holdout` with streetwatch's runtime (`datasets.evaluate.evaluate_model`).

    On the reviewed data it also counts the boxes the model draws, at its card's thresholds, on images without
    labelled objects (rejected cases): what a reviewer would see again as a false case.
    """
    from datasets.evaluate import evaluate_model
    from datasets.yolo import load_dataset
    from detector.imageio import read_image
    from detector.runtime.tiling import TilingConfig

    run = evaluate_model(model, holdout.data_yaml, holdout.split, only_unseen_sources=holdout.unseen_sources,
                         tiled=TilingConfig() if holdout.tiled else None, progress=progress)
    report = run.report
    negatives, false_boxes = 0, None
    if holdout.reviewed:
        false_boxes = 0
        for item in load_dataset(holdout.data_yaml).splits[holdout.split]:
            if len(item) == 0:
                negatives += 1
                false_boxes += len(model.detect(read_image(item.image_path)))
    present = report.overall.instances > 0
    score = HoldoutScore(
        name=holdout.name, reviewed=holdout.reviewed, images=report.n_images, instances=report.overall.instances,
        ap50=report.overall.ap50 if present else None, ap50_95=report.overall.ap50_95 if present else None,
        negative_images=negatives, false_boxes=false_boxes,
        per_class_ap50={r.name: r.ap50 for r in report.classes if r.instances})
    return score, run


def write_comparison(decision: RetrainDecision, folder: Path, context: Mapping[str, Any] | None = None,
                     title: str = "Retraining comparison") -> tuple[Path, Path]:
    """Write ``retrain.md`` and ``retrain.json`` into `folder` (beside the candidate's card)."""
    folder.mkdir(parents=True, exist_ok=True)
    md_path, json_path = folder / "retrain.md", folder / "retrain.json"
    md_path.write_text(comparison_markdown(decision, title, context) + "\n", encoding="utf-8")
    json_path.write_text(json.dumps(comparison_json(decision, context), indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    return md_path, json_path


def summarise_in_card(card_yaml: Path, holdouts: Sequence[Holdout], runs: Mapping[str, EvalRun],
                      decision: RetrainDecision, retrain_facts: Mapping[str, Any]) -> ModelCard:
    """Record the candidate's holdout results and the comparison in its card.

    Each holdout becomes a ``metrics`` entry the next retraining reads back (`holdouts_from_card`), with
    ``tiled`` written out; ``training.retrain`` holds the decision, one line per holdout and where the table is;
    the notes start with a one-line summary.
    """
    from datasets.release import add_metrics, write_card
    from detector.runtime.card import load_card

    for h in holdouts:
        if h.name in runs:
            add_metrics(card_yaml, h.name, runs[h.name].report, h.describe(),
                        note="computed by streetwatch retrain; retrain.json")
    card = load_card(card_yaml)
    metrics = {k: ({**v, "tiled": True} if any(h.name == k and h.tiled for h in holdouts) else v)
               for k, v in card.metrics.items()}
    rows = {r.name: {"role": "reviewed" if r.reviewed else "holdout", "verdict": r.verdict,
                     "current_ap50": _round(r.current.ap50) if r.current else None,
                     "candidate_ap50": _round(r.candidate.ap50) if r.candidate else None,
                     "delta_ap50": r.delta_ap50} for r in decision.rows}
    training = {**card.training, "retrain": {**dict(retrain_facts), "passed": decision.release,
                                             "tolerance_ap50": decision.tolerance_ap50,
                                             "min_gain_ap50": decision.min_gain_ap50,
                                             "reasons": list(decision.reasons), "holdouts": rows,
                                             "table": "retrain.md, retrain.json"}}
    notes = card.notes
    if isinstance(card.training.get("retrain"), dict) and notes.startswith(_NOTE_PREFIX):
        notes = notes.split("\n", 1)[1] if "\n" in notes else ""  # judged again (--candidate): one summary line
    line = (f"{_NOTE_PREFIX} from {retrain_facts.get('from', 'the previous model')} on reviewer "
            f"decisions ({retrain_facts.get('reviewed_cases', '?')} reviewed cases); comparison with it on "
            f"{len(decision.rows)} holdouts in retrain.md: "
            + "; ".join(f"{r.name} {_fmt(r.current.ap50 if r.current else None)} -> "
                        f"{_fmt(r.candidate.ap50 if r.candidate else None)}" for r in decision.rows) + ".")
    card = card.model_copy(update={"metrics": metrics, "training": training, "notes": f"{line}\n{notes}".strip()})
    write_card(card, card_yaml.parent)
    return card


def install_candidate(candidate_dir: Path, models_root: Path, name: str) -> Path:
    """Move the candidate's folder into place as ``models_root/name``; the replaced model is kept.

    The replaced folder moves to ``models_root/<name>.previous/<its version>`` (``-2``, ``-3`` ... when a version
    is there already), so every replaced model stays until someone deletes it; roll back by moving it back (see
    the module docstring). When the candidate cannot be moved, the previous model is put back.

    Returns:
        Where the replaced model now is.
    """
    from detector.runtime.card import load_card

    target = models_root / name
    if not (target / "card.yaml").is_file():
        raise RetrainError(f"{target}: no current model to replace (no card.yaml)")
    version = re.sub(r"[^A-Za-z0-9._-]+", "-", load_card(target / "card.yaml").version) or "0"
    history = models_root / f"{name}.previous"
    history.mkdir(parents=True, exist_ok=True)
    kept = history / version
    n = 2
    while kept.exists():
        kept = history / f"{version}-{n}"
        n += 1
    os.replace(target, kept)  # same folder tree: a rename, never a half-copied model
    try:
        shutil.move(str(candidate_dir), str(target))
    except BaseException:
        if target.exists():
            shutil.rmtree(target)
        os.replace(kept, target)
        raise
    return kept
