"""Rules that turn tracked objects in zones into violations, and the per-camera engine that runs them.

``RuleEngine.update(ts, detections, frame_wh_px) -> list[Violation]`` takes one sample's tracked detections
(the output of `detector.tracking.Tracker.update`) and returns the violation *events* of that sample.

Contract with the service that turns violations into cases
-------------------------------------------------------------
* Every violation has a ``violation_id``, unique across restarts of the engine (it holds the camera, kind,
  zone, first-seen time and a sequence number). Its events arrive in order: exactly one ``opened``, then
  zero or more ``updated``, then exactly one ``closed`` (unless the engine is discarded first).
* ``opened`` is emitted once, on the sample where the violation first becomes due (dwell reached, score
  steady, object stationary). The service creates a candidate case keyed by ``violation_id`` and takes its
  evidence from the current frame; ``last_seen`` names that frame's time.
* ``updated`` is emitted when the violation's member tracks change (a bike joins or leaves a cluster), and
  otherwise at most every ``update_interval_s`` while it is still observed. The service updates the case
  (``last_seen``, ``dwell_s``, boxes) and need not keep anything else: each event is a full snapshot.
* ``closed`` is emitted once the condition has not been observed for ``end_grace_s`` (the object left,
  moved, was packed up, the schedule ended). ``last_seen`` is the last time it *was* observed, so
  ``dwell_s`` = last_seen − first_seen does not include the grace period. A violation absorbed by another
  (two clusters merged) closes at once with ``merged_into`` naming the survivor.
* Absence is not an end: a stall hidden behind a bus keeps its track (the tracker re-attaches it) and its
  violation stays open as long as it is seen again within ``end_grace_s``. After a close, the same
  tracks cannot open a new violation in the same zone for ``cooldown_s``.
* `finish(ts)` closes everything (end of a file or a drone flight). A live camera that stops is simply
  discarded: its violations stay open in the service until it resumes or a reviewer closes them.

Times come only from frame timestamps. A `RuleEngine` holds one camera's state: use one per camera.
New kinds of rule implement the `Rule` protocol and register with `register_rule`; the engine and the
configuration find them in `RULES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, ClassVar, Iterable, Literal, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

import numpy as np

from detector.schedule import WeeklySchedule
from detector.types import Detections
from detector.zones import PolygonZone, Zone, ZoneKind

__all__ = [
    "RULES",
    "BikeMisparkedRule",
    "BikeRuleParams",
    "Finding",
    "FrameView",
    "Rule",
    "RuleEngine",
    "RuleParams",
    "StallOccupationRule",
    "StallRuleParams",
    "TrackView",
    "Violation",
    "cluster_boxes",
    "make_rule",
    "overlap_groups",
    "register_rule",
]

ViolationEvent = Literal["opened", "updated", "closed"]
ViolationStatus = Literal["open", "closed"]
# Columns the engine reads from the tracker's output (see detector.tracking.TRACK_COLUMNS).
_REQUIRED_COLUMNS = ("stationary", "stationary_since_s", "median_score")


@dataclass(frozen=True, eq=False)  # holds an array: compare fields, not objects
class Violation:
    """A snapshot of one violation at one event; see the module docstring for the event contract.

    Attributes:
        violation_id: Stable key of the violation across its events (dedupe / upsert key).
        kind: Rule kind, e.g. ``stall_occupation`` or ``bike_misparked``.
        event: ``opened``, ``updated`` or ``closed``.
        status: ``open`` for opened/updated events, ``closed`` for the closed event.
        camera_id: Camera the violation was seen by.
        zone_id: Zone it happens in (the no-vending zone; the watch area of a bike cluster).
        track_ids: Member track ids (one stall; every bike of a cluster), ascending.
        first_seen: UTC time the condition started (dwell counts from here).
        last_seen: UTC time it was last observed.
        dwell_s: ``last_seen - first_seen`` in seconds.
        xyxy: (N, 4) float32 last known box of each member, frame pixels, in `track_ids` order.
        score: Median of the members' median recent scores.
        class_names: Class of each member, in `track_ids` order.
        merged_into: For a violation closed because another absorbed it, that one's id.
    """

    violation_id: str
    kind: str
    event: ViolationEvent
    status: ViolationStatus
    camera_id: str
    zone_id: str
    track_ids: tuple[int, ...]
    first_seen: datetime
    last_seen: datetime
    dwell_s: float
    xyxy: np.ndarray
    score: float
    class_names: tuple[str, ...]
    merged_into: str | None = None

    def __post_init__(self) -> None:
        expected = "closed" if self.event == "closed" else "open"
        if self.status != expected:
            raise ValueError(f"Violation {self.violation_id}: event {self.event!r} needs status {expected!r}")
        if self.xyxy.shape != (len(self.track_ids), 4):
            raise ValueError(f"Violation {self.violation_id}: xyxy shape {self.xyxy.shape} does not match "
                             f"{len(self.track_ids)} tracks")


# --- what rules see -------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TrackView:
    """What the engine knows about one track, from its latest sample.

    Attributes:
        track_id: Tracker id.
        class_name: Pipeline class (``stall``, ``bicycle``, ``ebike``, …) after the engine's class map.
        xyxy: (4,) last box, frame pixels.
        median_score: Median of the track's recent scores.
        stationary: Whether the tracker considers it stationary.
        stationary_since_s: Since when it has stood still (s), or None.
        last_seen_s: Timestamp of its latest sample; equals the frame's when `seen_now`.
        seen_now: Detected in the current sample (else remembered, within the longest end_grace_s).
        zone_ids: Zones its anchor is inside (after inertia), whatever their schedules say.
    """

    track_id: int
    class_name: str
    xyxy: np.ndarray
    median_score: float
    stationary: bool
    stationary_since_s: float | None
    last_seen_s: float
    seen_now: bool
    zone_ids: frozenset[str]


@dataclass(frozen=True)
class FrameView:
    """One sample as rules see it: time, remembered tracks (minus excluded ones), zones and their schedules."""

    ts: datetime
    ts_s: float
    tracks: tuple[TrackView, ...]
    zones: tuple[Zone, ...]
    active_zone_ids: frozenset[str]

    def zones_of(self, track: TrackView, kinds: Iterable[ZoneKind], active: bool | None = None) -> list[Zone]:
        """Zones of the given kinds the track is inside, in configuration order; filtered by schedule state."""
        kinds = frozenset(kinds)
        return [
            z for z in self.zones
            if z.kind in kinds and z.zone_id in track.zone_ids
            and (active is None or (z.zone_id in self.active_zone_ids) == active)
        ]


@dataclass(frozen=True)
class Finding:
    """A rule's verdict for one sample: these tracks violate in this zone, since `since_s`."""

    zone_id: str
    track_ids: frozenset[int]
    since_s: float


