"""Candidate cases: violation events in, deduplicated cases out; reviewer actions; the case status machine.

`CaseStore.ingest` takes the detector's violation events (see the contract in `detector.rules`) with their
origin (`service.origin.CaseOrigin`): a camera, copied into ``cameras``, or a drone flight, copied into
``flights``; a case has exactly one of ``camera_id`` and ``flight_id``. The case is located where the origin
is, or where the origin says this one case is (a drone finding's ground position).

* ``opened`` creates a pending case, unless a case with the same dedupe key (camera, zone, kind) that is
  not merged (see `DEDUPE_STATUSES`: a posted or rejected case also absorbs it) was last seen within ``cooldown_s`` of the event and its boxes overlap the event's
  (IoU ≥ ``dedupe_iou_min``): then the violation is attached to that case, which is updated (last seen,
  dwell, boxes, more evidence) and gets an audit entry. This catches a stall packed up and set up again, or
  a track lost and re-detected, which the detector reports as a new violation, or the same stall found again
  after the service restarted.
* A case's ``dwell_s`` is observed time (`case_dwell_s`): its violations' observed dwell, without the time
  between them (the service stopped, the stall away) or the stream outages inside them.
* ``updated`` and ``closed`` update the case their violation is attached to (each event is a full snapshot).
  An ``updated``/``closed`` for an unknown violation (its ``opened`` was lost) is treated as ``opened``.
* Flight cases are not deduplicated by box overlap: the boxes of a moving drone's frames are not comparable.
  The drone pipeline merges findings in map space and, when a finding is an object that already has a case
  (the same structure seen by an earlier flight of the area), passes that case as ``attach_to_case_id``;
  ``dedupe_key`` overrides the key stored on (and, for cameras, searched among) cases. See `CaseStore.ingest`.

Status machine (anything else raises `InvalidTransitionError`, which the HTTP layer maps to 409)::

    pending ──confirm──▶ confirmed ──outbox sent──▶ posted
       │                     └──outbox dead──▶ post_failed ──retry sent──▶ posted
       ├──reject──▶ rejected
       └──merge───▶ merged (into another case)

    confirmed / rejected ──undo──▶ pending   (the decider only, within the undo window, nothing delivered yet)

Confirming enqueues one outbox row per configured adapter in the same transaction (transactional outbox):
the case is confirmed if and only if its delivery is queued. Every reviewer action writes an audit row.
The rows are due once the undo window (`CaseSettings.undo_window_s`) has passed, so that the reviewer can take a
confirmation back before anything leaves the service (`CaseStore.undo`, rules in `service.undo`); an undo
deletes those never-claimed rows and writes an ``undo`` audit row.

The decisions (dedupe, transitions, payloads) are pure functions below the store, tested without a database.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from detector.errors import StreetwatchError
from detector.geometry import box_iou
from detector.rules import Violation, observed_s
from service.adapters.base import EVENT_ADAPTERS
from service.config import AppConfig
from service.db.models import (EVIDENCE_KINDS, TIMELAPSE_KINDS, AuditEntry, Camera, Case, CaseViolation, Evidence,
                               Flight, OutboxMessage)
from service.evidence import file_sha256
from service.evidence_links import evidence_file_name
from service.kinds import default_category_codes, kind_title
from service.origin import CaseLocation, CaseOrigin
from service.undo import DECIDED_STATUSES, DECISION_ACTIONS, Decision, Delivery, UndoVerdict, undo_verdict

__all__ = ["filter_cases",
    "CaseError", "CaseFilter", "CaseNotFoundError", "CasePublic", "CaseSettings", "CaseStore", "CasesPage",
    "HistoryEntry", "HistoryPage", "UndoRefusedError",
    "AuditPublic", "CaseLocation", "CaseOrigin", "DedupeCandidate", "EvidencePublic", "InvalidTransitionError",
    "OPEN_STATUSES", "TRANSITIONS", "build_case_payload", "case_dwell_s", "check_transition", "choose_dedupe_target",
    "dedupe_key", "evidence_boxes", "flight_dedupe_key", "idempotency_key", "utc_now",
]

Clock = Callable[[], datetime]
OPEN_STATUSES = ("pending", "confirmed")
# A violation within the cooldown of one of these cases is the same case, whatever the reviewer decided: a
# posted case is not reported to the city again, and a rejected one (an awning taken for a stall) is not put
# before the reviewer again while the thing stays there. Only merged cases live on in their target.
DEDUPE_STATUSES = ("pending", "confirmed", "posted", "post_failed", "rejected")
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"confirmed", "rejected", "merged"}),
    "confirmed": frozenset({"posted", "post_failed"}),
    "post_failed": frozenset({"posted"}),
    "rejected": frozenset(),
    "posted": frozenset(),
    "merged": frozenset(),
}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- errors ---------------------------------------------------------------------------------------------

class CaseError(StreetwatchError):
    """A case operation that cannot be done; `str(error)` says which case and why."""


class CaseNotFoundError(CaseError, KeyError):
    """No case with that id (HTTP 404).

    Attributes:
        case_id: The id asked for (None when not known).
    """

    def __init__(self, message: str, case_id: int | None = None):
        super().__init__(message)
        self.case_id = case_id

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidTransitionError(CaseError):
    """A status change the status machine does not allow (HTTP 409).

    Attributes:
        case_id: The case.
        current: Its status.
        target: The status asked for.
    """

    def __init__(self, case_id: int | None, current: str, target: str):
        self.case_id, self.current, self.target = case_id, current, target
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (final status)"
        super().__init__(f"case {case_id}: cannot go from {current!r} to {target!r} (allowed from {current!r}: "
                         f"{allowed})")


class UndoRefusedError(InvalidTransitionError):
    """An undo that `service.undo.undo_verdict` refuses (HTTP 409, its reason as the detail).

    Attributes:
        verdict: The refusal (``code`` says why: too late, posted, not one's own decision, ...).
    """

    def __init__(self, case_id: int, current: str, verdict: UndoVerdict):
        self.case_id, self.current, self.target, self.verdict = case_id, current, "pending (undo)", verdict
        CaseError.__init__(self, verdict.reason)


# --- pure logic -----------------------------------------------------------------------------------------

def check_transition(current: str, target: str, case_id: int | None = None) -> None:
    """Raise InvalidTransitionError unless the status machine allows `current` → `target`."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransitionError(case_id, current, target)


def evidence_boxes(v: Violation, second_look: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The boxes stored with the evidence rows of `v`'s frame (format: `service.db.models.Evidence`).

    With the second look's verdict (`detector.verify.SecondLookVerdict.as_dict`), each box also carries
    ``second_look``: whether the look confirmed it, the re-detection's score and the class it saw there.

    Example:
        >>> import numpy as np
        >>> from datetime import datetime, timezone
        >>> t = datetime(2026, 6, 1, tzinfo=timezone.utc)
        >>> v = Violation("v", "bike_misparked", "opened", "open", "cam", "z", (4, 9), t, t, 0.0,
        ...               np.array([[1.04, 2, 3, 4], [5, 6, 7, 8.96]], np.float32), 0.8, ("bicycle", "ebike"))
        >>> evidence_boxes(v)  # doctest: +NORMALIZE_WHITESPACE
        [{'xyxy': [1.0, 2.0, 3.0, 4.0], 'class_name': 'bicycle', 'track_id': 4},
         {'xyxy': [5.0, 6.0, 7.0, 9.0], 'class_name': 'ebike', 'track_id': 9}]
    """
    names = list(v.class_names)
    boxes = [{"xyxy": [round(float(c), 1) for c in box], "class_name": str(names[i]) if i < len(names) else None,
              "track_id": int(track_id)}
             for i, (box, track_id) in enumerate(zip(v.xyxy, v.track_ids))]
    if second_look is not None:
        for i, box in enumerate(boxes):
            box["second_look"] = {"agreed": bool(second_look["agreed"][i]), "score": second_look["scores"][i],
                                  "seen_class": second_look["seen_classes"][i]}
    return boxes


def dedupe_key(camera_id: str, zone_id: str, kind: str) -> str:
    """The key under which cases of the same thing at the same place are deduplicated."""
    return f"{camera_id}|{zone_id}|{kind}"


def flight_dedupe_key(flight_id: str, zone_id: str, kind: str) -> str:
    """The key stored on a flight case unless the caller gives one.

    It never collides with a camera's key (camera ids cannot hold ``:``), so the camera dedupe search never
    finds a flight case. It does not find the same object in a later flight either: that is the drone
    pipeline's map-space decision, passed to `CaseStore.ingest` as ``attach_to_case_id``.

    Example:
        >>> flight_dedupe_key("f-0601", "roofs", "illegal_structure")
        'flight:f-0601|roofs|illegal_structure'
    """
    return f"flight:{flight_id}|{zone_id}|{kind}"


def idempotency_key(case_id: int, adapter: str) -> str:
    """The stable key a receiver dedupes deliveries by: the same for every attempt of one case and adapter."""
    return f"streetwatch-{case_id}-{adapter}"


def max_iou(boxes_a: Iterable[Sequence[float]], boxes_b: Iterable[Sequence[float]]) -> float:
    """The best overlap between any box of one set and any of the other (0 when either set is empty)."""
    a = np.asarray(list(boxes_a), np.float64).reshape(-1, 4)
    b = np.asarray(list(boxes_b), np.float64).reshape(-1, 4)
    return float(box_iou(a, b).max()) if len(a) and len(b) else 0.0


@dataclass(frozen=True)
class DedupeCandidate:
    """What the dedupe decision needs of an open case with the same dedupe key."""

    case_id: int
    last_seen: datetime
    boxes: Sequence[Sequence[float]]


def choose_dedupe_target(candidates: Iterable[DedupeCandidate], first_seen: datetime,
                         boxes: Sequence[Sequence[float]], cooldown_s: float, iou_min: float) -> int | None:
    """The case a newly opened violation belongs to, or None when it is a new case.

    A candidate qualifies when the violation started at most `cooldown_s` after the case was last seen and
    their boxes overlap with IoU ≥ `iou_min`; among several, the best overlap wins, then the latest seen.
    """
    best: tuple[float, datetime, int] | None = None
    for c in candidates:
        gap_s = (first_seen - c.last_seen).total_seconds()
        if gap_s > cooldown_s:
            continue
        iou = max_iou(c.boxes, boxes)
        if iou < iou_min:
            continue
        key = (iou, c.last_seen, c.case_id)
        if best is None or key > best:
            best = key
    return None if best is None else best[2]


def case_dwell_s(dwell_s: float, first_seen: datetime, last_seen: datetime, v: Violation) -> float:
    """A case's observed dwell after event `v`: its `dwell_s` so far (over ``[first_seen, last_seen]``) plus what
    `v` observed after `last_seen`.

    Dwell is observed time (`detector.rules`): between a case's violations lies time nobody observed the
    object there (the service was stopped, the camera down, the stall packed up), which is never added. Within
    one violation the event's ``gaps`` (stream outages) are left out too. A case never dwells longer than it
    spans.

    Example:
        The service stopped for 7 minutes; the stall found again after the restart joins its case::

            case 10:00-10:10 (dwell 600 s) + violation 10:17-10:25 (dwell 480 s) -> 1080 s, not 1500 s
    """
    if v.last_seen <= last_seen:  # nothing newer than the case has counted already (an older violation's event)
        added_s = 0.0
    elif v.first_seen >= last_seen:  # a violation that began after the case was last seen: all of it is new
        added_s = v.dwell_s
    else:  # the next event of the same (or an overlapping) violation: the stretch since the case's last sighting
        gaps = [(a.timestamp(), b.timestamp()) for a, b in v.gaps]
        added_s = min(v.dwell_s, observed_s(last_seen.timestamp(), v.last_seen.timestamp(), gaps))
    span_s = (max(last_seen, v.last_seen) - min(first_seen, v.first_seen)).total_seconds()
    return max(0.0, min(span_s, dwell_s + added_s))


# --- schemas at the boundary ----------------------------------------------------------------------------

class EvidencePublic(BaseModel):
    """One evidence image. ``path`` (the server's file) is for the service itself and never serialised: API
    output and payloads name the image by ``file`` and reach it by ``/cases/{id}/evidence/{evidence id}``
    (keyed) or a signed link (`service.evidence_links`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    path: str = Field(exclude=True)
    ts: datetime
    sha256: str | None
    # The boxes of the frame this image shows (`service.db.models.Evidence.boxes`; None for old rows): the review
    # page draws these, not the case's boxes, which follow later events and may not match this frame.
    boxes: list[dict[str, Any]] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def file(self) -> str:
        """The image's file name (no server folders)."""
        return evidence_file_name(self.path)


class CasePublic(BaseModel):
    """A case as callers (API, outbox, tests) see it; detached from the database."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    violation_id: str
    dedupe_key: str
    kind: str
    category_code: str | None
    camera_id: str | None  # exactly one of camera_id and flight_id is set
    flight_id: str | None
    zone_id: str
    status: str
    first_seen: datetime
    last_seen: datetime
    ended_at: datetime | None
    dwell_s: float
    score: float
    boxes: list[list[float]]
    track_ids: list[int]
    lat_deg: float | None
    lon_deg: float | None
    address: str
    grid_code: str
    class_name: str | None
    corrected_kind: str | None
    reject_reason: str | None
    merged_into: int | None
    created_at: datetime
    updated_at: datetime
    version: int
    evidence: list[EvidencePublic] = []


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    actor: str
    action: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class CaseFilter:
    """Filters of `CaseStore.list_cases`; None means any. The time range selects cases observed in it."""

    status: str | None = None
    camera_id: str | None = None
    flight_id: str | None = None
    kind: str | None = None
    seen_from: datetime | None = None
    seen_to: datetime | None = None


@dataclass(frozen=True)
class CasesPage:
    """One page of cases, newest first; pass `next_cursor` back as `cursor` for the next page (None: last)."""

    items: list[CasePublic]
    next_cursor: int | None


@dataclass(frozen=True)
class HistoryEntry:
    """A decided case with its latest decision and whether the caller may undo it now."""

    case: CasePublic
    decision: Decision
    undo: UndoVerdict


@dataclass(frozen=True)
class HistoryPage:
    """Decided cases, the latest decision first; `next_cursor` (a decision's audit id) pages on (None: last)."""

    items: list[HistoryEntry]
    next_cursor: int | None


@dataclass(frozen=True)
class CaseSettings:
    """Case handling settings.

    Attributes:
        cooldown_s: A violation opened at most this long after an open case with the same key was last seen
            (and overlapping it) joins that case.
        dedupe_iou_min: Minimum box overlap for that.
        category_codes: Violation kind → the city's category code.
        adapters: Outbox adapters a confirmed case is delivered to (one outbox row each).
        undo_window_s: How long a reviewer may undo their confirmation or rejection (0: not at all). A
            confirmation's delivery waits for it (its outbox rows are due when it ends). The service passes
            ``Settings.review.undo_window_s``; 0 here keeps a bare store's delivery immediate.
    """

    cooldown_s: float = 1800.0
    dedupe_iou_min: float = 0.3
    category_codes: Mapping[str, str] = field(default_factory=default_category_codes)
    adapters: tuple[str, ...] = ()
    undo_window_s: float = 0.0

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> "CaseSettings":
        return cls(category_codes=dict(config.category_codes), **overrides)


def build_case_payload(case: CasePublic) -> dict[str, Any]:
    """The adapter-neutral description of a case that the outbox delivers (stored in the outbox row).

    Evidence is named by file name, never by server path; the outbox adds a signed, expiring link to each when
    it sends (`service.evidence_links.with_evidence_urls`), so a retried delivery carries fresh links.
    """
    kind = case.corrected_kind or case.kind
    origin = f"flight {case.flight_id}" if case.flight_id is not None else f"camera {case.camera_id}"
    where = case.address or origin
    # A flight case names its flight even with an address: reviewers at the city find the footage by it.
    seen_by = f"{origin}, " if case.flight_id is not None and case.address else ""
    description = (f"{kind_title(kind)} at {where} ({seen_by}zone {case.zone_id}), observed "
                   f"{case.first_seen:%Y-%m-%d %H:%M}Z–{case.last_seen:%H:%M}Z, {case.dwell_s / 60:.0f} min. "
                   f"streetwatch case {case.id}.")
    return {
        "case_id": case.id,
        "violation_id": case.violation_id,
        "kind": kind,
        "category_code": case.category_code,
        "camera_id": case.camera_id,
        "flight_id": case.flight_id,
        "zone_id": case.zone_id,
        "first_seen": case.first_seen.isoformat(),
        "last_seen": case.last_seen.isoformat(),
        "dwell_s": round(case.dwell_s, 1),
        "score": round(case.score, 4),
        "description": description,
        "location": {"lat_deg": case.lat_deg, "lon_deg": case.lon_deg, "address": case.address,
                     "grid_code": case.grid_code},
        "evidence": [
            {"kind": e.kind, "sha256": e.sha256, "file": e.file}
            for e in case.evidence
        ],
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _snapshot(case: Case, names: Iterable[str]) -> dict[str, Any]:
    return {n: _jsonable(getattr(case, n)) for n in names}


# --- the store ------------------------------------------------------------------------------------------

class CaseStore:
    """Cases in the database: ingest of violation events, reviewer actions, listing.

    Each method is one transaction. Returned cases are `CasePublic` snapshots.

    Args:
        session_factory: From `service.db.make_session_factory`.
        settings: Dedupe, category codes, adapters.
        clock: Wall-clock time for ``created_at``/audit times (violation times come from the events).
    """

    def __init__(self, session_factory: sessionmaker[Session], settings: CaseSettings | None = None,
                 clock: Clock = utc_now):
        self._sessions = session_factory
        self.settings = settings or CaseSettings()
        self._clock = clock

    # ingest

    def ingest(self, violation: Violation, evidence_paths: Mapping[str, str] | None = None,
               origin: CaseOrigin | None = None, *, dedupe_key: str | None = None,
               attach_to_case_id: int | None = None, second_look: Mapping[str, Any] | None = None) -> CasePublic:
        """Apply one violation event; returns the case it created or updated.

        Args:
            violation: The event (``opened``, ``updated`` or ``closed``).
            evidence_paths: Evidence files of this event by kind (``annotated``, ``original``, ``crop``),
                as `service.evidence.save_evidence` returns them, and ``strip``, ``clip`` (`service.timelapse`).
            origin: The camera or flight the event comes from (`service.config.camera_origin` makes a
                camera's); its id must be the violation's ``camera_id``. A camera origin is stored in
                ``cameras``, a flight origin in ``flights``, and a new case is located at the origin or at
                the origin's per-case location (`CaseOrigin.at`). None: a camera whose id is the violation's
                ``camera_id``, known from an earlier event or recorded without details.
            dedupe_key: For a new violation: the key stored on its case instead of the default
                (`dedupe_key` for a camera, `flight_dedupe_key` for a flight); for a camera it is also the
                key the dedupe search looks among.
            attach_to_case_id: For a new violation: attach it to this case instead of searching (the drone
                pipeline finds the case of the same object seen by an earlier flight by map distance and
                passes it here). A merged case hands the violation on to the case it was merged into. The
                case keeps its origin and location; the audit row names the new origin. Ignored for events
                of a violation already attached to a case.
            second_look: The second look's verdict on this event (`SecondLookVerdict.as_dict`), stored with each
                box of its evidence rows.

        Raises:
            CaseError: The origin does not match the violation, or an evidence kind is unknown.
            CaseNotFoundError: No case `attach_to_case_id`.
        """
        if origin is not None and not isinstance(origin, CaseOrigin):
            raise TypeError(f"origin: expected a CaseOrigin (service.config.camera_origin(camera) makes one from "
                            f"a camera's configuration), got {type(origin).__name__}")
        if origin is not None and origin.source_id != violation.camera_id:
            raise CaseError(f"violation {violation.violation_id}: comes from {violation.camera_id!r} but its origin "
                            f"is {origin.label()}")
        now = self._clock()
        with self._sessions.begin() as session:
            link = session.get(CaseViolation, violation.violation_id)
            # A later event without an origin needs no row: its case has one already (and a flight case's
            # violation must not make its flight a camera).
            row: Camera | Flight | None = None
            if origin is not None and origin.kind == "flight":
                row = self._upsert_flight(session, origin, now)
            elif origin is not None or link is None:
                row = self._upsert_camera(session, violation.camera_id, origin, now)
            session.flush()  # the origin row is written before a case refers to it (no relationship orders them)
            if link is not None:
                case = session.get_one(Case, link.case_id)
                self._apply_event(case, violation, now)
            elif attach_to_case_id is not None:
                case = self._attach(session, self._live_case(session, attach_to_case_id), violation, now,
                                    origin=(origin or CaseOrigin.camera(violation.camera_id)).label())
            else:
                assert row is not None  # made above for every new violation
                location = (origin.case_location if origin is not None and origin.case_location is not None
                            else CaseLocation(row.lat_deg, row.lon_deg, row.address, row.grid_code))
                case = self._attach_or_create(session, violation, origin.kind if origin else "camera", location,
                                              dedupe_key, now)
            self._add_evidence(session, case, violation, evidence_paths or {}, second_look)
            session.flush()
            return self._public(session, case)

    def _upsert_camera(self, session: Session, camera_id: str, origin: CaseOrigin | None,
                       now: datetime) -> Camera:
        row = session.get(Camera, camera_id)
        if row is None:
            row = Camera(id=camera_id, name="", source="", address="", grid_code="", timezone="UTC",
                         enabled=True, created_at=now, updated_at=now)
            session.add(row)
        if origin is not None:
            _update_row(row, now, name=origin.name, source=origin.source, address=origin.address,
                        grid_code=origin.grid_code, timezone=origin.timezone, enabled=origin.enabled,
                        lat_deg=origin.lat_deg, lon_deg=origin.lon_deg)
        return row

    @staticmethod
    def _upsert_flight(session: Session, origin: CaseOrigin, now: datetime) -> Flight:
        row = session.get(Flight, origin.source_id)
        if row is None:
            # A flight met first here has no job that created it (an import of a finished flight's findings):
            # it is recorded as done. A drone job creates its row first and owns its status and progress.
            row = Flight(id=origin.source_id, status="done", frames_done=0, created_at=now, updated_at=now)
            session.add(row)
        _update_row(row, now, name=origin.name, source=origin.source, address=origin.address,
                    grid_code=origin.grid_code, timezone=origin.timezone, lat_deg=origin.lat_deg,
                    lon_deg=origin.lon_deg)
        return row

    @staticmethod
    def _live_case(session: Session, case_id: int) -> Case:
        """Case `case_id`, or the case it was merged into (a merged case lives on in its target)."""
        case = CaseStore._get(session, case_id)
        seen = {case.id}
        while case.status == "merged" and case.merged_into is not None and case.merged_into not in seen:
            case = CaseStore._get(session, case.merged_into)
            seen.add(case.id)
        return case

    def _attach(self, session: Session, case: Case, v: Violation, now: datetime, origin: str | None = None) -> Case:
        """Attach new violation `v` to `case` (dedupe), with an audit row; `origin` is named in it when given."""
        before = _snapshot(case, ("first_seen", "last_seen", "dwell_s", "boxes", "track_ids"))
        session.add(CaseViolation(violation_id=v.violation_id, case_id=case.id, attached_at=now))
        self._apply_event(case, v, now)
        after = _snapshot(case, before) | {"violation_id": v.violation_id}
        if origin is not None:
            after["origin"] = origin
        self._audit(session, case, "system", "dedupe_attach", before, after, now)
        return case

    def _attach_or_create(self, session: Session, v: Violation, origin_kind: str, location: CaseLocation,
                          key: str | None, now: datetime) -> Case:
        if key is None:
            key = (flight_dedupe_key if origin_kind == "flight" else dedupe_key)(v.camera_id, v.zone_id, v.kind)
        boxes = [[round(float(c), 1) for c in box] for box in v.xyxy]
        if origin_kind == "camera":
            # Boxes of one fixed camera are comparable across events; a drone's frames are not (see
            # `flight_dedupe_key`), so flight cases are only attached where the caller says.
            since = v.first_seen - timedelta(seconds=self.settings.cooldown_s)
            rows = session.scalars(select(Case).where(Case.dedupe_key == key, Case.status.in_(DEDUPE_STATUSES),
                                                      Case.last_seen >= since)).all()
            target_id = choose_dedupe_target(
                (DedupeCandidate(c.id, c.last_seen, c.boxes) for c in rows), v.first_seen, boxes,
                self.settings.cooldown_s, self.settings.dedupe_iou_min)
            if target_id is not None:
                return self._attach(session, session.get_one(Case, target_id), v, now)
        case = Case(
            violation_id=v.violation_id, dedupe_key=key, kind=v.kind,
            category_code=self.settings.category_codes.get(v.kind),
            camera_id=v.camera_id if origin_kind == "camera" else None,
            flight_id=v.camera_id if origin_kind == "flight" else None, zone_id=v.zone_id,
            status="pending", first_seen=v.first_seen, last_seen=v.last_seen, dwell_s=float(v.dwell_s),
            score=float(v.score), boxes=boxes, track_ids=[int(t) for t in v.track_ids],
            lat_deg=location.lat_deg, lon_deg=location.lon_deg, address=location.address,
            grid_code=location.grid_code,
            class_name=_main_class(v.class_names), created_at=now, updated_at=now,
            ended_at=v.last_seen if v.event == "closed" else None,
        )
        session.add(case)
        session.flush()
        session.add(CaseViolation(violation_id=v.violation_id, case_id=case.id, attached_at=now))
        self._audit(session, case, "system", "created", None, {"violation_id": v.violation_id, "status": "pending"},
                    now)
        return case

    @staticmethod
    def _apply_event(case: Case, v: Violation, now: datetime) -> None:
        # Events of one violation arrive in order, but a case may collect several violations: keep the
        # observed span as the union of theirs and the boxes of the latest observation.
        if v.last_seen >= case.last_seen:
            case.boxes = [[round(float(c), 1) for c in box] for box in v.xyxy]
            case.track_ids = [int(t) for t in v.track_ids]
            case.score = float(v.score)
            case.class_name = _main_class(v.class_names) or case.class_name
            case.ended_at = v.last_seen if v.event == "closed" else None
        case.dwell_s = case_dwell_s(case.dwell_s, case.first_seen, case.last_seen, v)  # observed time only
        case.first_seen = min(case.first_seen, v.first_seen)
        case.last_seen = max(case.last_seen, v.last_seen)
        case.updated_at = now

    @staticmethod
    def _add_evidence(session: Session, case: Case, v: Violation, paths: Mapping[str, str],
                      second_look: Mapping[str, Any] | None = None) -> None:
        # Every image of this event shows the frame of this snapshot: each row keeps its boxes (the case's own
        # boxes follow later events and would no longer match the frame).
        boxes = evidence_boxes(v, second_look) if paths else None
        for kind, path in paths.items():
            if kind not in EVIDENCE_KINDS:
                raise CaseError(f"case {case.id}: unknown evidence kind {kind!r} ({', '.join(EVIDENCE_KINDS)})")
            # A strip or clip shows crops over the dwell (`service.timelapse`), not this frame: no frame boxes.
            session.add(Evidence(case_id=case.id, violation_id=v.violation_id, kind=kind, path=str(path),
                                 ts=v.last_seen, sha256=file_sha256(path),
                                 boxes=None if kind in TIMELAPSE_KINDS else boxes))

    # reviewer actions

    def confirm(self, case_id: int, actor: str) -> CasePublic:
        """pending → confirmed, and queue its delivery to every adapter in the same transaction."""
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._get(session, case_id)
            self._transition(session, case, "confirmed", actor, "confirm", now)
            session.flush()
            payload = build_case_payload(self._public(session, case))
            # Held for the undo window: a confirmation taken back in it has sent nothing (see `undo`).
            due = now + timedelta(seconds=self.settings.undo_window_s)
            for adapter in self.settings.adapters:
                session.add(OutboxMessage(
                    case_id=case.id, adapter=adapter, idempotency_key=idempotency_key(case.id, adapter),
                    payload=payload, status="pending", attempts=0, next_attempt_at=due, created_at=now,
                    updated_at=now))
            session.flush()
            return self._public(session, case)

    def reject(self, case_id: int, actor: str, reason: str) -> CasePublic:
        """pending → rejected, with the reviewer's reason."""
        if not reason.strip():
            raise CaseError(f"case {case_id}: a rejection needs a reason")
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._get(session, case_id)
            self._transition(session, case, "rejected", actor, "reject", now, reject_reason=reason.strip())
            session.flush()
            return self._public(session, case)

    def change_class(self, case_id: int, actor: str, new_kind: str) -> CasePublic:
        """Correct the violation kind of a pending case; the category code follows the new kind."""
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._get(session, case_id)
            if case.status != "pending":
                raise InvalidTransitionError(case_id, case.status, "pending (class change)")
            if new_kind not in self.settings.category_codes:
                raise CaseError(f"case {case_id}: unknown violation kind {new_kind!r} (known: "
                                f"{', '.join(sorted(self.settings.category_codes))})")
            before = _snapshot(case, ("kind", "corrected_kind", "category_code"))
            case.corrected_kind = new_kind
            case.category_code = self.settings.category_codes[new_kind]
            case.updated_at = now
            self._audit(session, case, actor, "change_class", before, _snapshot(case, before), now)
            session.flush()
            return self._public(session, case)

    def merge(self, case_ids: Sequence[int], into: int, actor: str) -> CasePublic:
        """Fold pending cases into case `into` (pending or confirmed): they become ``merged``, and their
        violations, evidence span and later events go to `into`.

        Raises:
            CaseError: `into` is among `case_ids` (a case cannot absorb itself; nothing is written).
        """
        if into in case_ids:
            raise CaseError(f"case {into}: cannot be merged into itself (remove it from case_ids)")
        now = self._clock()
        with self._sessions.begin() as session:
            target = self._get(session, into)
            if target.status not in OPEN_STATUSES:
                raise InvalidTransitionError(into, target.status, "merge target (pending or confirmed)")
            before_target = _snapshot(target, ("first_seen", "last_seen", "dwell_s"))
            for case_id in dict.fromkeys(case_ids):
                source = self._get(session, case_id)
                self._transition(session, source, "merged", actor, "merge", now, merged_into=into)
                for link in session.scalars(select(CaseViolation).where(CaseViolation.case_id == case_id)):
                    link.case_id = into
                target.first_seen = min(target.first_seen, source.first_seen)
                target.last_seen = max(target.last_seen, source.last_seen)
                # Sightings of one object: their observed times add up (never beyond the merged span).
                target.dwell_s += source.dwell_s
            target.dwell_s = min(target.dwell_s, (target.last_seen - target.first_seen).total_seconds())
            target.updated_at = now
            self._audit(session, target, actor, "merge_into", before_target,
                        _snapshot(target, before_target) | {"merged": list(dict.fromkeys(case_ids))}, now)
            session.flush()
            return self._public(session, target)

    def undo(self, case_id: int, actor: str) -> CasePublic:
        """Take back `actor`'s own confirmation or rejection of a case: it goes back to ``pending``.

        Allowed within ``settings.undo_window_s`` of the decision and, for a confirmation, while none of its
        deliveries has started (`service.undo.undo_verdict`); the never-claimed outbox rows are deleted in the same
        transaction, so a later confirmation queues fresh ones. An ``undo`` audit row records what was undone.

        Raises:
            CaseNotFoundError: No such case.
            UndoRefusedError: Not allowed (409): pending, merged or posted, another reviewer's decision, too late,
                delivery started, or changed by someone else meanwhile.
        """
        now = self._clock()
        try:
            with self._sessions.begin() as session:
                case = self._get(session, case_id)
                decision = self._decisions(session, [case_id]).get(case_id)
                deliveries = self._deliveries(session, [case_id]).get(case_id, [])
                verdict = undo_verdict(case_id, case.status, decision, actor, now, self.settings.undo_window_s,
                                       deliveries)
                if not verdict.allowed:
                    raise UndoRefusedError(case_id, case.status, verdict)
                assert decision is not None  # an allowed verdict has one
                withdrawn = [d.outbox_id for d in deliveries]
                if withdrawn:
                    # Only rows still untouched: the outbox worker may have claimed one since they were read
                    # (PostgreSQL re-checks the condition on the locked row), then nothing is deleted.
                    gone = session.execute(
                        delete(OutboxMessage).where(OutboxMessage.id.in_(withdrawn), OutboxMessage.status == "pending",
                                                    OutboxMessage.attempts == 0)
                        .execution_options(synchronize_session=False)).rowcount
                    if gone != len(withdrawn):
                        raise UndoRefusedError(case_id, case.status, UndoVerdict(
                            False, "in_flight", f"case {case_id}: its delivery started just now: a confirmation "
                                                f"cannot be taken back", verdict.until))
                before = _snapshot(case, ("status", "reject_reason"))
                case.status = "pending"
                case.reject_reason = None
                case.updated_at = now
                self._audit(session, case, actor, "undo", before,
                            _snapshot(case, before) | {"undone": decision.action,
                                                       "decision_at": decision.at.isoformat(),
                                                       "outbox_withdrawn": withdrawn}, now)
                session.flush()
                return self._public(session, case)
        except StaleDataError:
            # The outbox (posted, failed) or another reviewer changed the case between the read and the write.
            fresh = self.get(case_id)
            raise UndoRefusedError(case_id, fresh.status, UndoVerdict(
                False, "not_undoable", f"case {case_id}: changed meanwhile (now {fresh.status}); nothing undone")
            ) from None

    def history(self, actor: str, statuses: Sequence[str] = DECIDED_STATUSES, mine: bool = False, limit: int = 50,
                cursor: int | None = None) -> HistoryPage:
        """Decided cases, the latest decision first, each with whether `actor` may undo it now.

        Args:
            actor: Who reads (undo verdicts are theirs; with `mine`, only their decisions are listed).
            statuses: Case statuses to list (of `DECIDED_STATUSES`).
            mine: Only cases whose latest decision is `actor`'s.
            limit: Page size, 1..500.
            cursor: `HistoryPage.next_cursor` of the previous page.

        Raises:
            CaseError: A bad limit or a status that is not a decided one.
        """
        if not 1 <= limit <= 500:
            raise CaseError(f"limit must be 1..500, got {limit}")
        unknown = [s for s in statuses if s not in DECIDED_STATUSES]
        if unknown or not statuses:
            raise CaseError(f"status must be one or more of {', '.join(DECIDED_STATUSES)}, got "
                            f"{', '.join(unknown) or 'none'}")
        latest = (select(AuditEntry.case_id.label("case_id"), func.max(AuditEntry.id).label("audit_id"))
                  .where(AuditEntry.action.in_(DECISION_ACTIONS)).group_by(AuditEntry.case_id).subquery())
        query = (select(Case).join(latest, latest.c.case_id == Case.id)
                 .join(AuditEntry, AuditEntry.id == latest.c.audit_id)
                 .where(Case.status.in_(list(statuses))).order_by(AuditEntry.id.desc()).limit(limit + 1))
        if cursor is not None:
            query = query.where(AuditEntry.id < cursor)
        if mine:
            query = query.where(AuditEntry.actor == actor)
        now = self._clock()
        with self._sessions() as session:
            rows = list(session.scalars(query))
            more = len(rows) > limit
            rows = rows[:limit]
            ids = [c.id for c in rows]
            decisions = self._decisions(session, ids)
            deliveries = self._deliveries(session, ids)
            items = []
            for c in rows:
                decision = decisions[c.id]
                verdict = undo_verdict(c.id, c.status, decision, actor, now, self.settings.undo_window_s,
                                       deliveries.get(c.id, []))
                items.append(HistoryEntry(self._public(session, c), decision, verdict))
        return HistoryPage(items=items, next_cursor=items[-1].decision.audit_id if more else None)

    @staticmethod
    def _decisions(session: Session, case_ids: Sequence[int]) -> dict[int, Decision]:
        """The latest decision (`DECISION_ACTIONS`) of each case that has one, from the audit trail."""
        if not case_ids:
            return {}
        latest = (select(func.max(AuditEntry.id)).where(AuditEntry.case_id.in_(list(case_ids)),
                                                        AuditEntry.action.in_(DECISION_ACTIONS))
                  .group_by(AuditEntry.case_id))
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id.in_(latest)))
        return {r.case_id: Decision(r.id, r.action, r.actor, r.at) for r in rows}

    @staticmethod
    def _deliveries(session: Session, case_ids: Sequence[int]) -> dict[int, list[Delivery]]:
        """The outbox rows of each case, as `service.undo.Delivery`."""
        out: dict[int, list[Delivery]] = {}
        if not case_ids:
            return out
        # Event notifications (MQTT) are no delivery: sent ones do not stop an undo, and an undo leaves them.
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.case_id.in_(list(case_ids)),
                                                           OutboxMessage.adapter.not_in(EVENT_ADAPTERS))
                               .order_by(OutboxMessage.id))
        for r in rows:
            out.setdefault(r.case_id, []).append(Delivery(r.id, r.adapter, r.status, r.attempts,
                                                          in_doubt=r.attempt_started_at is not None))
        return out

    # reading

    def has_violation(self, violation_id: str) -> bool:
        """Whether a violation is attached to a case already (its later events update that case)."""
        with self._sessions() as session:
            return session.get(CaseViolation, violation_id) is not None

    def flight_case_near(self, kind: str, lat_deg: float, lon_deg: float, radius_m: float, *,
                         exclude_flight_id: str | None = None) -> int | None:
        """The nearest case of `kind` from a drone flight within `radius_m` of a point, or None.

        "The same object in a later flight updates the existing case": the drone job asks this before opening a
        case. Cases that were merged into another are not candidates (their target is); rejected and posted ones
        are, as for camera dedupe (`DEDUPE_STATUSES`). A degree box around the point narrows the query; the
        distance is then exact on the sphere (haversine; metres at street scale, where the ellipsoid does not
        matter).
        """
        dlat = radius_m / 111_320.0
        dlon = radius_m / max(1e-6, 111_320.0 * math.cos(math.radians(lat_deg)))
        query = (select(Case.id, Case.lat_deg, Case.lon_deg)
                 .where(Case.flight_id.is_not(None), Case.kind == kind, Case.status.in_(DEDUPE_STATUSES),
                        Case.lat_deg.between(lat_deg - dlat, lat_deg + dlat),
                        Case.lon_deg.between(lon_deg - dlon, lon_deg + dlon)))
        if exclude_flight_id is not None:
            query = query.where(Case.flight_id != exclude_flight_id)
        best: tuple[float, int] | None = None
        with self._sessions() as session:
            for case_id, lat, lon in session.execute(query):
                d = _haversine_m(lat_deg, lon_deg, lat, lon)
                if d <= radius_m and (best is None or (d, case_id) < best):
                    best = (d, case_id)
        return None if best is None else best[1]

    def get(self, case_id: int) -> CasePublic:
        with self._sessions() as session:
            return self._public(session, self._get(session, case_id))

    def audit_trail(self, case_id: int) -> list[AuditPublic]:
        """A case's audit rows, oldest first."""
        with self._sessions() as session:
            self._get(session, case_id)
            rows = session.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.id))
            return [AuditPublic.model_validate(r) for r in rows]

    def list_cases(self, filters: CaseFilter | None = None, limit: int = 50, cursor: int | None = None) -> CasesPage:
        """Cases newest first, filtered, by keyset paging on the case id (stable while cases are added)."""
        if not 1 <= limit <= 500:
            raise CaseError(f"limit must be 1..500, got {limit}")
        f = filters or CaseFilter()
        query = select(Case).order_by(Case.id.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(Case.id < cursor)
        query = filter_cases(query, f)
        with self._sessions() as session:
            rows = list(session.scalars(query))
            more = len(rows) > limit
            items = [self._public(session, c) for c in rows[:limit]]
        return CasesPage(items=items, next_cursor=items[-1].id if more else None)

    # helpers

    @staticmethod
    def _get(session: Session, case_id: int) -> Case:
        case = session.get(Case, case_id)
        if case is None:
            raise CaseNotFoundError(f"no case {case_id}", case_id)
        return case

    def _transition(self, session: Session, case: Case, target: str, actor: str, action: str, now: datetime,
                    **changes: Any) -> None:
        check_transition(case.status, target, case.id)
        before = _snapshot(case, ("status", *changes))
        case.status = target
        for name, value in changes.items():
            setattr(case, name, value)
        case.updated_at = now
        self._audit(session, case, actor, action, before, _snapshot(case, before), now)

    @staticmethod
    def _audit(session: Session, case: Case, actor: str, action: str, before: dict[str, Any] | None,
               after: dict[str, Any] | None, now: datetime) -> None:
        session.add(AuditEntry(case_id=case.id, actor=actor, action=action, at=now, before=before, after=after))

    @staticmethod
    def _public(session: Session, case: Case) -> CasePublic:
        evidence = session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.id))
        data = CasePublic.model_validate(case, from_attributes=True).model_dump(exclude={"evidence"})
        return CasePublic(**data, evidence=[EvidencePublic.model_validate(e) for e in evidence])


