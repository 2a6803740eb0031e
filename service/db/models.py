"""ORM models of the case database (SQLAlchemy 2.0 typed mappings).

Portable between SQLite (the embedded default) and PostgreSQL: generic column types only, JSON through
`sqlalchemy.JSON`, and times through `UTCDateTime`, which stores naive UTC and hands back aware UTC
(SQLite has no time-zone type, and mixing naive and aware datetimes in comparisons is an error).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AuditEntry", "Base", "Camera", "Case", "CaseViolation", "Evidence", "Flight", "OutboxMessage", "UTCDateTime",
    "CASE_STATUSES", "OUTBOX_STATUSES", "EVIDENCE_KINDS", "TIMELAPSE_KINDS", "FLIGHT_STATUSES", "ONE_ORIGIN_SQL",
]

CASE_STATUSES = ("pending", "confirmed", "rejected", "posted", "post_failed", "merged")
# needs_check: the outcome of a post is unknown and the receiver could not be asked (migration 0005): a person
# decides (POST /outbox/{id}/resolve); never posted again automatically.
OUTBOX_STATUSES = ("pending", "sending", "sent", "dead", "needs_check")
# strip, clip: the time-lapse of a camera case's dwell (`service.timelapse`): a JPEG strip and an H.264 MP4.
TIMELAPSE_KINDS = ("strip", "clip")
EVIDENCE_KINDS = ("annotated", "original", "crop", *TIMELAPSE_KINDS)
# queued → running → done | failed | cancelled (a drone job; a flight first met through ingest is "done").
FLIGHT_STATUSES = ("queued", "running", "done", "failed", "cancelled")
# A case comes from exactly one origin: a camera or a flight (CHECK ck_cases_one_origin, migration 0003).
ONE_ORIGIN_SQL = ("(camera_id IS NOT NULL AND flight_id IS NULL) OR "
                  "(camera_id IS NULL AND flight_id IS NOT NULL)")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned as an aware UTC datetime on every backend."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Camera(Base):
    """A camera as the case system sees it (a copy of its configuration, so cases outlive config edits)."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(2000), default="")
    lat_deg: Mapped[Optional[float]] = mapped_column(Float)
    lon_deg: Mapped[Optional[float]] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(500), default="")
    grid_code: Mapped[str] = mapped_column(String(64), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Hash of the HTTP-push token (never the token itself).
    token_hash: Mapped[Optional[str]] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Flight(Base):
    """A drone flight as the case system sees it: the origin of flight cases, and the state of its job.

    ``status`` is one of `FLIGHT_STATUSES`; ``frames_done``/``frames_total``, ``stage``, ``progress``,
    ``eta_s``, ``findings``, ``notes`` and ``error`` are the job's progress and outcome (the flight job of
    `service.flights` writes them; ``CaseStore.ingest`` never does).
    """

    __tablename__ = "flights"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # The video file or stills folder the flight was read from.
    source: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # Take-off point or area centre (findings carry their own positions).
    lat_deg: Mapped[Optional[float]] = mapped_column(Float)
    lon_deg: Mapped[Optional[float]] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(500), default="")
    grid_code: Mapped[str] = mapped_column(String(64), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # When the flight's job started and ended processing (None: not yet).
    started_at: Mapped[Optional[datetime]]
    ended_at: Mapped[Optional[datetime]]
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The job (migration 0004): what to read ({"video", "srt"} or {"stills"}: server paths), who submitted it
    # (the API key's holder; a pilot reads its own flights only), where it is (stage as in
    # `service.drone.FlightProgress`, 0..1 done, findings so far, seconds left), the run's notes, the cases its
    # violations opened or updated, whether a cancel was asked for (the worker polls it), and how many times
    # the job was started (restarts).
    input: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    created_by: Mapped[Optional[str]] = mapped_column(String(200))
    stage: Mapped[Optional[str]] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    findings: Mapped[Optional[int]] = mapped_column(Integer)
    eta_s: Mapped[Optional[float]] = mapped_column(Float)
    notes: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    case_ids: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """A candidate case: one (possibly deduplicated) violation waiting for, or past, human review.

    Its origin is a camera (``camera_id``) or a drone flight (``flight_id``), exactly one of them.
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_dedupe_open", "dedupe_key", "status", "last_seen"),
        Index("ix_cases_status_id", "status", "id"),
        Index("ix_cases_camera_id", "camera_id", "id"),
        Index("ix_cases_flight_id", "flight_id", "id"),
        CheckConstraint(ONE_ORIGIN_SQL, name="ck_cases_one_origin"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    violation_id: Mapped[str] = mapped_column(String(200), unique=True)
    dedupe_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(64))
    category_code: Mapped[Optional[str]] = mapped_column(String(32))
    camera_id: Mapped[Optional[str]] = mapped_column(ForeignKey("cameras.id"))
    flight_id: Mapped[Optional[str]] = mapped_column(ForeignKey("flights.id", name="fk_cases_flight_id_flights"))
    zone_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    # When the detector closed the last violation of this case (None while it is still observed).
    ended_at: Mapped[Optional[datetime]]
    dwell_s: Mapped[float] = mapped_column(Float, default=0.0)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    boxes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    track_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    lat_deg: Mapped[Optional[float]] = mapped_column(Float)
    lon_deg: Mapped[Optional[float]] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(500), default="")
    grid_code: Mapped[str] = mapped_column(String(64), default="")
    class_name: Mapped[Optional[str]] = mapped_column(String(64))
    corrected_kind: Mapped[Optional[str]] = mapped_column(String(64))
    reject_reason: Mapped[Optional[str]] = mapped_column(Text)
    merged_into: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Optimistic locking: a concurrent edit of the same case fails with StaleDataError instead of being lost.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    evidence: Mapped[list["Evidence"]] = relationship(back_populates="case", order_by="Evidence.id")

    __mapper_args__ = {"version_id_col": version}


class CaseViolation(Base):
    """Every detector violation attached to a case (its own, and those folded in by dedupe or merge).

    `updated` and `closed` events are routed through this table, so a violation deduplicated into an
    older case keeps updating that case.
    """

    __tablename__ = "case_violations"

    violation_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    attached_at: Mapped[datetime]


class Evidence(Base):
    """One evidence image of a case.

    `boxes` holds the boxes of the observation the image shows: the violation event (snapshot) whose frame
    was saved, one object per member, in the violation's ``track_ids`` order::

        [{"xyxy": [x1, y1, x2, y2], "class_name": "bicycle", "track_id": 3}, ...]

    ``xyxy`` is in pixels of the full camera frame (rounded to 0.1 px, like ``cases.boxes``), ``class_name``
    the member's pipeline class (null if the violation named none) and ``track_id`` its tracker id. There is
    no per-box score: a violation carries only its overall score (``cases.score``). Every evidence row of one
    frame (``annotated``, ``original`` and ``crop``) gets the same list, always in full-frame pixels: for a
    ``crop`` they are *not* coordinates within the cropped image. NULL for rows written before migration 0002
    (which frame those boxes belonged to was not recorded).
    """

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    violation_id: Mapped[Optional[str]] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # annotated | original | crop | strip | clip
    path: Mapped[str] = mapped_column(String(2000))
    ts: Mapped[datetime]
    sha256: Mapped[Optional[str]] = mapped_column(String(64))
    boxes: Mapped[Optional[list[Any]]] = mapped_column(JSON(none_as_null=True))  # None: SQL NULL

    case: Mapped[Case] = relationship(back_populates="evidence")


class AuditEntry(Base):
    """Who did what to a case and when, with the changed fields before and after."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    before: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    after: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


class OutboxMessage(Base):
    """A case waiting to be (or already) delivered to one external case system (transactional outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    adapter: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # one of OUTBOX_STATUSES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # While `sending`: the claim expires here; a row still `sending` after it was left by a crashed worker.
    lease_expires_at: Mapped[Optional[datetime]]
    claim_token: Mapped[Optional[str]] = mapped_column(String(64))
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    remote_id: Mapped[Optional[str]] = mapped_column(String(200))
    sent_at: Mapped[Optional[datetime]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Migration 0005 (exactly once at receivers that do not deduplicate): when the earliest post whose outcome
    # is still unknown started, committed before the request leaves (None: no post in doubt), and the
    # streetwatch id that post carried (what reconciliation looks for at the receiver).
    attempt_started_at: Mapped[Optional[datetime]]
    attempt_ref: Mapped[Optional[str]] = mapped_column(String(200))
    # Failed queries of the receiver in a row while reconciling (after `max_reconcile_attempts`: needs_check).
    reconcile_failures: Mapped[int] = mapped_column(Integer, default=0)
