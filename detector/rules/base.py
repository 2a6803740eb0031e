"""What every rule shares: the `Violation` event, what rules see of a sample, parameters, the registry.

The event contract between rules, the engine and the service that turns violations into cases is written once,
in the package docstring (`detector.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterable, Literal, Mapping, Protocol, TypeVar, runtime_checkable

import numpy as np

from detector.schedule import WeeklySchedule
from detector.zones import Zone, ZoneKind

__all__ = [
    "MAX_REPORTED_GAPS", "RULES", "WEEK_S", "BaseRule", "Finding", "FrameView", "Rule", "RuleParams", "TrackView", "Violation", "ViolationEvent",
    "ViolationStatus", "components", "group_findings", "intersection_px2", "make_rule", "observed_s", "override", "param", "param_bounds",
    "param_doc", "register_rule",
]

ViolationEvent = Literal["opened", "updated", "closed"]
ViolationStatus = Literal["open", "closed"]


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
        dwell_s: Observed seconds from `first_seen` to `last_seen`: the span minus every gap in observation
            inside it (see `gaps`), so a camera that was down, or a service that was stopped, adds no dwell.
        xyxy: (N, 4) float32 last known box of each member, frame pixels, in `track_ids` order.
        score: Median of the members' median recent scores.
        class_names: Class of each member, in `track_ids` order.
        merged_into: For a violation closed because another absorbed it, that one's id.
        gaps: The latest gaps in observation (at most `MAX_REPORTED_GAPS`, oldest first) between `first_seen`
            and `last_seen`: ``(start, end)`` UTC pairs of consecutive samples further apart than the engine's
            gap bound. `dwell_s` excludes all of them (older ones too); the case store uses the recent ones to
            add only observed time between two events of one violation.
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
    gaps: tuple[tuple[datetime, datetime], ...] = ()

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
    # Gaps in observation (start_s, end_s) the engine still needs: stretches with no samples, which add no dwell.
    gaps: tuple[tuple[float, float], ...] = ()

    def observed_s(self, from_s: float, to_s: float) -> float:
        """Observed seconds between two sample times: the span minus the gaps in observation inside it.

        Rules measure dwell with it (``frame.observed_s(since_s, track.last_seen_s)``) so that time the camera
        delivered nothing (the stream was down, the service was stopped) is never counted.
        """
        return observed_s(from_s, to_s, self.gaps)

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



MAX_REPORTED_GAPS = 8


def observed_s(from_s: float, to_s: float, gaps: Iterable[tuple[float, float]]) -> float:
    """Seconds of ``[from_s, to_s]`` not inside any gap ``(start_s, end_s)`` (gaps must not overlap).

    Example:
        >>> observed_s(0.0, 600.0, [(100.0, 400.0), (700.0, 900.0)])
        300.0
    """
    span_s = to_s - from_s
    if span_s <= 0:
        return 0.0
    hidden_s = sum(max(0.0, min(end_s, to_s) - max(start_s, from_s)) for start_s, end_s in gaps)
    return max(0.0, span_s - hidden_s)


# --- rule parameters ------------------------------------------------------------------------------------

WEEK_S = 7 * 86400.0


def param(default: float, lo: float, hi: float, doc: str, *, lo_open: bool = False) -> Any:
    """A bounded rule parameter: its default, bounds and description, declared once.

    The rule checks the bounds when its parameters are built, and the service's configuration file derives its
    field (default, ``ge``/``gt``/``le``, description) from the same declaration (`service.config`).
    """
    return field(default=default, metadata={"bounds": (lo, hi, lo_open), "doc": doc})


def override(base: type, name: str, default: Any, doc: str | None = None) -> Any:
    """A subclass's own default (and wording) for a parameter of `base`, keeping its bounds."""
    meta = dict(base.__dataclass_fields__[name].metadata)
    if doc is not None:
        meta["doc"] = doc
    return field(default=default, metadata=meta)


def param_bounds(params_type: type, name: str) -> tuple[float, float, bool] | None:
    """``(lo, hi, lo_open)`` of a bounded parameter of a params dataclass, or None when it has no bounds."""
    return params_type.__dataclass_fields__[name].metadata.get("bounds")


def param_doc(params_type: type, name: str) -> str:
    """The description of a parameter of a params dataclass."""
    return params_type.__dataclass_fields__[name].metadata.get("doc", "")


