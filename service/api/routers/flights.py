"""``/flights``: drone flights as background jobs — submit (upload or server path), list, status, cancel, report.

Who may do what:

- **pilot** keys upload flights (``POST /flights`` multipart) and read the status of the flights they
  submitted (``GET /flights``, ``GET /flights/{id}``), nothing else: not other flights, not reports, not cases;
- **reviewer** keys list flights and open their reports and findings (they review the resulting cases);
- **admin** keys do everything, including naming a file on the server (``POST /flights`` with JSON ``path``,
  under ``settings.flights.allowed_dirs`` only) and cancelling.

An upload is streamed to ``<flights dir>/<flight_id>/input/`` with the size limit enforced while it arrives
(`service.api.uploads`); the flight is queued (202) and the service's `FlightWorker` runs it. The report and
its images are served from the flight's output folder with path traversal refused (`service.flights.flight_file`);
a browser, which cannot send the key, opens the report through a short-lived link (``POST .../report-link``).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service.api.auth import Principal
from service.api.deps import AdminDep, FlightReaderDep, FlightUploaderDep, ReviewerDep, Services, ServicesDep
from service.api.errors import problem, validation_items
from service.api.schemas import (FlightFromPath, FlightLinks, FlightProgressPublic, FlightPublic, FlightsPublic,
                                 ReportLinkPublic, error_responses)
from service.api.uploads import UploadRejected, UploadTooLarge, receive_multipart
from service.db.models import FLIGHT_STATUSES
from service.flights import (FlightJob, FlightNotFoundError, FlightSource, FlightStateError, StillsError,
                             extract_stills, flight_file, new_flight_id, remove_flight_dir)
from service.settings import flights_dir

router = APIRouter(prefix="/flights", tags=["flights"])
audit_log = logging.getLogger("streetwatch.audit")

FlightStatus = Literal[FLIGHT_STATUSES]  # type: ignore[valid-type]
_ERRORS = error_responses(401, 403, 404, 429)
_MAX_JSON_BYTES = 64 * 1024
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".png": "image/png", ".json": "application/json", ".geojson": "application/geo+json"}
# The report is one self-contained page with inline CSS and JS and images by relative path: nothing else loads.
_FILE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a shared link's token must not leak to where the report links
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data: blob:; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; base-uri 'self'; form-action 'none'; "
                               "frame-ancestors 'self'",
}
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "video": {"type": "string", "format": "binary", "description": "The flight video (.mp4, .mov, ...)."},
                "srt": {"type": "string", "format": "binary", "description": "Its DJI .SRT telemetry."},
                "stills": {"type": "string", "format": "binary", "description": "A zip of geotagged JPEG stills "
                                                                               "(instead of a video)."},
                "name": {"type": "string", "maxLength": 200, "description": "Name of the flight."},
            }}},
        # Inline: no route declares the model, so FastAPI would not list it in components and a $ref would dangle.
        "application/json": {"schema": FlightFromPath.model_json_schema()},
    },
}


# --- helpers ---------------------------------------------------------------------------------------------

def _links(flight_id: str) -> FlightLinks:
    base = f"/api/v1/flights/{quote(flight_id)}"
    return FlightLinks(flight=base, cancel=f"{base}/cancel", report=f"{base}/report",
                       report_link=f"{base}/report-link", findings=f"{base}/findings.geojson",
                       cases=f"/api/v1/cases?flight_id={quote(flight_id)}")


def _public(job: FlightJob, opened: int, principal: Principal) -> FlightPublic:
    return FlightPublic(
        id=job.id, name=job.name, status=job.status,
        source_name=job.input.display_name() if job.input is not None else Path(job.source).name,
        created_by=job.created_by, created_at=job.created_at, started_at=job.started_at, ended_at=job.ended_at,
        progress=FlightProgressPublic(stage=job.stage, percent=round(100.0 * job.progress, 1),
                                      frames_done=job.frames_done, frames_total=job.frames_total,
                                      findings=job.findings, eta_s=job.eta_s),
        error=job.error, notes=list(job.notes), cases=max(len(job.case_ids), opened),
        case_ids=None if principal.role == "pilot" else list(job.case_ids), attempts=job.attempts,
        lat_deg=job.lat_deg, lon_deg=job.lon_deg, links=_links(job.id))


def _one(services: Services, job: FlightJob, principal: Principal) -> FlightPublic:
    return _public(job, services.flights.cases_opened([job.id]).get(job.id, 0), principal)


def _readable(services: Services, flight_id: str, principal: Principal) -> FlightJob:
    """The flight, if this key may read it (a pilot: only the flights it submitted)."""
    try:
        job = services.flights.get(flight_id)
    except FlightNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    if principal.role == "pilot" and job.created_by != principal.name:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="Authorization: a pilot key may read the flights it submitted only")
    return job


def _out_dir(services: Services, flight_id: str) -> Path:
    return flights_dir(services.settings) / flight_id / "out"


def _serve(services: Services, job: FlightJob, relative: str) -> FileResponse:
    path = flight_file(_out_dir(services, job.id), relative)
    media_type = _MEDIA_TYPES.get(Path(relative).suffix.lower())
    if path is None or media_type is None:
        what = "no report yet" if relative == "report.html" else f"no file {relative!r}"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"flight {job.id}: {what} (status {job.status})")
    return FileResponse(path, media_type=media_type, headers=_FILE_HEADERS)


# --- submit ----------------------------------------------------------------------------------------------

def _stored_name(field: str, filename: str) -> str:
    from service.drone import VIDEO_SUFFIXES

    suffix = Path(filename).suffix.lower()
    if field == "video":
        if suffix not in VIDEO_SUFFIXES:
            raise UploadRejected("video", f"{filename!r} is not a video ({', '.join(VIDEO_SUFFIXES)})")
        return f"flight{suffix}"
    if field == "srt":
        if suffix != ".srt":
            raise UploadRejected("srt", f"{filename!r} is not a DJI .SRT telemetry file")
        return "flight.SRT"  # beside flight.<video suffix>: found by name as the CLI finds it
    if field == "stills":
        if suffix != ".zip":
            raise UploadRejected("stills", f"{filename!r} is not a .zip of JPEG stills")
        return "stills.zip"
    raise UploadRejected(field, "unknown file field (video, srt, stills)")


def _check_input(source: FlightSource, field: str) -> None:
    from service.drone import FlightInputError

    try:
        source.flight_input()
    except FlightInputError as exc:
        raise problem(422, field, str(exc), "bad_flight_input", ["body", field]) from None


async def _from_upload(request: Request, services: Services, flight_id: str) -> tuple[FlightSource, str]:
    limits = services.settings.flights
    input_dir = flights_dir(services.settings) / flight_id / "input"
    try:
        upload = await receive_multipart(request, input_dir, max_bytes=limits.max_upload_bytes,
                                         file_name=_stored_name, text_fields={"name"})
    except UploadTooLarge as exc:
        # Connection: close, so the server stops receiving the rest rather than draining it for keep-alive.
        raise HTTPException(413, detail=[{"field": "body", "msg": str(exc), "type": "too_large", "loc": ["body"]}],
                            headers={"Connection": "close"}) from None
    except UploadRejected as exc:
        raise problem(422, exc.field, exc.msg, "bad_upload", ["body", exc.field]) from None
    files = upload.files
    name = upload.fields.get("name", "").strip()
    if len(name) > 200:
        raise problem(422, "name", "at most 200 characters", "too_long", ["body", "name"])
    if ("video" in files) == ("stills" in files):
        raise problem(422, "video", "upload a video (with its srt) or a zip of stills, not both or neither",
                      "missing", ["body", "video"])
    if "srt" in files and "video" not in files:
        raise problem(422, "srt", "an SRT goes with a video", "bad_upload", ["body", "srt"])
    for part in files.values():
        if part.size_bytes == 0:
            raise problem(422, part.field, f"{part.filename!r} is empty", "empty", ["body", part.field])
    if "video" in files:
        video = files["video"]
        if "srt" not in files:
            raise problem(422, "srt", f"{video.filename!r} needs its DJI .SRT telemetry (upload it as srt)",
                          "missing", ["body", "srt"])
        source = FlightSource(video=str(video.path), srt=str(files["srt"].path))
        _check_input(source, "video")
        return source, name or Path(video.filename).stem[:200]
    stills = files["stills"]
    try:
        # JPEG does not compress: the stills unpack to about the zip's size; the limit stops a zip bomb.
        await run_in_threadpool(extract_stills, stills.path, input_dir / "stills",
                                max_bytes=limits.max_upload_bytes)
    except StillsError as exc:
        raise problem(422, "stills", str(exc).removeprefix("stills: "), "bad_stills", ["body", "stills"]) from None
    stills.path.unlink(missing_ok=True)
    source = FlightSource(stills=str(input_dir / "stills"))
    _check_input(source, "stills")
    return source, name or Path(stills.filename).stem[:200]


def _allowed(services: Services, raw: str, field: str) -> Path:
    """`raw` resolved, if it lies under a folder of ``settings.flights.allowed_dirs``; else 403/422."""
    path = Path(raw)
    if not path.is_absolute():
        raise problem(422, field, f"{raw!r}: give an absolute server path", "not_absolute", ["body", field])
    allowed = [Path(d).resolve() for d in services.settings.flights.allowed_dirs]
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"{field}: this service reads no server files (settings.flights.allowed_dirs "
                                   f"is empty); upload the flight instead")
    resolved = path.resolve()  # links are followed first: a link inside an allowed folder may not lead out
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"{field}: {raw} is not under a folder of settings.flights.allowed_dirs "
                                   f"({', '.join(map(str, allowed))})")
    if not resolved.exists():
        raise problem(422, field, f"{raw}: no such file or folder", "not_found", ["body", field])
    return resolved


async def _from_path(request: Request, services: Services, principal: Principal) -> tuple[FlightSource, str]:
    if principal.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="Authorization: only an admin key may name a file on the server; upload the "
                                   "flight (multipart) instead")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_JSON_BYTES:
            raise problem(413, "body", f"a JSON body is at most {_MAX_JSON_BYTES} bytes", "too_large", ["body"])
    try:
        spec = FlightFromPath.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        raise problem(422, "body", f"not JSON ({exc.msg} at {exc.pos})", "json_invalid", ["body"]) from None
    except UnicodeDecodeError as exc:  # json.loads of bytes decodes them first (found by schemathesis: was a 500)
        raise problem(422, "body", f"not JSON (not UTF-8 text at byte {exc.start})", "json_invalid",
                      ["body"]) from None
    except ValidationError as exc:
        raise HTTPException(422, detail=validation_items(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])) from None
    path = _allowed(services, spec.path, "path")
    srt = _allowed(services, spec.srt, "srt") if spec.srt is not None else None
    if path.is_dir():
        if srt is not None:
            raise problem(422, "srt", "a folder of stills takes no srt (stills carry their own GPS)", "bad_input",
                          ["body", "srt"])
        source = FlightSource(stills=str(path))
    else:
        source = FlightSource(video=str(path), srt=None if srt is None else str(srt))
    _check_input(source, "path")
    return source, spec.name.strip() or path.stem[:200]


@router.post("", response_model=FlightPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Submit a drone flight (upload, or a server path for admins); it is queued",
             responses={**_ERRORS, **error_responses(413, 415, 422)},
             openapi_extra={"requestBody": _UPLOAD_BODY})
async def submit_flight(request: Request, response: Response, services: ServicesDep,
                        principal: FlightUploaderDep) -> FlightPublic:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    flight_id = new_flight_id()
    root = flights_dir(services.settings)
    try:
        if content_type == "multipart/form-data":
            source, name = await _from_upload(request, services, flight_id)
        elif content_type == "application/json":
            source, name = await _from_path(request, services, principal)
        else:
            raise problem(415, "content-type", f"must be multipart/form-data (an upload) or application/json (a "
                                               f"server path), got {content_type or 'none'!r}", "unsupported",
                          ["header", "content-type"])
        timezone_name = (services.config.drone.telemetry.timezone if services.config.drone is not None else "UTC")
        job = await run_in_threadpool(services.flights.create, flight_id, input=source, name=name,
                                      created_by=principal.name, timezone_name=timezone_name)
    except BaseException:
        await run_in_threadpool(remove_flight_dir, root, flight_id)  # nothing of a refused upload stays
        raise
    if services.flight_worker is not None:
        services.flight_worker.wake()
    audit_log.info("flight %s submitted by %s (%s): %s", job.id, principal.name, principal.role,
                   source.display_name())
    response.headers["Location"] = _links(job.id).flight
    return _public(job, 0, principal)


# --- read ------------------------------------------------------------------------------------------------

@router.get("", response_model=FlightsPublic, summary="List flights, newest first (pilots: their own)",
            responses=error_responses(401, 403, 422, 429))
def list_flights(
    services: ServicesDep, principal: FlightReaderDep,
    status_: Annotated[FlightStatus | None, Query(alias="status", description="Only flights in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50,
) -> FlightsPublic:
    jobs = services.flights.list(status=status_, limit=limit,
                                 created_by=principal.name if principal.role == "pilot" else None)
    opened = services.flights.cases_opened(j.id for j in jobs)
    data = [_public(j, opened.get(j.id, 0), principal) for j in jobs]
    return FlightsPublic(data=data, count=len(data))


@router.get("/{flight_id}", response_model=FlightPublic, summary="One flight: status, progress, outcome",
            responses=_ERRORS)
def get_flight(flight_id: str, services: ServicesDep, principal: FlightReaderDep) -> FlightPublic:
    return _one(services, _readable(services, flight_id, principal), principal)


@router.post("/{flight_id}/cancel", response_model=FlightPublic, summary="Cancel a queued or running flight",
             responses={**_ERRORS, **error_responses(409)})
def cancel_flight(flight_id: str, services: ServicesDep, admin: AdminDep) -> FlightPublic:
    try:
        job = services.flights.request_cancel(flight_id)
    except FlightNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except FlightStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    if services.flight_worker is not None:
        services.flight_worker.cancel(flight_id)
    audit_log.info("flight %s cancelled by %s", flight_id, admin.name)
    return _one(services, job, admin)


@router.get("/{flight_id}/report", response_class=Response, response_model=None,
            summary="The flight's one-page report (HTML; its images load from files/)",
            responses={200: {"content": {"text/html": {}}, "description": "The report."}, **_ERRORS})
def flight_report(flight_id: str, services: ServicesDep, reviewer: ReviewerDep) -> Response:
    job = _readable(services, flight_id, reviewer)
    path = flight_file(_out_dir(services, job.id), "report.html")
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"flight {job.id}: no report yet (status {job.status})")
    # The page lives in the output folder; served here, its relative image paths resolve under files/.
    base = html.escape(f"/api/v1/flights/{quote(job.id)}/files/", quote=True)
    text = path.read_text(encoding="utf-8")
    lower = text.lower()
    at = lower.find("<head>")
    tag = f'<base href="{base}">'
    text = text[:at + 6] + tag + text[at + 6:] if at >= 0 else tag + text
    return Response(text, media_type="text/html; charset=utf-8", headers=_FILE_HEADERS)


@router.post("/{flight_id}/report-link", response_model=ReportLinkPublic,
             summary="A short-lived URL of the report that a browser opens without a key", responses=_ERRORS)
def flight_report_link(flight_id: str, services: ServicesDep, reviewer: ReviewerDep) -> ReportLinkPublic:
    job = _readable(services, flight_id, reviewer)
    if flight_file(_out_dir(services, job.id), "report.html") is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"flight {job.id}: no report yet (status {job.status})")
    token = services.report_links.token(job.id)
    return ReportLinkPublic(url=f"/api/v1/flights/{quote(job.id)}/shared/{token}/report.html",
                            expires_at=services.report_links.expires_at(token))


@router.get("/{flight_id}/findings.geojson", response_class=FileResponse, response_model=None,
            summary="The flight's findings (RFC 7946 FeatureCollection; case ids once ingested)",
            responses={200: {"content": {"application/geo+json": {}}, "description": "The findings."}, **_ERRORS})
def flight_findings(flight_id: str, services: ServicesDep, reviewer: ReviewerDep) -> FileResponse:
    return _serve(services, _readable(services, flight_id, reviewer), "findings.geojson")


@router.get("/{flight_id}/files/{path:path}", response_class=FileResponse, response_model=None,
            summary="A file of the flight's output folder (report images, GeoJSON, summary)",
            responses={200: {"content": {"image/jpeg": {}, "text/html": {}, "application/json": {}},
                             "description": "The file."}, **_ERRORS})
def flight_output_file(flight_id: str, path: str, services: ServicesDep, reviewer: ReviewerDep) -> FileResponse:
    return _serve(services, _readable(services, flight_id, reviewer), path)


@router.get("/{flight_id}/shared/{token}/{path:path}", response_class=FileResponse, response_model=None,
            include_in_schema=False)
def shared_flight_file(flight_id: str, token: str, path: str, services: ServicesDep) -> FileResponse:
    """The report and its files through a link of `flight_report_link` (no key: the token is the permission)."""
    if not services.report_links.valid(flight_id, token):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="report link: unknown or expired (open the report again from the review page)")
    try:
        job = services.flights.get(flight_id)
    except FlightNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    return _serve(services, job, path)
