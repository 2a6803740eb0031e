"""Request and response schemas of the API (schema families: ``XPublic`` one, ``XsPublic`` a page/list)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.cases import AuditPublic, CasePublic, EvidencePublic
from service.config import (CameraConfig, ModelSelection, PositionConfig, RulesConfig, TrackerSettings,
                            ZoneConfig, check_zone_budget)

__all__ = [
    "MAX_DB_ID", "AuditsPublic", "CameraCreate", "CameraDeleted", "CameraHealth", "CameraPublic", "CameraSaved", "CameraUpdate",
    "CamerasPublic", "CaseClassChange", "CaseMerge", "CasePublic", "CaseReject", "CasesPublic", "ErrorItem",
    "ErrorPublic", "EvidencePublic", "FlightFromPath", "FlightLinks", "FlightProgressPublic", "FlightPublic",
    "FlightsPublic", "FrameAccepted", "HealthPublic", "MePublic", "OutboxPublic", "OutboxResolve", "OutboxRetried",
    "OutboxesPublic",
    "DbId", "ReportLinkPublic", "ZonesPublic", "ZonesUpdate", "error_responses",
    "DecisionPublic", "HistoryEntryPublic", "HistoryPublic", "UndoPublic",
]

# The databases' integer keys are signed 64-bit (SQLite INTEGER, PostgreSQL BIGINT/SERIAL): a larger id or cursor
# would overflow in the driver (a 500), so every id and cursor of a path, query or body is checked against this.
MAX_DB_ID = 2 ** 63 - 1
DbId = Annotated[int, Interval(ge=1, le=MAX_DB_ID)]
"""A database id or cursor (1..2^63-1); out of range: 422 naming the parameter. Use it for every id in a path, a
query or a body (``case_id: DbId``, ``cursor: Annotated[DbId | None, Query(...)] = None``)."""

_PERSISTED = ("True when the change was written to the configuration file (settings.config_path); false when "
              "the service has no configuration file and keeps the change in memory only (lost at restart).")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorItem(BaseModel):
    """One problem of a request: where (``field``, as ``zones[0].polygon``) and why."""

    field: str
    msg: str
    type: str
    loc: list[str | int] = []


class ErrorPublic(BaseModel):
    """Every error response: ``detail`` is a message, or a list of problems (422, 413, 415)."""

    detail: str | list[ErrorItem]


# What each error status means on this API; the routes document theirs with `error_responses` so that the OpenAPI
# lists every status a route can answer (schemathesis checks the answers against it: tests/service/
# test_schemathesis.py).
_ERROR_MEANINGS = {
    400: "Malformed request: a body that cannot be parsed (not UTF-8, say), or a Content-Length that is not a "
         "byte count.",
    401: "No API key, or an unknown one (header WWW-Authenticate: Bearer).",
    403: "The key's role (or camera, or owner) may not do this.",
    404: "No such resource (`detail` names which).",
    409: "The resource's state does not allow this now (`detail` says why).",
    413: "The body exceeds this route's limit; refused before it is read, and before the key is checked.",
    415: "The body's Content-Type is not one this route accepts.",
    422: "Invalid parameters or body: `detail` lists each field and the reason.",
    429: "Too many failed authentications from this address: try again after Retry-After seconds.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of a route for error `codes`: the error model and what the status means.

    Example:
        >>> sorted(error_responses(401, 429))
        [401, 429]
    """
    return {code: {"model": ErrorPublic, "description": _ERROR_MEANINGS[code]} for code in codes}