@dataclass(frozen=True)
class RuleParams:
    """Parameters every rule has; each one's default, bounds and wording are declared here once.

    Attributes:
        classes: Pipeline class names the rule looks at.
        min_dwell_s: Seconds the condition must hold before a violation opens (a zone may override it).
        min_score: Minimum median of a track's recent scores.
        cooldown_s: After a close, the same tracks cannot open a new violation in that zone for this long.
        end_grace_s: A violation closes once its condition has not been observed for this long (observed time:
            a gap in the stream does not count).
        update_interval_s: Most frequent periodic ``updated`` event of an open violation.
        schedule: When the rule is enforced (None: always). Outside it nothing is due and dwell restarts.
        zone_ids: Only these zones (None: every zone of the kinds the rule reads).
        second_look: Whether the pipeline verifies this kind's violations before reporting them.
    """

    classes: frozenset[str] = field(
        metadata={"doc": "Pipeline classes the rule looks at (after the model's class map)."})
    min_dwell_s: float = param(300.0, 0.0, WEEK_S, "Seconds the condition must hold before a violation opens.")
    min_score: float = param(0.5, 0.0, 1.0, "Minimum median of a track's recent scores (omit: the model card's "
                                            "track_score, or the rule's built-in value for a card without one).")
    cooldown_s: float = param(600.0, 0.0, WEEK_S, "After a violation closes, the same tracks cannot open another "
                                                  "in that zone for this long.")
    end_grace_s: float = param(120.0, 0.0, 86400.0,
                               "A violation closes once its condition has not been observed for this long.")
    update_interval_s: float = param(60.0, 1.0, 86400.0, "Most frequent periodic update of an open violation.")
    schedule: WeeklySchedule | None = field(
        default=None, metadata={"doc": "Enforcement hours, camera local time (omit: always)."})
    zone_ids: frozenset[str] | None = field(
        default=None, metadata={"doc": "Only these zones of the camera (omit: every zone of the kinds the rule "
                                       "reads)."})
    second_look: bool = field(
        default=True, metadata={"doc": "Look again before reporting: the detector on enlarged crops of the boxes "
                                       "must agree (detector.verify; the pipeline applies it, not the rule)."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", frozenset(self.classes))
        if self.zone_ids is not None:
            object.__setattr__(self, "zone_ids", frozenset(self.zone_ids))
        if not self.classes:
            raise ValueError(f"{type(self).__name__}: classes must not be empty")
        for f in fields(self):
            bounds = f.metadata.get("bounds")
            if bounds is None:
                continue
            lo, hi, lo_open = bounds
            value = getattr(self, f.name)
            inside = isinstance(value, (int, float)) and (lo < value if lo_open else lo <= value) and value <= hi
            if not inside:
                opening = "(" if lo_open else "["
                raise ValueError(f"{type(self).__name__}: {f.name} must lie within {opening}{lo:g}, {hi:g}], "
                                 f"got {value!r}")


@runtime_checkable
class Rule(Protocol):
    """What the engine needs from a rule. One instance per camera (rules keep per-track state).

    Attributes:
        kind: The violation kind it reports (key in `RULES` and in category codes).
        zone_kinds: Zone kinds it reads (the configuration checks a camera has them).
        params_type: Its parameter dataclass (defaults, bounds and wording of every parameter).
        default_classes: The pipeline classes it reads by default, the kind's own class first (a reviewer's
            change of kind relabels a case to it).
        params: Its parameters.
    """

    kind: ClassVar[str]
    zone_kinds: ClassVar[frozenset[ZoneKind]]
    params_type: ClassVar[type[RuleParams]]
    default_classes: ClassVar[tuple[str, ...]]
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
        ... class LoiteringRule(BaseRule):
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


class BaseRule:
    """Shared plumbing: parameters, schedule and a per-track "condition holds since" memory."""

    kind: ClassVar[str] = ""
    zone_kinds: ClassVar[frozenset[ZoneKind]] = frozenset()
    params_type: ClassVar[type[RuleParams]] = RuleParams
    default_classes: ClassVar[tuple[str, ...]] = ()

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



def group_findings(by_zone: Mapping[str, list[tuple[TrackView, float]]],
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



def components(adjacent: np.ndarray) -> np.ndarray:
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


def intersection_px2(boxes: np.ndarray) -> np.ndarray:
    ix = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    iy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    return np.clip(ix, 0, None) * np.clip(iy, 0, None)



def make_rule(kind: str, params: RuleParams) -> Rule:
    """An instance of the registered rule `kind` (raises KeyError naming the known kinds)."""
    try:
        cls: Callable[[RuleParams], Rule] = RULES[kind]
    except KeyError:
        raise KeyError(f"unknown rule kind {kind!r}; known: {sorted(RULES)}") from None
    return cls(params)