# --- rules ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleParams:
    """Parameters every rule has.

    Attributes:
        classes: Pipeline class names the rule looks at.
        min_dwell_s: Seconds the condition must hold before a violation opens (a zone may override it).
        min_score: Minimum median of a track's recent scores.
        cooldown_s: After a close, the same tracks cannot open a new violation in that zone for this long.
        end_grace_s: A violation closes once its condition has not been observed for this long.
        update_interval_s: Most frequent periodic ``updated`` event of an open violation.
        schedule: When the rule is enforced (None: always). Outside it nothing is due and dwell restarts.
        zone_ids: Only these zones (None: every zone of the kinds the rule reads).
    """

    classes: frozenset[str]
    min_dwell_s: float = 300.0
    min_score: float = 0.5
    cooldown_s: float = 600.0
    end_grace_s: float = 120.0
    update_interval_s: float = 60.0
    schedule: WeeklySchedule | None = None
    zone_ids: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", frozenset(self.classes))
        if self.zone_ids is not None:
            object.__setattr__(self, "zone_ids", frozenset(self.zone_ids))
        if not self.classes:
            raise ValueError(f"{type(self).__name__}: classes must not be empty")
        week_s = 7 * 86400.0
        for name, lo, hi in (("min_dwell_s", 0.0, week_s), ("min_score", 0.0, 1.0), ("cooldown_s", 0.0, week_s),
                             ("end_grace_s", 0.0, 86400.0), ("update_interval_s", 1.0, 86400.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{type(self).__name__}: {name} must lie within [{lo:g}, {hi:g}], got {value!r}")


@dataclass(frozen=True)
class BikeRuleParams(RuleParams):
    """`RuleParams` plus clustering.

    Attributes:
        cluster_distance: Two bikes belong to one cluster when their anchors are at most this many box
            sizes apart (size = sqrt(w*h) of the larger box), or when their boxes overlap.
    """

    cluster_distance: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.cluster_distance <= 20.0:
            raise ValueError(f"BikeRuleParams: cluster_distance must lie within [0, 20], got {self.cluster_distance}")


@dataclass(frozen=True)
class StallRuleParams(RuleParams):
    """`RuleParams` plus merging of one stall's parts.

    Attributes:
        merge_overlap: Due stall boxes in one zone whose intersection covers at least this fraction of the
            smaller box are one stall (a canopy and the table under it, or a stall the detector splits in
            two), so it is reported once. 1.0 merges only a box lying wholly inside another.
    """

    merge_overlap: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.merge_overlap <= 1.0:
            raise ValueError(f"StallRuleParams: merge_overlap must lie within (0, 1], got {self.merge_overlap}")


@runtime_checkable
class Rule(Protocol):
    """What the engine needs from a rule. One instance per camera (rules keep per-track state).

    Attributes:
        kind: The violation kind it reports (key in `RULES` and in category codes).
        zone_kinds: Zone kinds it reads (the configuration checks a camera has them).
        params_type: Its parameter dataclass.
        params: Its parameters.
    """

    kind: ClassVar[str]
    zone_kinds: ClassVar[frozenset[ZoneKind]]
    params_type: ClassVar[type[RuleParams]]
    params: RuleParams

    def evaluate(self, frame: FrameView) -> list[Finding]:
        """The violations that are due in this sample (each a set of tracks in one zone)."""
        ...


RuleT = TypeVar("RuleT", bound=type)
RULES: dict[str, type] = {}


def register_rule(cls: RuleT) -> RuleT:
    """Class decorator adding a rule class to `RULES` under its `kind`.

    Example:
        >>> @register_rule
        ... class LoiteringRule(StallOccupationRule):
        ...     kind = "loitering_example"
        >>> "loitering_example" in RULES
        True
        >>> del RULES["loitering_example"]
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} needs a class attribute `kind`")
    if kind in RULES and RULES[kind] is not cls:
        raise ValueError(f"rule kind {kind!r} is already registered by {RULES[kind].__name__}")
    RULES[kind] = cls
    return cls


class _BaseRule:
    """Shared plumbing: parameters, schedule and a per-track "condition holds since" memory."""

    kind: ClassVar[str] = ""
    zone_kinds: ClassVar[frozenset[ZoneKind]] = frozenset()
    params_type: ClassVar[type[RuleParams]] = RuleParams

    def __init__(self, params: RuleParams):
        if not isinstance(params, self.params_type):
            raise TypeError(f"{type(self).__name__} needs {self.params_type.__name__}, got {type(params).__name__}")
        self.params = params
        self._since_s: dict[int, float] = {}

    def in_force(self, ts: datetime) -> bool:
        return self.params.schedule is None or self.params.schedule.active(ts)

    def _uses(self, zone: Zone) -> bool:
        return self.params.zone_ids is None or zone.zone_id in self.params.zone_ids

    def _min_dwell_s(self, zone: Zone) -> float:
        return self.params.min_dwell_s if zone.min_dwell_s is None else zone.min_dwell_s

    def _holds(self, frame: FrameView, track_id: int, holds: bool) -> float | None:
        """Record whether the condition holds for a track now; returns since when it has held, or None."""
        if not holds:
            self._since_s.pop(track_id, None)
            return None
        return self._since_s.setdefault(track_id, frame.ts_s)

    def _forget_absent(self, frame: FrameView) -> None:
        present = {t.track_id for t in frame.tracks}
        for tid in [tid for tid in self._since_s if tid not in present]:
            del self._since_s[tid]


@register_rule
class StallOccupationRule(_BaseRule):
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
            dwell_s = track.last_seen_s - since_s
            if (dwell_s >= self._min_dwell_s(zone) and track.stationary
                    and track.median_score >= self.params.min_score):
                by_zone.setdefault(zone.zone_id, []).append((track, since_s))
        return _group_findings(by_zone, lambda xyxy: overlap_groups(xyxy, self.params.merge_overlap))


@register_rule
class BikeMisparkedRule(_BaseRule):
    """Bikes parked outside the painted boxes: 共享单车乱停放 / 非机动车乱停放.

    A track of one of `params.classes` qualifies when its anchor is inside an active ``watch_area`` zone and
    outside every active ``bike_parking`` zone, it is stationary, it has been both misplaced and stationary
    for at least ``min_dwell_s``, and its median recent score is at least ``min_score``. Qualifying bikes in
    one watch area are grouped into clusters (`cluster_boxes`): one violation per cluster, not per bike.
    """

    kind: ClassVar[str] = "bike_misparked"
    zone_kinds: ClassVar[frozenset[ZoneKind]] = frozenset({ZoneKind.WATCH_AREA, ZoneKind.BIKE_PARKING})
    params_type: ClassVar[type[RuleParams]] = BikeRuleParams

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
            if (track.last_seen_s - start_s >= self._min_dwell_s(watch[0])
                    and track.median_score >= self.params.min_score):
                by_zone.setdefault(watch[0].zone_id, []).append((track, start_s))
        return _group_findings(by_zone, lambda xyxy: cluster_boxes(xyxy, self.params.cluster_distance))


def _group_findings(by_zone: Mapping[str, list[tuple[TrackView, float]]],
                    label: Callable[[np.ndarray], np.ndarray]) -> list[Finding]:
    """One finding per group of due tracks in each zone (`label` gives each box its group), due since the
    earliest member."""
    findings = []
    for zone_id, members in by_zone.items():
        labels = label(np.stack([t.xyxy for t, _ in members]))
        for k in np.unique(labels):
            group = [members[i] for i in np.flatnonzero(labels == k)]
            findings.append(Finding(zone_id, frozenset(t.track_id for t, _ in group), min(s for _, s in group)))
    return findings


def _components(adjacent: np.ndarray) -> np.ndarray:
    """(N,) connected-component label of each node of a symmetric (N, N) adjacency matrix; labels are 0..K-1
    in order of first node."""
    n = len(adjacent)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(adjacent, 1))):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = [root(i) for i in range(n)]
    relabel = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return np.array([relabel[r] for r in roots], np.int64)


def _intersection_px2(boxes: np.ndarray) -> np.ndarray:
    ix = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    iy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    return np.clip(ix, 0, None) * np.clip(iy, 0, None)


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
    inter = _intersection_px2(boxes)
    return _components((inter > 0) & (inter >= min_overlap * smaller))


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
    return _components(near | (_intersection_px2(boxes) > 0))


# --- engine ---------------------------------------------------------------------------------------------

@dataclass
class _TrackMemory:
    track_id: int
    class_name: str
    xyxy: np.ndarray
    median_score: float
    stationary: bool
    stationary_since_s: float | None
    last_seen_s: float


@dataclass
class _OpenViolation:
    violation_id: str
    kind: str
    zone_id: str
    first_seen_s: float
    last_seen_s: float
    track_ids: tuple[int, ...]
    last_event_s: float
    last_event_seen_s: float
    members: dict[int, _TrackMemory] = field(default_factory=dict)


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, tz=timezone.utc)


class RuleEngine:
    """Runs a camera's rules over its zones, sample by sample; see the module docstring for the contract.

    Args:
        camera_id: Camera the engine serves (goes into every violation).
        zones: The camera's zones (ids unique).
        rules: Rule instances (one per kind at most), e.g. ``[StallOccupationRule(StallRuleParams({"stall"}))]``.
        class_column: `Detections.data` column holding each box's class name (the runtime's ``class_name``).
        class_names: Class names by class id, used when `class_column` is absent.
        class_map: Maps the detector's class names to pipeline classes (a model card's
            ``violation_classes``, e.g. ``{"motorcycle": "ebike"}``); names not in it are kept.

    Example:
        >>> from datetime import datetime, timedelta, timezone
        >>> zone = Zone("nv-1", "no_vending", [(0, 0.5), (1, 0.5), (1, 1), (0, 1)], inertia_samples=1)
        >>> engine = RuleEngine("cam-1", [zone], [StallOccupationRule(StallRuleParams({"stall"}, min_dwell_s=60))],
        ...                     class_names=["stall"])
        >>> t0 = datetime(2026, 6, 1, 8, tzinfo=timezone.utc)
        >>> stall = Detections(xyxy=[[100, 200, 200, 300]], confidence=[0.9], class_id=[0], tracker_id=[4],
        ...                    data={"stationary": [True], "stationary_since_s": [t0.timestamp()],
        ...                          "median_score": [0.9]})
        >>> events = [e for s in range(0, 61, 5)
        ...           for e in engine.update(t0 + timedelta(seconds=s), stall, (640, 360))]
        >>> [(e.event, e.kind, e.zone_id, e.track_ids, e.dwell_s) for e in events]
        [('opened', 'stall_occupation', 'nv-1', (4,), 60.0)]
    """

    def __init__(self, camera_id: str, zones: Sequence[Zone], rules: Sequence[Rule], *,
                 class_column: str = "class_name", class_names: Sequence[str] | Mapping[int, str] | None = None,
                 class_map: Mapping[str, str] | None = None):
        self.camera_id = camera_id
        self.zones = tuple(zones)
        ids = [z.zone_id for z in self.zones]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera {camera_id!r}: duplicate zone ids {duplicates}")
        self.rules = tuple(rules)
        kinds = [r.kind for r in self.rules]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"camera {camera_id!r}: one rule per kind, got {kinds}")
        for rule in self.rules:
            unknown = sorted((rule.params.zone_ids or frozenset()) - set(ids))
            if unknown:
                raise ValueError(f"camera {camera_id!r}: rule {rule.kind} names unknown zones {unknown}")
        self.class_column = class_column
        self._class_names = (dict(class_names) if isinstance(class_names, Mapping)
                             else dict(enumerate(class_names)) if class_names is not None else None)
        self.class_map = dict(class_map or {})
        # Tracks are remembered while unseen as long as any rule could still keep a violation open for them.
        self._memory_s = max((r.params.end_grace_s for r in self.rules), default=0.0)
        self._cooldown_s = max((r.params.cooldown_s for r in self.rules), default=0.0)
        self._polygon_zones: list[PolygonZone] | None = None
        self._tracks: dict[int, _TrackMemory] = {}
        self._zones_of_track: dict[int, frozenset[str]] = {}
        self._open: dict[str, _OpenViolation] = {}
        self._closed_s: dict[tuple[str, str, int], float] = {}
        self._seq = 0
        self._last_ts_s: float | None = None

    # --- public ------------------------------------------------------------------------------------

    def update(self, ts: datetime, detections: Detections, frame_wh_px: tuple[int, int]) -> list[Violation]:
        """Feed one sample; returns the violation events it caused (often none).

        Args:
            ts: The frame's timestamp (timezone-aware); must not go backwards.
            detections: The tracker's output for this frame: ``tracker_id`` and the tracker's data columns
                ``stationary``, ``stationary_since_s`` and ``median_score`` are required.
            frame_wh_px: (width, height) of the frame, to scale the normalised zone polygons.

        Raises:
            ValueError: Untracked detections, a missing column, a naive or backwards timestamp.
        """
        ts_s = self._check_time(ts)
        self._check_columns(detections)
        self._ensure_zones(frame_wh_px)
        names = self._class_names_of(detections)

        inside = np.zeros((len(detections), len(self.zones)), bool)
        for k, pz in enumerate(self._polygon_zones):
            inside[:, k] = pz.trigger(detections)
        since = detections.data["stationary_since_s"].astype(np.float64) if len(detections) else np.zeros(0)
        for row, tid in enumerate(detections.tracker_id.tolist()):
            self._tracks[tid] = _TrackMemory(
                track_id=tid,
                class_name=names[row],
                xyxy=detections.xyxy[row].copy(),
                median_score=float(detections.data["median_score"][row]),
                stationary=bool(detections.data["stationary"][row]),
                stationary_since_s=None if math.isnan(since[row]) else float(since[row]),
                last_seen_s=ts_s,
            )
            self._zones_of_track[tid] = frozenset(z.zone_id for z, hit in zip(self.zones, inside[row]) if hit)
        self._expire_tracks(ts_s)

        active = frozenset(z.zone_id for z in self.zones if z.active(ts))
        excluded = {z.zone_id for z in self.zones if z.kind == ZoneKind.EXCLUSION and z.zone_id in active}
        views = tuple(
            TrackView(m.track_id, m.class_name, m.xyxy, m.median_score, m.stationary, m.stationary_since_s,
                      m.last_seen_s, m.last_seen_s == ts_s, self._zones_of_track.get(m.track_id, frozenset()))
            for m in self._tracks.values()
        )
        # Anything standing in an active exclusion zone (a shop's own forecourt, say) is invisible to rules.
        views = tuple(v for v in views if not (v.zone_ids & excluded))
        frame = FrameView(ts, ts_s, views, self.zones, active)

        events: list[Violation] = []
        for rule in self.rules:
            events.extend(self._reconcile(rule, rule.evaluate(frame), frame))
        self._prune_cooldowns(ts_s)
        return events

    def finish(self, ts: datetime) -> list[Violation]:
        """Close every open violation (the source ended); returns their ``closed`` events."""
        ts_s = self._check_time(ts)
        events = [self._close(v, ts_s) for v in list(self._open.values())]
        return events

    @property
    def open_violations(self) -> list[Violation]:
        """Current snapshots of the open violations (event ``updated``), oldest first."""
        return [self._snapshot(v, "updated") for v in self._open.values()]

    # --- input checks ------------------------------------------------------------------------------

    def _check_time(self, ts: datetime) -> float:
        if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"RuleEngine: ts must be a timezone-aware datetime, got {ts!r}")
        ts_s = ts.timestamp()
        if self._last_ts_s is not None and ts_s < self._last_ts_s:
            raise ValueError(f"RuleEngine: time went backwards: {ts.isoformat()} after "
                             f"{_utc(self._last_ts_s).isoformat()}")
        self._last_ts_s = ts_s
        return ts_s

    def _check_columns(self, detections: Detections) -> None:
        if detections.tracker_id is None:
            raise ValueError("RuleEngine: detections have no tracker_id; pass them through Tracker.update first")
        missing = [c for c in _REQUIRED_COLUMNS if c not in detections.data]
        if missing and len(detections):
            raise ValueError(f"RuleEngine: detections lack the tracker's data columns {missing}")

    def _ensure_zones(self, frame_wh_px: tuple[int, int]) -> None:
        w, h = (int(v) for v in frame_wh_px)
        if w <= 0 or h <= 0:
            raise ValueError(f"RuleEngine: frame size must be positive, got {frame_wh_px}")
        if self._polygon_zones is None:
            self._polygon_zones = [PolygonZone(z, (w, h)) for z in self.zones]
        elif self._polygon_zones and self._polygon_zones[0].frame_wh_px != (w, h):
            for pz in self._polygon_zones:  # the stream changed resolution: rescale, keep memberships
                pz.set_frame_size((w, h))

    def _class_names_of(self, detections: Detections) -> list[str]:
        if self.class_column in detections.data:
            raw = [str(v) for v in detections.data[self.class_column].tolist()]
        elif self._class_names is not None:
            raw = [self._class_names.get(int(c), str(int(c))) for c in detections.class_id]
        elif len(detections):
            raise ValueError(f"RuleEngine: detections have no {self.class_column!r} column "
                             "and no class_names were given")
        else:
            raw = []
        return [self.class_map.get(name, name) for name in raw]

    def _expire_tracks(self, ts_s: float) -> None:
        expired = [tid for tid, m in self._tracks.items() if ts_s - m.last_seen_s > self._memory_s]
        for tid in expired:
            del self._tracks[tid]
            self._zones_of_track.pop(tid, None)
        if expired:
            for pz in self._polygon_zones:
                pz.forget(expired)

    # --- violation life cycle ----------------------------------------------------------------------

    def _reconcile(self, rule: Rule, findings: list[Finding], frame: FrameView) -> list[Violation]:
        params = rule.params
        ts_s = frame.ts_s
        events: list[Violation] = []
        open_now = [v for v in self._open.values() if v.kind == rule.kind]
        matched: dict[int, _OpenViolation] = {}  # finding index -> violation
        pairs = []
        for fi, finding in enumerate(findings):
            for v in open_now:
                overlap = len(finding.track_ids & set(v.track_ids))
                if v.zone_id == finding.zone_id and overlap:
                    pairs.append((-overlap, v.first_seen_s, v.violation_id, fi, v))
        taken: set[str] = set()
        # The violation sharing most tracks keeps its identity; on a tie the older one does.
        for _, _, vid, fi, v in sorted(pairs, key=lambda p: p[:3]):
            if fi in matched or vid in taken:
                continue
            matched[fi] = v
            taken.add(vid)

        for fi, finding in enumerate(findings):
            members = {tid: self._tracks[tid] for tid in sorted(finding.track_ids) if tid in self._tracks}
            if not members:
                continue
            seen_s = max(m.last_seen_s for m in members.values())
            v = matched.get(fi)
            if v is None:
                if seen_s != ts_s or self._cooling_down(rule, finding, ts_s):
                    continue  # open only on a fresh observation, and not straight after a close
                self._seq += 1
                vid = (f"{self.camera_id}:{rule.kind}:{finding.zone_id}:"
                       f"{_utc(finding.since_s):%Y%m%dT%H%M%SZ}:{self._seq}")
                v = _OpenViolation(vid, rule.kind, finding.zone_id, finding.since_s, seen_s, tuple(members), ts_s,
                                   seen_s, members)
                self._open[vid] = v
                events.append(self._snapshot(v, "opened"))
                continue
            changed = tuple(members) != v.track_ids
            v.track_ids, v.members = tuple(members), members
            v.last_seen_s = max(v.last_seen_s, seen_s)
            periodic = ts_s - v.last_event_s >= params.update_interval_s and v.last_seen_s > v.last_event_seen_s
            if changed or periodic:
                v.last_event_s, v.last_event_seen_s = ts_s, v.last_seen_s
                events.append(self._snapshot(v, "updated"))

        survivors = {v.violation_id: set(v.track_ids) for v in matched.values()}
        for v in open_now:
            if v.violation_id in survivors:
                continue
            absorbed_by = next((vid for vid, ids in survivors.items()
                                if self._open[vid].zone_id == v.zone_id and set(v.track_ids) <= ids), None)
            if absorbed_by is not None:
                events.append(self._close(v, ts_s, merged_into=absorbed_by))
        for v in [v for v in self._open.values() if v.kind == rule.kind]:
            if ts_s - v.last_seen_s > params.end_grace_s:
                events.append(self._close(v, ts_s))
        return events

    def _cooling_down(self, rule: Rule, finding: Finding, ts_s: float) -> bool:
        return any(
            ts_s - self._closed_s.get((rule.kind, finding.zone_id, tid), -math.inf) < rule.params.cooldown_s
            for tid in finding.track_ids
        )

    def _close(self, v: _OpenViolation, ts_s: float, merged_into: str | None = None) -> Violation:
        del self._open[v.violation_id]
        for tid in v.track_ids:
            self._closed_s[(v.kind, v.zone_id, tid)] = ts_s
        return self._snapshot(v, "closed", merged_into)

    def _prune_cooldowns(self, ts_s: float) -> None:
        stale = [k for k, closed_s in self._closed_s.items() if ts_s - closed_s > self._cooldown_s]
        for k in stale:
            del self._closed_s[k]

    def _snapshot(self, v: _OpenViolation, event: ViolationEvent, merged_into: str | None = None) -> Violation:
        members = [v.members[tid] for tid in v.track_ids]
        return Violation(
            violation_id=v.violation_id,
            kind=v.kind,
            event=event,
            status="closed" if event == "closed" else "open",
            camera_id=self.camera_id,
            zone_id=v.zone_id,
            track_ids=tuple(v.track_ids),
            first_seen=_utc(v.first_seen_s),
            last_seen=_utc(v.last_seen_s),
            dwell_s=max(0.0, v.last_seen_s - v.first_seen_s),
            xyxy=np.stack([m.xyxy for m in members]).astype(np.float32) if members else np.zeros((0, 4), np.float32),
            score=float(np.median([m.median_score for m in members])) if members else 0.0,
            class_names=tuple(m.class_name for m in members),
            merged_into=merged_into,
        )


def make_rule(kind: str, params: RuleParams) -> Rule:
    """An instance of the registered rule `kind` (raises KeyError naming the known kinds)."""
    try:
        cls: Callable[[RuleParams], Rule] = RULES[kind]
    except KeyError:
        raise KeyError(f"unknown rule kind {kind!r}; known: {sorted(RULES)}") from None
    return cls(params)