def set_case_status(session: Session, case_id: int, target: str, actor: str, now: datetime,
                    **details: Any) -> None:
    """Move a case along the status machine inside the caller's transaction (used by the outbox)."""
    case = session.get_one(Case, case_id)
    check_transition(case.status, target, case_id)
    before = {"status": case.status}
    case.status = target
    case.updated_at = now
    session.add(AuditEntry(case_id=case_id, actor=actor, action=target, at=now, before=before,
                           after={"status": target, **details}))


def _update_row(row: Camera | Flight, now: datetime, **values: Any) -> None:
    """Copy `values` into an origin row, touching ``updated_at`` only when something changed."""
    if any(getattr(row, k) != v for k, v in values.items()):
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = now


def _haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    r = 6_371_008.8  # mean Earth radius
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2_deg - lon1_deg) / 2) ** 2)
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def _main_class(class_names: Sequence[str]) -> str | None:
    return Counter(class_names).most_common(1)[0][0] if class_names else None


def filter_cases(query: Any, f: "CaseFilter") -> Any:
    """`query` (a select over `Case`) narrowed to the cases `f` names: the one place the case filters of the
    list API and of the bulk export (`service.export`) are turned into SQL."""
    if f.status is not None:
        query = query.where(Case.status == f.status)
    if f.camera_id is not None:
        query = query.where(Case.camera_id == f.camera_id)
    if f.flight_id is not None:
        query = query.where(Case.flight_id == f.flight_id)
    if f.kind is not None:
        query = query.where(Case.kind == f.kind)
    if f.seen_from is not None:
        query = query.where(Case.last_seen >= f.seen_from)
    if f.seen_to is not None:
        query = query.where(Case.first_seen < f.seen_to)
    return query
