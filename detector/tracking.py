"""Multi-object tracking for sparsely sampled street cameras (about one frame a second).

`Tracker.update(detections, ts_s) -> Detections` gives each box a ``tracker_id`` that stays the same while
it is the same object. It is ByteTrack-style: confident detections are associated first, then weak ones are
used only to keep existing tracks alive (an occluded stall scores low but is still there), and only
confident ones start tracks. Three things are specific to street-order work:

* **Sampling is sparse and irregular.** Everything is measured in seconds from frame timestamps, never in
  frames. Objects that move (pedestrians, riders) can shift more than their own size between samples, so
  boxes that no longer overlap can still be matched by centre distance measured in box sizes.
* **What matters stands still.** A track whose ground anchor stays within a fraction of its box size for
  ``stationary_window_s`` (in ``stationary_inlier_frac`` of the samples: boxes of parked objects jitter, and in
  a row of bikes NMS now and then picks a box spanning two of them) is *stationary*. A stationary track is
  predicted at its home box, the median of that window, so one such box does not drag it to its neighbour, and
  it counts as moving again only once it is ``stationary_leave_tolerance`` box sizes off for ``moving_confirm_s``.
  Stationary tracks are kept for ``stationary_max_missing_s`` when unseen (a bus parks in front of a stall for a
  minute) instead of ``max_missing_s``, and a detection that
  reappears on the same spot (IoU with the last box >= ``reattach_iou``) gets the same track id back, so
  the stall is not reported twice.
* **Scores are judged over time.** Each track keeps its recent scores; the output carries their median so
  a rule can require a steady score rather than one lucky frame.

A `Tracker` holds the state of one camera. Use one instance per camera (or per drone flight) and feed it
that source's detections in time order; it is not thread-safe and must not be shared between cameras.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import ClassVar

import numpy as np

from detector.geometry import box_iou
from detector.types import Detections

__all__ = ["Track", "TrackState", "Tracker", "TrackerConfig", "TRACK_COLUMNS"]

# Columns `Tracker.update` adds to `Detections.data` (besides `tracker_id`).
TRACK_COLUMNS: tuple[str, ...] = ("stationary", "stationary_since_s", "first_seen_s", "median_score", "hits")

# Boxes a track's recent median is taken over (see Track.recent_xyxy).
_RECENT_SAMPLES = 5

# Centre-distance matches are refused between boxes whose areas differ more than this factor: a small fast
# object may move far, but it does not change size fourfold between samples.
_MAX_AREA_RATIO = 4.0


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings; every field is bounded (see `LIMITS`) and checked on construction.

    Attributes:
        high_score: Detections at or above this are associated first and may start tracks.
        low_score: Detections in [low_score, high_score) only extend existing tracks; below are ignored.
        new_track_score: Minimum score of an unmatched detection to start a track.
        match_iou: Minimum IoU between a detection and a track's predicted box (first stage).
        low_match_iou: Minimum IoU for the low-score stage (stricter: weak boxes are less reliable).
        center_distance_max: Fallback for small fast objects: match by centre distance up to this many
            box sizes when boxes do not overlap enough; 0 disables it.
        min_hits: Matches before a track is confirmed and reported (a one-frame false positive never is).
        max_missing_s: A moving or unconfirmed track unseen this long is removed.
        stationary_window_s: A track is stationary once its anchor has stayed put for this long.
        stationary_tolerance: "Stayed put" means within this fraction of the box size (sqrt(w*h)).
        stationary_inlier_frac: Share of the window's samples that must lie within the tolerance of their
            median (1.0: every one).
        moving_confirm_s: A stationary track becomes moving once it has been off its spot this long
            (one shifted box from a passer-by occluding the stall does not make it move).
        stationary_leave_tolerance: "Off its spot" means its anchor is further than this fraction of its box
            size from home; at least `stationary_tolerance` (hysteresis: in a row of parked bikes the detector
            may box two of them as one for many seconds, shifting each box by a third of its size).
        stationary_max_missing_s: A stationary track unseen this long is removed.
        reattach_iou: IoU with the last box that a reappearing detection needs to resume a stationary
            track unseen for longer than `max_missing_s`.
        score_history: How many recent scores each track keeps for its median score.

    Example:
        >>> TrackerConfig(stationary_max_missing_s=300).max_missing_s
        5.0
        >>> TrackerConfig(low_score=0.9)
        Traceback (most recent call last):
        ...
        ValueError: TrackerConfig: low_score (0.9) must not exceed high_score (0.5)
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.3
    low_match_iou: float = 0.5
    center_distance_max: float = 1.5
    min_hits: int = 2
    max_missing_s: float = 5.0
    stationary_window_s: float = 30.0
    stationary_tolerance: float = 0.15
    stationary_inlier_frac: float = 0.8
    moving_confirm_s: float = 3.0
    stationary_leave_tolerance: float = 0.5
    stationary_max_missing_s: float = 120.0
    reattach_iou: float = 0.5
    score_history: int = 15

    # Inclusive bounds of every field; the service's configuration model reuses them.
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "high_score": (0.0, 1.0),
        "low_score": (0.0, 1.0),
        "new_track_score": (0.0, 1.0),
        "match_iou": (0.01, 1.0),
        "low_match_iou": (0.01, 1.0),
        "center_distance_max": (0.0, 10.0),
        "min_hits": (1, 100),
        "max_missing_s": (0.0, 3600.0),
        "stationary_window_s": (1.0, 3600.0),
        "stationary_tolerance": (0.0, 2.0),
        "stationary_inlier_frac": (0.5, 1.0),
        "moving_confirm_s": (0.0, 600.0),
        "stationary_leave_tolerance": (0.0, 5.0),
        "stationary_max_missing_s": (0.0, 86400.0),
        "reattach_iou": (0.01, 1.0),
        "score_history": (1, 1000),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = self.LIMITS[f.name]
            if f.type == "int" and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)):
                raise ValueError(f"TrackerConfig: {f.name} must be an integer, got {value!r}")
            if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"TrackerConfig: {f.name} must lie within [{lo}, {hi}], got {value!r}")
        if self.low_score > self.high_score:
            raise ValueError(
                f"TrackerConfig: low_score ({self.low_score}) must not exceed high_score ({self.high_score})")
        if self.new_track_score < self.low_score:
            raise ValueError(
                f"TrackerConfig: new_track_score ({self.new_track_score}) must not be below "
                f"low_score ({self.low_score})"
            )
        if self.stationary_leave_tolerance < self.stationary_tolerance:
            raise ValueError(
                f"TrackerConfig: stationary_leave_tolerance ({self.stationary_leave_tolerance}) must not be below "
                f"stationary_tolerance ({self.stationary_tolerance})")
        if self.stationary_max_missing_s < self.max_missing_s:
            raise ValueError(
                f"TrackerConfig: stationary_max_missing_s ({self.stationary_max_missing_s}) must not be below "
                f"max_missing_s ({self.max_missing_s})"
            )


class TrackState(str, Enum):
    """Life cycle of a track: tentative → confirmed ⇄ lost → removed."""

    TENTATIVE = "tentative"  # seen fewer than min_hits times; not reported, has no id yet
    CONFIRMED = "confirmed"  # matched in the latest update
    LOST = "lost"  # confirmed earlier, unseen in the latest update, still kept
    REMOVED = "removed"  # unseen too long; dropped


@dataclass(eq=False)  # identity matters: two tracks with equal boxes are still two objects
class Track:
    """One tracked object. Read-only for callers; the tracker updates it.

    Attributes:
        track_id: Id reported in ``Detections.tracker_id``; 0 while tentative (ids go to confirmed tracks).
        class_id: Class of the detections it follows (matching never crosses classes).
        xyxy: Last observed box, frame pixels.
        state: Life-cycle state.
        first_seen_s / last_seen_s: Timestamps (s) of its first and latest matched detection.
        hits: Matched detections so far.
        scores: The most recent scores (bounded deque).
        stationary: Whether the anchor has stayed put for the stationary window.
        stationary_since_s: Timestamp since when it has stood still (the start of the window), or None.
    """

    track_id: int
    class_id: int
    xyxy: np.ndarray
    state: TrackState
    first_seen_s: float
    last_seen_s: float
    hits: int
    scores: deque
    velocity_xy_per_s: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))
    stationary: bool = False
    stationary_since_s: float | None = None
    # (ts_s, anchor_x, anchor_y, size_px, x1, y1, x2, y2) samples covering at least the stationary window.
    history: deque = field(default_factory=deque)
    home_xy: np.ndarray | None = None  # where a stationary track stands
    home_xyxy: np.ndarray | None = None  # its median box over the window that made it stationary
    home_size_px: float = 0.0
    off_home_since_s: float | None = None

    @property
    def median_score(self) -> float:
        return float(np.median(np.fromiter(self.scores, np.float64))) if self.scores else 0.0

    def recent_xyxy(self, samples: int = _RECENT_SAMPLES) -> np.ndarray:
        """The median of its last `samples` boxes: where a parked object is when its boxes jitter."""
        boxes = [self.history[i][4:8] for i in range(-min(samples, len(self.history)), 0)]
        return np.median(np.asarray(boxes, np.float32), axis=0) if boxes else self.xyxy

    def predicted_xyxy(self, ts_s: float) -> np.ndarray:
        """Where the box should be at `ts_s` under constant velocity (stationary tracks stay at home)."""
        if self.stationary:
            return self.xyxy if self.home_xyxy is None else self.home_xyxy
        shift = self.velocity_xy_per_s * max(0.0, ts_s - self.last_seen_s)
        return self.xyxy + np.array([shift[0], shift[1], shift[0], shift[1]], np.float32)


def _anchor_and_size(xyxy: np.ndarray) -> tuple[float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return (x1 + x2) / 2.0, y2, math.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0))


def _history_sample(xyxy: np.ndarray, ts_s: float) -> tuple[float, ...]:
    ax, ay, size = _anchor_and_size(xyxy)
    return (ts_s, ax, ay, size, *(float(v) for v in xyxy))


def _greedy_match(similarity: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs (row, col) by descending similarity, skipping pairs <= 0.

    Greedy rather than optimal assignment: with the tens of boxes a street camera sees and gated
    similarities, the two almost never differ, and no solver dependency is needed.
    """
    if similarity.size == 0:
        return []
    rows, cols = np.nonzero(similarity > 0)
    order = np.argsort(-similarity[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


class Tracker:
    """Tracks the objects of one camera across samples; see the module docstring.

    Args:
        config: Tracker settings.
        first_track_id: The first id to hand out (a service restarting a camera can continue its ids).

    Example:
        >>> tracker = Tracker(TrackerConfig(min_hits=1))
        >>> d = Detections(xyxy=[[100, 100, 140, 160]], confidence=[0.9], class_id=[0])
        >>> out = tracker.update(d, ts_s=0.0)
        >>> out.tracker_id.tolist(), out.data["stationary"].tolist()
        ([1], [False])
        >>> for t in range(1, 40):  # it stands still for 39 s
        ...     out = tracker.update(d, ts_s=float(t))
        >>> out.tracker_id.tolist(), out.data["stationary"].tolist(), out.data["stationary_since_s"].tolist()
        ([1], [True], [0.0])
    """

    def __init__(self, config: TrackerConfig | None = None, first_track_id: int = 1):
        if first_track_id < 1:
            raise ValueError(f"first_track_id must be >= 1, got {first_track_id}")
        self.config = config or TrackerConfig()
        self._next_id = int(first_track_id)
        self._tracks: list[Track] = []
        self._last_ts_s: float | None = None

    # --- public ------------------------------------------------------------------------------------

    @property
    def tracks(self) -> list[Track]:
        """Live tracks (tentative, confirmed and lost), oldest first."""
        return list(self._tracks)

    def reset(self) -> None:
        """Forget every track (e.g. after a camera was moved or its clock jumped); ids keep counting."""
        self._tracks = []
        self._last_ts_s = None

    def update(self, detections: Detections, ts_s: float) -> Detections:
        """Associate one sample's detections with the tracks and return the tracked ones.

        Args:
            detections: This sample's boxes (any `tracker_id` they carry is replaced).
            ts_s: The sample's timestamp in seconds (``Frame.ts_s``); must not go backwards.

        Returns:
            The detections that belong to confirmed tracks, in input order, with ``tracker_id`` set and the
            data columns ``stationary`` (bool), ``stationary_since_s`` (float, NaN when moving),
            ``first_seen_s`` (float), ``median_score`` (float32) and ``hits`` (int32) added. Tentative and
            ignored low-score detections are left out.

        Raises:
            ValueError: `ts_s` is earlier than the previous sample's or not finite.
        """
        ts_s = float(ts_s)
        if not math.isfinite(ts_s):
            raise ValueError(f"ts_s must be finite, got {ts_s}")
        if self._last_ts_s is not None and ts_s < self._last_ts_s:
            raise ValueError(f"ts_s went backwards: {ts_s} after {self._last_ts_s}; call reset() after a clock jump")
        self._last_ts_s = ts_s
        cfg = self.config
        self._drop_expired(ts_s)

        scores = detections.confidence
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        track_of_row: dict[int, Track] = {}
        free_tracks = list(self._tracks)

        # Stage 1: confident detections against established tracks, by IoU with the predicted box; then what
        # is left against tentative ones (ByteTrack's order), so a one-off box spanning two parked bikes
        # cannot start a track that steals the next sample's box from the bike's own track.
        established = [t for t in free_tracks if t.state != TrackState.TENTATIVE]
        pairs = self._match(detections, high, established, ts_s, cfg.match_iou)
        pairs.update(self._match(detections, np.array([r for r in high if r not in pairs], np.int64),
                                 [t for t in free_tracks if t.state == TrackState.TENTATIVE], ts_s, cfg.match_iou))
        # Stage 1b: what is left of them, by centre distance (small objects that jumped between samples).
        rest_high = np.array([r for r in high if r not in pairs], np.int64)
        if cfg.center_distance_max > 0:
            pairs.update(self._match_by_distance(detections, rest_high, [t for t in free_tracks if t not in
                                                                         pairs.values()], ts_s))
        # Stage 2: weak detections only extend confirmed tracks still unmatched (ByteTrack's second pass).
        confirmed_left = [t for t in free_tracks if t not in pairs.values() and t.state != TrackState.TENTATIVE]
        pairs.update(self._match(detections, low, confirmed_left, ts_s, cfg.low_match_iou))

        # In creation order, so that tracks confirmed in the same sample get ids in a reproducible order.
        order = {id(t): k for k, t in enumerate(self._tracks)}
        for row, track in sorted(pairs.items(), key=lambda p: order[id(p[1])]):
            self._observe(track, detections.xyxy[row], float(scores[row]), ts_s)
            track_of_row[row] = track
        for track in self._tracks:
            if track.last_seen_s < ts_s and track.state == TrackState.CONFIRMED:
                track.state = TrackState.LOST

        # Unmatched confident detections start tentative tracks.
        for row in high:
            row = int(row)
            if row in pairs or scores[row] < cfg.new_track_score:
                continue
            track = self._start(detections, row, ts_s)
            track_of_row[row] = track

        rows = sorted(r for r, t in track_of_row.items() if t.state == TrackState.CONFIRMED)
        return self._output(detections, rows, track_of_row)

    # --- association -------------------------------------------------------------------------------

    def _match(self, detections: Detections, rows: np.ndarray, tracks: list[Track], ts_s: float,
               min_iou: float) -> dict[int, Track]:
        if len(rows) == 0 or not tracks:
            return {}
        cfg = self.config
        predicted = np.stack([t.predicted_xyxy(ts_s) for t in tracks])
        iou = box_iou(detections.xyxy[rows], predicted)
        # A track also matches at the median of its recent boxes: one box spanning two parked bikes would
        # otherwise leave its track predicted between them, and the next sample would swap the two ids.
        recent = np.stack([t.recent_xyxy() for t in tracks])
        iou = np.maximum(iou, box_iou(detections.xyxy[rows], recent))
        # A stationary track also matches at its last box, so an object that really leaves is followed (and
        # found moving after moving_confirm_s); its home box wins over a neighbour's jittery one.
        stationary = np.array([t.stationary for t in tracks])
        if stationary.any():
            last = np.stack([t.xyxy for t in tracks])
            iou = np.maximum(iou, np.where(stationary[None, :], box_iou(detections.xyxy[rows], last), 0.0))
        same_class = detections.class_id[rows][:, None] == np.array([t.class_id for t in tracks])[None, :]
        # A stationary track unseen for longer than a moving one would survive is kept only for objects
        # coming back to (nearly) the same spot.
        threshold = np.array([
            max(min_iou, cfg.reattach_iou) if (t.stationary and ts_s - t.last_seen_s > cfg.max_missing_s) else min_iou
            for t in tracks
        ])
        similarity = np.where(same_class & (iou >= threshold[None, :]), iou, 0.0)
        return {int(rows[r]): tracks[c] for r, c in _greedy_match(similarity)}

    def _match_by_distance(self, detections: Detections, rows: np.ndarray, tracks: list[Track],
                           ts_s: float) -> dict[int, Track]:
        # Stationary tracks never jump; letting them match at a distance would steal a passer-by's box.
        tracks = [t for t in tracks if not t.stationary]
        if len(rows) == 0 or not tracks:
            return {}
        det = detections.xyxy[rows].astype(np.float64)
        pred = np.stack([t.predicted_xyxy(ts_s) for t in tracks]).astype(np.float64)
        det_c = (det[:, :2] + det[:, 2:]) / 2
        pred_c = (pred[:, :2] + pred[:, 2:]) / 2
        det_area = np.prod(det[:, 2:] - det[:, :2], axis=1)
        pred_area = np.prod(pred[:, 2:] - pred[:, :2], axis=1)
        size = np.sqrt(np.maximum(pred_area, 1e-6))
        dist = np.linalg.norm(det_c[:, None, :] - pred_c[None, :, :], axis=2) / size[None, :]
        ratio = np.maximum(det_area[:, None], pred_area[None, :]) / np.maximum(
            np.minimum(det_area[:, None], pred_area[None, :]), 1e-6)
        same_class = detections.class_id[rows][:, None] == np.array([t.class_id for t in tracks])[None, :]
        ok = same_class & (dist <= self.config.center_distance_max) & (ratio <= _MAX_AREA_RATIO)
        similarity = np.where(ok, 1.0 - dist / (self.config.center_distance_max + 1e-9), 0.0) + ok * 1e-6
        return {int(rows[r]): tracks[c] for r, c in _greedy_match(similarity)}

    # --- track life cycle --------------------------------------------------------------------------

    def _start(self, detections: Detections, row: int, ts_s: float) -> Track:
        cfg = self.config
        track = Track(
            track_id=0,
            class_id=int(detections.class_id[row]),
            xyxy=detections.xyxy[row].astype(np.float32).copy(),
            state=TrackState.TENTATIVE,
            first_seen_s=ts_s,
            last_seen_s=ts_s,
            hits=1,
            scores=deque([float(detections.confidence[row])], maxlen=cfg.score_history),
        )
        track.history.append(_history_sample(track.xyxy, ts_s))
        self._tracks.append(track)
        self._maybe_confirm(track)
        return track

    def _maybe_confirm(self, track: Track) -> None:
        if track.state == TrackState.TENTATIVE and track.hits >= self.config.min_hits:
            track.state = TrackState.CONFIRMED
            track.track_id = self._next_id
            self._next_id += 1
        elif track.state == TrackState.LOST:
            track.state = TrackState.CONFIRMED

    def _observe(self, track: Track, xyxy: np.ndarray, score: float, ts_s: float) -> None:
        dt_s = ts_s - track.last_seen_s
        old_c = (track.xyxy[:2] + track.xyxy[2:]) / 2
        new_c = (xyxy[:2] + xyxy[2:]) / 2
        if dt_s > 0:
            measured = (new_c - old_c).astype(np.float64) / dt_s
            # Smoothed: one jittery box should not fling the prediction across the frame.
            track.velocity_xy_per_s = measured if track.hits == 1 else 0.5 * track.velocity_xy_per_s + 0.5 * measured
        track.xyxy = np.asarray(xyxy, np.float32).copy()
        track.last_seen_s = ts_s
        track.hits += 1
        track.scores.append(score)
        self._update_stationary(track, ts_s)
        if track.stationary:
            track.velocity_xy_per_s = np.zeros(2, np.float64)
        self._maybe_confirm(track)

    def _update_stationary(self, track: Track, ts_s: float) -> None:
        cfg = self.config
        history = track.history
        history.append(_history_sample(track.xyxy, ts_s))
        _, ax, ay, _, *_ = history[-1]
        # Keep the newest sample at or before the window's start, so the history spans the whole window.
        while len(history) >= 2 and history[1][0] <= ts_s - cfg.stationary_window_s:
            history.popleft()

        if track.stationary:
            distance_px = math.hypot(ax - track.home_xy[0], ay - track.home_xy[1])
            off = distance_px > cfg.stationary_leave_tolerance * track.home_size_px
            if not off:
                track.off_home_since_s = None
                return
            if track.off_home_since_s is None:
                track.off_home_since_s = ts_s
            if ts_s - track.off_home_since_s < cfg.moving_confirm_s:
                return
            # It has left its spot: it is moving, and only the samples since it left count from now on.
            since = track.off_home_since_s
            track.stationary, track.stationary_since_s, track.off_home_since_s = False, None, None
            track.home_xy = track.home_xyxy = None
            while history and history[0][0] < since:
                history.popleft()
            return

        if len(history) < 2 or ts_s - history[0][0] < cfg.stationary_window_s:
            return
        samples = np.asarray(history, np.float64)
        home = np.median(samples[:, 1:3], axis=0)
        home_size = float(np.median(samples[:, 3]))
        distance_px = np.linalg.norm(samples[:, 1:3] - home[None, :], axis=1)
        inside = distance_px <= cfg.stationary_tolerance * home_size
        # The newest sample must be at home too: an object that has just left is not standing still.
        if inside[-1] and inside.mean() >= cfg.stationary_inlier_frac:
            track.stationary = True
            track.stationary_since_s = float(samples[0, 0])
            track.home_xy, track.home_size_px, track.off_home_since_s = home, home_size, None
            track.home_xyxy = np.median(samples[inside, 4:8], axis=0).astype(np.float32)

    def _drop_expired(self, ts_s: float) -> None:
        cfg = self.config
        kept = []
        for track in self._tracks:
            limit_s = cfg.stationary_max_missing_s if track.stationary else cfg.max_missing_s
            if ts_s - track.last_seen_s > limit_s:
                track.state = TrackState.REMOVED
            else:
                kept.append(track)
        self._tracks = kept

    # --- output ------------------------------------------------------------------------------------

    def _output(self, detections: Detections, rows: list[int], track_of_row: dict[int, Track]) -> Detections:
        out = detections[np.asarray(rows, np.int64)] if rows else detections[np.zeros(0, np.int64)]
        tracks = [track_of_row[r] for r in rows]
        columns = {
            "stationary": np.array([t.stationary for t in tracks], bool),
            "stationary_since_s": np.array(
                [np.nan if t.stationary_since_s is None else t.stationary_since_s for t in tracks], np.float64),
            "first_seen_s": np.array([t.first_seen_s for t in tracks], np.float64),
            "median_score": np.array([t.median_score for t in tracks], np.float32),
            "hits": np.array([t.hits for t in tracks], np.int32),
        }
        return Detections(out.xyxy, out.confidence, out.class_id,
                          np.array([t.track_id for t in tracks], np.int64), {**out.data, **columns})
