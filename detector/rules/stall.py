"""Street-stall occupation (占道经营 / 店外经营): a stall standing where vending is not allowed now.

The kind's one home: its zone kinds, default classes and bounded parameters are declared here; the service's
kind catalogue (`service.kinds`) adds its category code, titles and colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detector.rules.base import (BaseRule, Finding, FrameView, RuleParams, TrackView, components, group_findings,
                                 intersection_px2, override, param, register_rule)
from detector.zones import Zone, ZoneKind

__all__ = ["STALL_CLASSES", "StallOccupationRule", "StallRuleParams", "overlap_groups"]

STALL_CLASSES: tuple[str, ...] = ("stall",)


@dataclass(frozen=True)
class StallRuleParams(RuleParams):
    """`RuleParams` plus merging of one stall's parts.

    Attributes:
        merge_overlap: Due stall boxes in one zone whose intersection covers at least this fraction of the
            smaller box are one stall (a canopy and the table under it, or a stall the detector splits in
            two), so it is reported once. 1.0 merges only a box lying wholly inside another.
    """

    classes: frozenset[str] = override(RuleParams, "classes", frozenset(STALL_CLASSES),
                                       "Pipeline classes that are stalls.")
    min_dwell_s: float = override(RuleParams, "min_dwell_s", 300.0, "Seconds a stall must stand in a forbidden place.")
    merge_overlap: float = param(0.3, 0.0, 1.0, "Stall boxes in one zone overlapping by this fraction of the smaller "
                                                "box are one stall, reported once (1: only a box wholly inside "
                                                "another).", lo_open=True)


@register_rule
class StallOccupationRule(BaseRule):
    """A stall standing in a no-vending place: 占道经营 / 店外经营.

    Due for a track of one of `params.classes` when its anchor is inside an active ``no_vending`` zone, or
    inside a ``vending_allowed`` zone outside its hours (which then counts as no-vending), and not inside any
    ``vending_allowed`` zone in its hours; it is stationary; the place has been forbidden for it for at
    least ``min_dwell_s`` (counted from when it entered, or when the vending hours or enforcement hours
    ended: vendors get the same grace to pack up); and its median recent score is at least ``min_score``.
    One violation per stall: due tracks in one zone whose boxes overlap by ``merge_overlap`` of the smaller box
    are one stall seen as several parts (`overlap_groups`).
    """

    kind: ClassVar[str] = "stall_occupation"
    zone_kinds: ClassVar[frozenset[ZoneKind]] = frozenset({ZoneKind.NO_VENDING, ZoneKind.VENDING_ALLOWED})
    params_type: ClassVar[type[RuleParams]] = StallRuleParams
    default_classes: ClassVar[tuple[str, ...]] = STALL_CLASSES

    def forbidding_zone(self, frame: FrameView, track: TrackView) -> Zone | None:
        """The zone that makes the track's place forbidden now, or None when it may stand there."""
        if frame.zones_of(track, [ZoneKind.VENDING_ALLOWED], active=True):
            return None
        for zone in frame.zones_of(track, self.zone_kinds):
            if not self._uses(zone):
                continue
            active = zone.zone_id in frame.active_zone_ids
            if (zone.kind == ZoneKind.NO_VENDING and active) or (zone.kind == ZoneKind.VENDING_ALLOWED and not active):
                return zone
        return None

    def evaluate(self, frame: FrameView) -> list[Finding]:
        self._forget_absent(frame)
        in_force = self.in_force(frame.ts)
        by_zone: dict[str, list[tuple[TrackView, float]]] = {}
        for track in frame.tracks:
            if track.class_name not in self.params.classes:
                continue
            zone = self.forbidding_zone(frame, track) if in_force else None
            since_s = self._holds(frame, track.track_id, zone is not None)
            if since_s is None:
                continue
            dwell_s = frame.observed_s(since_s, track.last_seen_s)  # a camera outage adds no dwell
            if (dwell_s >= self._min_dwell_s(zone) and track.stationary
                    and track.median_score >= self.params.min_score):
                by_zone.setdefault(zone.zone_id, []).append((track, since_s))
        return group_findings(by_zone, lambda xyxy: overlap_groups(xyxy, self.params.merge_overlap))



def overlap_groups(xyxy: np.ndarray, min_overlap: float) -> np.ndarray:
    """(N,) group label of each box: connected components of boxes whose intersection covers at least
    `min_overlap` of the smaller box. Labels are 0..K-1 in order of first box.

    Example:
        >>> overlap_groups(np.array([[0, 0, 10, 10], [5, 0, 15, 10], [9, 0, 19, 10], [30, 0, 40, 10]]), 0.3).tolist()
        [0, 0, 0, 1]
    """
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    area = wh[:, 0] * wh[:, 1]
    smaller = np.minimum(area[:, None], area[None, :])
    inter = intersection_px2(boxes)
    return components((inter > 0) & (inter >= min_overlap * smaller))