class CasesPublic(BaseModel):
    data: list[CasePublic]
    count: int = Field(description="Number of cases on this page.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class DecisionPublic(BaseModel):
    """The latest decision on a case (from its audit trail)."""

    audit_id: int = Field(description="The audit row of the decision.")
    action: str = Field(description="confirm, reject or merge.")
    actor: str = Field(description="Who decided (the API key's holder).")
    at: datetime


class UndoPublic(BaseModel):
    """Whether the caller may undo the decision now (`POST /cases/{id}/undo`), and why not."""

    allowed: bool
    code: str = Field(description="ok, or why not: not_decided, not_undoable (a merge), not_own, disabled, "
                                  "expired, posted, in_flight.")
    reason: str = Field(description="One line in English naming the case and the reason.")
    until: datetime | None = Field(description="When the undo window of the decision ends (null: no undoable "
                                                "decision, or undo is off).")


class HistoryEntryPublic(BaseModel):
    case: CasePublic
    decision: DecisionPublic
    undo: UndoPublic


class HistoryPublic(BaseModel):
    data: list[HistoryEntryPublic]
    count: int = Field(description="Number of cases on this page.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    undo_window_s: float = Field(description="How long after a decision its reviewer may undo it (0: no undo).")


class AuditsPublic(BaseModel):
    data: list[AuditPublic]
    count: int


class CaseReject(_Body):
    reason: str = Field(min_length=1, max_length=500, description="Why the case is rejected (kept and audited).")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class CaseClassChange(_Body):
    kind: str = Field(min_length=1, max_length=64, description="The corrected violation kind.")


class CaseMerge(_Body):
    case_ids: list[DbId] = Field(min_length=1, max_length=100,
                                description="Pending cases folded into the case of the path.")


class CameraHealth(BaseModel):
    """Health of a camera: its source (connected? frames arriving?) and its pipeline worker."""

    state: str = Field(description="Source state: connecting, streaming, stale, reconnecting, ended, failed; "
                                   "unknown before the worker opened it.")
    frames_accepted: int = Field(description="Frames sampled from the source (pushed frames accepted).")
    frames_rejected: int = Field(description="Frames refused (black, frozen, corrupt, ...).")
    rejected_reasons: dict[str, int]
    last_frame_ts: datetime | None
    last_error: str | None = Field(description="The latest problem, one line.")
    worker: str = Field("not_running", description="Pipeline worker: starting, running, restarting, ended, "
                                                   "stopped, disabled, or not_running (no workers here).")
    fps_in: float | None = Field(None, description="Frames per second arriving from the source.")
    fps_sampled: float | None = Field(None, description="Frames per second sampled for analysis.")
    frames_dropped: int = Field(0, description="Samples dropped because the pipeline was behind.")
    reconnects: int = Field(0, description="Reconnection attempts of the source.")
    frames_processed: int = Field(0, description="Samples through the pipeline.")
    inference_ms: float | None = Field(None, description="Median detector time over recent samples.")
    lag_s: float | None = Field(None, description="How far the pipeline is behind the camera (live sources).")


class CameraPublic(BaseModel):
    """A configured camera; the source URL is left out (it may hold credentials), its scheme is shown."""

    id: str
    name: str
    enabled: bool
    timezone: str
    address: str
    grid_code: str
    position: PositionConfig | None
    zones: list[ZoneConfig]
    health: CameraHealth
    source_kind: str = Field("", description="How frames arrive: push, rtsp, rtsps, rtmp, http, https or file.")
    sample_fps: float | None = Field(None, description="Frames analysed per second.")


class CameraCreate(CameraConfig):
    """A new camera: the same fields (and checks) as a camera of the configuration file.

    The whole configuration is validated with it (unique camera id: 409 when taken; rules that name zones).
    """


class CameraUpdate(_Body):
    """A partial update of a camera: only the fields sent change; ``null`` clears ``position``, ``model``,
    ``rules`` or ``tracker``. The id is fixed (delete and create to rename); zones go through
    ``PUT /cameras/{id}/zones``. Values are checked like the configuration file's (the same messages)."""

    name: str | None = Field(None, description="Human-readable name.")
    enabled: bool | None = Field(None, description="Whether the camera is processed (false stops its worker).")
    source: str | None = Field(None, description="Stream URL (rtsp://, http(s)://, rtmp://, file://) or 'push'; "
                                                 "a change restarts the camera's worker.")
    sample_fps: float | None = Field(None, description="Frames analysed per second (a change restarts the worker).")
    timezone: str | None = Field(None, description="IANA time zone of the camera's location (e.g. Asia/Shanghai).")
    address: str | None = Field(None, description="Street address shown on cases.")
    grid_code: str | None = Field(None, description="Grid cell code (网格编码) of the digital case system.")
    position: PositionConfig | None = Field(None, description="Camera position; null clears it.")
    model: ModelSelection | None = Field(None, description="Model for this camera; null: the default model.")
    rules: RulesConfig | None = Field(None, description="Overrides of the default rules (replaces the camera's "
                                                        "overrides); null removes them.")
    tracker: TrackerSettings | None = Field(None, description="Overrides of the default tracker settings; null "
                                                              "removes them.")


class CameraSaved(CameraPublic):
    """A camera as stored after a create or update."""

    persisted: bool = Field(description=_PERSISTED)


class CameraDeleted(BaseModel):
    id: str
    persisted: bool = Field(description=_PERSISTED)


class CamerasPublic(BaseModel):
    data: list[CameraPublic]
    count: int


class ZonesUpdate(_Body):
    zones: list[ZoneConfig] = Field(max_length=200, description="The camera's new zones (replace the old ones); at "
                                                                "most 2000 polygon points in all "
                                                                "(`service.config.check_zone_budget`).")

    @field_validator("zones", mode="before")
    @classmethod
    def _within_budget(cls, value: Any) -> Any:
        check_zone_budget(value)  # before any polygon is checked: the budget bounds that work
        return value


class ZonesPublic(BaseModel):
    camera_id: str
    zones: list[ZoneConfig]
    persisted: bool = Field(description=_PERSISTED)


class FrameAccepted(BaseModel):
    camera_id: str
    ts: datetime = Field(description="The frame's capture time as understood by the service.")
    queued: bool = Field(description="False when time-based sampling skipped the frame (accepted, not analysed).")
    index: int | None = None


class OutboxRetried(BaseModel):
    id: int
    status: str


class OutboxPublic(BaseModel):
    """One delivery of a confirmed case to one case system (an outbox row); the payload is left out."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Pass to POST /outbox/{id}/retry to queue a dead delivery again.")
    case_id: int
    adapter: str = Field(description="The case system: webhook or open311.")
    idempotency_key: str = Field(description="Sent on every attempt; the receiver dedupes by it.")
    status: str = Field(description="pending, sending, sent, dead (gave up; last_error says why), or needs_check "
                                    "(a post's outcome is unknown and the receiver could not be asked: never posted "
                                    "again automatically; check the receiver, then POST /outbox/{id}/resolve).")
    attempts: int = Field(description="Attempts of the current series.")
    next_attempt_at: datetime = Field(description="When a pending row is tried next.")
    last_error: str | None = Field(description="The latest failure, one line.")
    remote_id: str | None = Field(description="The receiver's id (Open311 service_request_id or token).")
    sent_at: datetime | None
    attempt_started_at: datetime | None = Field(
        description="When the earliest post whose outcome is still unknown started (null: none in doubt); such a "
                    "post is checked at the receiver before any new one.")
    created_at: datetime
    updated_at: datetime


class OutboxResolve(_Body):
    """How a person settled a needs_check delivery after looking at the receiver."""

    action: Literal["sent", "repost"] = Field(description="sent: the receiver has the case (give remote_id); "
                                                          "repost: it does not, post it again now.")
    remote_id: str | None = Field(None, min_length=1, max_length=200,
                                  description="The receiver's id for the case (required with sent).")

    @model_validator(mode="after")
    def _remote_id_with_sent(self) -> "OutboxResolve":
        if self.action == "sent" and self.remote_id is None:
            raise ValueError("remote_id: required with action 'sent'")
        if self.action == "repost" and self.remote_id is not None:
            raise ValueError("remote_id: only with action 'sent'")
        return self


class OutboxesPublic(BaseModel):
    data: list[OutboxPublic]
    count: int = Field(description="Number of rows on this page.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class HealthPublic(BaseModel):
    status: str
    database: str
    cameras: int
    details: dict[str, Any] = {}


class KindPublic(BaseModel):
    """One violation kind as reviewers see it (the kind catalogue's row, with this city's category code)."""

    kind: str = Field(description="The kind's name, as in cases' `kind`.")
    category_code: str = Field(description="The city's case category code for the kind.")
    title_zh: str = Field(description="Title in zh-CN.")
    title_en: str = Field(description="Title in English.")
    color: str = Field(description="#rrggbb of the kind's boxes.")
    classes: list[str] = Field(description="Detector classes of the kind, its own class first.")


class ZoneKindPublic(BaseModel):
    kind: str = Field(description="Zone kind, as in a zone's `kind`.")
    color: str = Field(description="#rrggbb of the zone on snapshots, evidence and in the zone editor.")


class KindsPublic(BaseModel):
    data: list[KindPublic]
    zone_kinds: list[ZoneKindPublic]


class MePublic(BaseModel):
    """Who the key belongs to (the review page shows the views of its role)."""

    name: str = Field(description="The key's holder (written into audit trails; owner of a pilot's flights).")
    role: str = Field(description="admin, reviewer or pilot.")


class FlightFromPath(_Body):
    """A flight already on the server (admin only): a video (its SRT beside it by name, or given) or a folder of
    geotagged stills, under a folder of ``settings.flights.allowed_dirs``."""

    path: str = Field(min_length=1, max_length=4096, description="Absolute server path of the video file or the "
                                                                  "stills folder.")
    srt: str | None = Field(None, min_length=1, max_length=4096,
                            description="The video's DJI SRT (default: VIDEO.SRT beside the video).")
    name: str = Field("", max_length=200, description="Human-readable name of the flight.")


class FlightProgressPublic(BaseModel):
    """Where a flight's job is."""

    stage: str | None = Field(description="telemetry, detect, merge, rules, outputs, done; null before it starts.")
    percent: float = Field(description="0..100 of the job (detection is nearly all of it).")
    frames_done: int = Field(description="Sampled frames analysed.")
    frames_total: int | None = Field(description="Sampled frames to analyse (null before sampling).")
    findings: int | None = Field(description="Objects found so far (sightings while detecting, then findings).")
    eta_s: float | None = Field(description="Estimated seconds left (null when unknown).")


class FlightLinks(BaseModel):
    flight: str = Field(description="This flight.")
    cancel: str = Field(description="POST: cancel it (queued or running).")
    report: str = Field(description="The one-page report (HTML; images under files/).")
    report_link: str = Field(description="POST: a short-lived report URL a browser opens without a key.")
    findings: str = Field(description="findings.geojson (RFC 7946).")
    cases: str = Field(description="The cases of this flight.")


class FlightPublic(BaseModel):
    """A drone flight job: its status, progress and outcome."""

    id: str
    name: str
    status: str = Field(description="queued, running, done, failed or cancelled.")
    source_name: str = Field(description="The video file or stills folder name (no server folders).")
    created_by: str | None = Field(description="The key holder who submitted it.")
    created_at: datetime
    started_at: datetime | None = Field(description="When its (latest) run started.")
    ended_at: datetime | None
    progress: FlightProgressPublic
    error: str | None = Field(description="Why it failed, one line.")
    notes: list[str] = Field(description="What the run could not do (partial telemetry, skipped stills, ...).")
    cases: int = Field(description="Cases its violations opened or updated.")
    case_ids: list[int] | None = Field(description="Those cases (null for pilot keys, which do not read cases).")
    attempts: int = Field(description="Times the job started (more than one: restarted after the service stopped).")
    lat_deg: float | None = Field(description="Where it started (take-off point), once known.")
    lon_deg: float | None
    links: FlightLinks


class FlightsPublic(BaseModel):
    data: list[FlightPublic]
    count: int = Field(description="Number of flights in data.")


class ReportLinkPublic(BaseModel):
    url: str = Field(description="Open in a browser: the report and its images, no key needed until expires_at.")
    expires_at: datetime
