"""The per-camera rule engine: tracked detections in, violation events out (contract: `detector.rules`)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping, Sequence

import numpy as np

from detector.rules.base import (MAX_REPORTED_GAPS, Finding, FrameView, Rule, TrackView, Violation, ViolationEvent,
                                 observed_s)
from detector.types import Detections
from detector.zones import PolygonZone, Zone, ZoneKind

__all__ = ["RuleEngine"]

# Columns the engine reads from the tracker's output (see detector.tracking.TRACK_COLUMNS).
_REQUIRED_COLUMNS = ("stationary", "stationary_since_s", "median_score")
# Without an explicit max_gap_s, an interval is a gap only when it is also this many times the camera's usual
# sampling interval (median of the last _INTERVALS_KEPT intervals), so that a slow camera's (or a short
# end_grace_s's) ordinary spacing between samples is not taken for an outage once it has been seen.
_GAP_INTERVAL_FACTOR = 3.0
_INTERVALS_KEPT = 15
# Safety bound on the remembered gaps (a flapping stream for days); they are pruned long before in practice.
_MAX_GAPS_KEPT = 4096


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
    first_seen_s: float  # first sample of this memory: how far back the gaps must be kept for its rules


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
        max_gap_s: Consecutive samples further apart than this are a *gap in observation* (the stream was
            down, frames stopped): the time between them counts neither as dwell nor as absence (end_grace_s,
            track memory). None: the shortest ``end_grace_s`` of the rules, the same bound after which an unseen
            object's violation ends, and at least three times the camera's usual sampling interval.

    Example:
        >>> from datetime import datetime, timedelta, timezone
        >>> from detector.rules import StallOccupationRule, StallRuleParams
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
                 class_map: Mapping[str, str] | None = None, max_gap_s: float | None = None):
        if max_gap_s is not None and not (isinstance(max_gap_s, (int, float)) and max_gap_s > 0):
            raise ValueError(f"camera {camera_id!r}: max_gap_s must be positive seconds, got {max_gap_s!r}")
        self.camera_id = camera_id
        self.max_gap_s = max_gap_s
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
        self._grace_gap_s = min((r.params.end_grace_s for r in self.rules), default=math.inf)
        self._intervals_s: deque[float] = deque(maxlen=_INTERVALS_KEPT)
        self._gaps: list[tuple[float, float]] = []

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
        previous_s = self._last_ts_s
        ts_s = self._check_time(ts)
        self._check_columns(detections)
        self._ensure_zones(frame_wh_px)
        names = self._class_names_of(detections)
        self._note_interval(previous_s, ts_s)

        inside = np.zeros((len(detections), len(self.zones)), bool)
        for k, pz in enumerate(self._polygon_zones):
            inside[:, k] = pz.trigger(detections)
        since = detections.data["stationary_since_s"].astype(np.float64) if len(detections) else np.zeros(0)
        for row, tid in enumerate(detections.tracker_id.tolist()):
            known = self._tracks.get(tid)
            self._tracks[tid] = _TrackMemory(
                track_id=tid,
                class_name=names[row],
                xyxy=detections.xyxy[row].copy(),
                median_score=float(detections.data["median_score"][row]),
                stationary=bool(detections.data["stationary"][row]),
                stationary_since_s=None if math.isnan(since[row]) else float(since[row]),
                last_seen_s=ts_s,
                first_seen_s=ts_s if known is None else known.first_seen_s,
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
        frame = FrameView(ts, ts_s, views, self.zones, active, tuple(self._gaps))

        events: list[Violation] = []
        for rule in self.rules:
            events.extend(self._reconcile(rule, rule.evaluate(frame), frame))
        self._prune_cooldowns(ts_s)
        self._prune_gaps()
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

    @property
    def gaps(self) -> list[tuple[datetime, datetime]]:
        """The gaps in observation the engine still remembers (``(start, end)`` UTC, oldest first)."""
        return [(_utc(a), _utc(b)) for a, b in self._gaps]

    def gap_bound_s(self) -> float:
        """How far apart two consecutive samples must be to make a gap in observation now (see `max_gap_s`)."""
        if self.max_gap_s is not None:
            return float(self.max_gap_s)
        usual_s = statistics.median(self._intervals_s) if self._intervals_s else 0.0
        return max(self._grace_gap_s, _GAP_INTERVAL_FACTOR * usual_s)

    # --- gaps in observation -----------------------------------------------------------------------

    def _note_interval(self, previous_s: float | None, ts_s: float) -> None:
        """Record the stretch since the previous sample as a gap when it is longer than the gap bound."""
        if previous_s is None or ts_s <= previous_s:
            return
        if ts_s - previous_s > self.gap_bound_s():
            self._gaps.append((previous_s, ts_s))
            del self._gaps[:-_MAX_GAPS_KEPT]
        # Every interval teaches the usual one: the median shrugs off an outage now and then, while a camera
        # that only ever delivers a sample every few minutes makes that its usual spacing (not a gap each time).
        self._intervals_s.append(ts_s - previous_s)

    def _prune_gaps(self) -> None:
        """Forget gaps older than everything that still measures time across them: remembered tracks (the
        rules' dwell of a track starts no earlier than its memory) and open violations."""
        if not self._gaps:
            return
        starts = [m.first_seen_s for m in self._tracks.values()] + [v.first_seen_s for v in self._open.values()]
        horizon_s = min(starts, default=math.inf)
        self._gaps = [g for g in self._gaps if g[1] > horizon_s]

    def _observed_s(self, from_s: float, to_s: float) -> float:
        return observed_s(from_s, to_s, self._gaps)

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
        # Absence is measured in observed time: a stationary object is not forgotten while the stream was down.
        expired = [tid for tid, m in self._tracks.items() if self._observed_s(m.last_seen_s, ts_s) > self._memory_s]
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
            if self._observed_s(v.last_seen_s, ts_s) > params.end_grace_s:
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
            dwell_s=self._observed_s(v.first_seen_s, v.last_seen_s),
            xyxy=np.stack([m.xyxy for m in members]).astype(np.float32) if members else np.zeros((0, 4), np.float32),
            score=float(np.median([m.median_score for m in members])) if members else 0.0,
            class_names=tuple(m.class_name for m in members),
            merged_into=merged_into,
            gaps=tuple((_utc(a), _utc(b)) for a, b in self._gaps
                       if a >= v.first_seen_s and b <= v.last_seen_s)[-MAX_REPORTED_GAPS:],
        )


