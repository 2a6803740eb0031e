"""Misparked bikes (共享单车乱停放 / 非机动车乱停放): bikes left standing outside the painted parking boxes.

The kind's one home: its zone kinds, default classes and bounded parameters are declared here; the service's
kind catalogue (`service.kinds`) adds its category code, titles and colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detector.rules.base import (BaseRule, Finding, FrameView, RuleParams, TrackView, components, group_findings,
                                 intersection_px2, override, param, register_rule)
from detector.zones import ZoneKind

__all__ = ["BIKE_CLASSES", "BikeMisparkedRule", "BikeRuleParams", "cluster_boxes"]

BIKE_CLASSES: tuple[str, ...] = ("bicycle", "ebike")
"""The classes of a bike case, the kind's own class first."""


@dataclass(frozen=True)
class BikeRuleParams(RuleParams):
    """`RuleParams` plus clustering.

    Attributes:
        cluster_distance: Two bikes belong to one cluster when their anchors are at most this many box
            sizes apart (size = sqrt(w*h) of the larger box), or when their boxes overlap.
    """

    classes: frozenset[str] = override(RuleParams, "classes", frozenset(BIKE_CLASSES),
                                       "Pipeline classes that are bikes.")
    min_dwell_s: float = override(RuleParams, "min_dwell_s", 600.0, "Seconds a bike must stand misparked.")
    # Bikes are small and often partly hidden behind each other: their scores run lower than stalls'.
    min_score: float = override(RuleParams, "min_score", 0.4)
    cluster_distance: float = param(1.0, 0.0, 20.0, "Bikes whose anchors are this many box sizes apart (or closer) "
                                                    "form one cluster.")


@register_rule
class BikeMisparkedRule(BaseRule):
    """Bikes parked outside the painted boxes: 共享单车乱停放 / 非机动车乱停放.

    A track of one of `params.classes` qualifies when its anchor is inside an active ``watch_area`` zone and
    outside every active ``bike_parking`` zone, it is stationary, it has been both misplaced and stationary
    for at least ``min_dwell_s``, and its median recent score is at least ``min_score``. Qualifying bikes in
    one watch area are grouped into clusters (`cluster_boxes`): one violation per cluster, not per bike.
    """

    kind: ClassVar[str] = "bike_misparked"
    zone_kinds: ClassVar[frozenset[ZoneKind]] = frozenset({ZoneKind.WATCH_AREA, ZoneKind.BIKE_PARKING})
    params_type: ClassVar[type[RuleParams]] = BikeRuleParams
    default_classes: ClassVar[tuple[str, ...]] = BIKE_CLASSES

    def evaluate(self, frame: FrameView) -> list[Finding]:
        self._forget_absent(frame)
        in_force = self.in_force(frame.ts)
        by_zone: dict[str, list[tuple[TrackView, float]]] = {}
        for track in frame.tracks:
            if track.class_name not in self.params.classes:
                continue
            watch = [z for z in frame.zones_of(track, [ZoneKind.WATCH_AREA], active=True) if self._uses(z)]
            in_box = frame.zones_of(track, [ZoneKind.BIKE_PARKING], active=True)
            since_s = self._holds(frame, track.track_id, in_force and bool(watch) and not in_box)
            if since_s is None or not track.stationary or track.stationary_since_s is None:
                continue
            # Misplaced *and* standing still: a bike wheeled across the square is neither.
            start_s = max(since_s, track.stationary_since_s)
            if (frame.observed_s(start_s, track.last_seen_s) >= self._min_dwell_s(watch[0])
                    and track.median_score >= self.params.min_score):
                by_zone.setdefault(watch[0].zone_id, []).append((track, start_s))
        return group_findings(by_zone, lambda xyxy: cluster_boxes(xyxy, self.params.cluster_distance))



def cluster_boxes(xyxy: np.ndarray, cluster_distance: float) -> np.ndarray:
    """(N,) cluster label of each box: connected components of "close" boxes.

    Two boxes are close when they overlap, or when their bottom-centre anchors are at most
    `cluster_distance` × the larger box's size (sqrt(w*h)) apart. Labels are 0..K-1 in order of first box.

    Example:
        >>> cluster_boxes(np.array([[0, 0, 10, 10], [12, 0, 22, 10], [100, 0, 110, 10]]), 1.5).tolist()
        [0, 0, 1]
    """
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    size = np.sqrt(wh[:, 0] * wh[:, 1])
    anchor = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
    dist = np.linalg.norm(anchor[:, None, :] - anchor[None, :, :], axis=2)
    near = dist <= cluster_distance * np.maximum(size[:, None], size[None, :])
    return components(near | (intersection_px2(boxes) > 0))

