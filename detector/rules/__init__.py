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
  ``dwell_s`` does not include the grace period. A violation absorbed by another
  (two clusters merged) closes at once with ``merged_into`` naming the survivor.
* Dwell is *observed* time: ``dwell_s`` = last_seen − first_seen minus the gaps in observation inside it
  (consecutive samples further apart than the engine's ``max_gap_s``: the stream was down, frames stopped),
  which each event lists (``gaps``, the latest few). A gap counts neither as dwell nor as absence: a stall
  seen again after a 5-minute outage keeps its violation, without those 5 minutes. The same holds for a rule's
  wait before a violation opens (``FrameView.observed_s``). Across a restart of the service the engine starts
  empty; the case store adds a re-found object's new violation to its case without the stopped time.
* Absence is not an end: a stall hidden behind a bus keeps its track (the tracker re-attaches it) and its
  violation stays open as long as it is seen again within ``end_grace_s``. After a close, the same
  tracks cannot open a new violation in the same zone for ``cooldown_s``.
* `finish(ts)` closes everything (end of a file or a drone flight). A live camera that stops is simply
  discarded: its violations stay open in the service until it resumes or a reviewer closes them.

Times come only from frame timestamps. A `RuleEngine` holds one camera's state: use one per camera.
Rooms: `base` (the `Violation` event, what rules see, `RuleParams`, the registry), `engine` (`RuleEngine`) and one
module per violation kind (`stall`, `bikes`) declaring its kind, zone kinds, default classes and bounded parameters.
A new kind is one new module here (a `BaseRule` subclass decorated with `register_rule`, imported below) plus
one row of the service's kind catalogue (`service.kinds`); the configuration, the tracked classes, the CLI and
the review page derive everything else from them.
"""

from detector.rules.base import (MAX_REPORTED_GAPS, RULES, WEEK_S, BaseRule, Finding, FrameView, Rule, RuleParams,
                                 TrackView, Violation, ViolationEvent, ViolationStatus, group_findings, make_rule,
                                 observed_s, override, param, param_bounds, param_doc, register_rule)
from detector.rules.engine import RuleEngine

# Import order is registration order, which is the order of the configuration's `rules` section: stall first.
from detector.rules.stall import STALL_CLASSES, StallOccupationRule, StallRuleParams, overlap_groups  # isort: skip
from detector.rules.bikes import BIKE_CLASSES, BikeMisparkedRule, BikeRuleParams, cluster_boxes  # isort: skip

__all__ = [
    "BIKE_CLASSES", "MAX_REPORTED_GAPS", "RULES", "STALL_CLASSES", "WEEK_S", "BaseRule", "BikeMisparkedRule", "BikeRuleParams", "Finding",
    "FrameView", "Rule", "RuleEngine", "RuleParams", "StallOccupationRule", "StallRuleParams", "TrackView",
    "Violation", "ViolationEvent", "ViolationStatus", "cluster_boxes", "group_findings", "make_rule", "observed_s", "overlap_groups", "override",
    "param", "param_bounds", "param_doc", "register_rule",
]
