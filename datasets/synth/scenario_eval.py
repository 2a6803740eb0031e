"""Scoring a pipeline run against a scenario clip's ground-truth timeline.

A scenario passes when every expected violation is reported, of the right kind and zone, no later than
`tolerance_s` after it became due (appear + min_dwell_s), and nothing else is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detector.rules import RULES

__all__ = ["config_for_timeline", "score_run", "ScenarioScore"]


def config_for_timeline(timeline: dict, model: str, conf: float | None = 0.1, tracker: dict | None = None,
                        min_score: float | None = None) -> dict:
    """An AppConfig-shaped dict for the scenario's camera: its zones, their dwell times and schedules.

    Args:
        timeline: The scenario's ground truth.
        model: Model name.
        conf: Detector threshold (low: weak boxes keep tracks alive).
        tracker: Tracker settings (thresholds suit the model's score calibration).
        min_score: The rules' threshold on a track's median score (None: the rule defaults).
    """
    zones, dwell = [], {}
    for z in timeline["zones"]:
        entry: dict[str, Any] = {"id": z["id"], "kind": z["kind"], "polygon": z["polygon_norm"]}
        if z.get("schedule"):
            s = z["schedule"]
            entry["schedule"] = [{"days": s["days"], "start": s["start"], "end": s["end"]}]
        zones.append(entry)
        if z.get("min_dwell_s") is not None:
            dwell.setdefault(z["kind"], z["min_dwell_s"])
    # Every rule kind waits as long as the zones it reads ask (the first such zone kind with a dwell), else its
    # own default (the rule module's declaration).
    rules: dict[str, dict[str, Any]] = {}
    for kind, rule in RULES.items():
        asked = [dwell[k.value] for k in sorted(rule.zone_kinds, key=lambda k: k.value) if k.value in dwell]
        default_s = rule.params_type.__dataclass_fields__["min_dwell_s"].default
        rules[kind] = {"min_dwell_s": asked[0] if asked else default_s}
    if min_score is not None:
        for rule in rules.values():
            rule["min_score"] = min_score
    model_cfg: dict[str, Any] = {"name": model}
    if conf is not None:
        model_cfg["conf"] = conf
    return {
        "config_version": 1,
        "model": model_cfg,
        **({"tracker": dict(tracker)} if tracker else {}),
        "rules": rules,
        "cameras": [{
            "id": timeline["camera"]["id"],
            "name": f"scenario {timeline['name']}",
            "source": "push",
            "timezone": timeline.get("timezone", "UTC"),
            "sample_fps": 1,
            # a camera whose objects are small (far_bikes_4min) runs tiled, as its operator would set it up
            **({"model": {**model_cfg, "tile": True}} if timeline["camera"].get("tile") else {}),
            "zones": zones,
        }],
    }


@dataclass
class ScenarioScore:
    expected: int
    found: list[dict] = field(default_factory=list)  # expected violation + report delay
    missed: list[dict] = field(default_factory=list)
    late: list[dict] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missed and not self.late and not self.unexpected


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def score_run(timeline: dict, records: list[dict], tolerance_s: float = 10.0) -> ScenarioScore:
    """Match reported violations (JSON lines of `streetwatch run`) to the expected ones.

    A report matches an expected violation of the same kind and zone; it is in time when it was opened
    (`opened_at`: the frame on which the engine declared it due) no later than due_s + tolerance_s.
    """
    start = _ts(timeline["start_utc"])
    score = ScenarioScore(expected=len(timeline["expected_violations"]))
    unused = list(records)
    for exp in timeline["expected_violations"]:
        due = start + timedelta(seconds=exp["due_s"])
        match = next((r for r in unused if r["kind"] == exp["kind"] and r["zone"] == exp["zone_id"]), None)
        if match is None:
            score.missed.append(exp)
            continue
        unused.remove(match)
        reported = _ts(match["opened_at"] or match["last_seen"])
        delay_s = (reported - due).total_seconds()
        row = {**exp, "delay_s": round(delay_s, 1), "violation_id": match["violation_id"]}
        (score.found if delay_s <= tolerance_s else score.late).append(row)
    score.unexpected = unused
    return score
