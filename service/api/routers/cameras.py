"""``/cameras``: configured cameras with a health placeholder, zone edits (admin), pushed frames (camera key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from detector.sources.push import PushRejected
from service.api.deps import AdminDep, CameraPusherDep, ReviewerDep, Services, ServicesDep
from service.api.errors import problem
from service.api.schemas import (CameraHealth, CameraPublic, CamerasPublic, ErrorPublic, FrameAccepted, ZonesPublic,
                                 ZonesUpdate)
from service.config import AppConfig, CameraConfig, format_validation_error

router = APIRouter(prefix="/cameras", tags=["cameras"])

_ERRORS = {401: {"model": ErrorPublic}, 403: {"model": ErrorPublic}, 404: {"model": ErrorPublic}}
# PushRejected.reason -> HTTP status; every other reason (corrupt, truncated, empty, black, ...) is 422.
_PUSH_STATUS = {"oversized": 413, "not_jpeg": 415, "out_of_order": 409, "stopped": 503}


def _camera(services: Services, camera_id: str) -> CameraConfig:
    for camera in services.config.cameras:
        if camera.id == camera_id:
            return camera
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no camera {camera_id!r} in the configuration")


def _public(services: Services, camera: CameraConfig) -> CameraPublic:
    runtime = services.runtimes.get(camera.id)
    push = services.push_sources.get(camera.id)
    h = push.health() if push is not None else (runtime.source_health if runtime is not None else None)
    if h is None:
        health = CameraHealth(state="unknown", frames_accepted=0, frames_rejected=0, rejected_reasons={},
                              last_frame_ts=None, last_error=runtime.last_error if runtime else None,
                              worker=runtime.state if runtime else "not_running")
    else:
        health = CameraHealth(
            state=h.state.value, frames_accepted=h.frames_sampled, frames_rejected=h.frames_rejected,
            rejected_reasons=dict(h.rejected_reasons), last_frame_ts=h.last_frame_ts,
            last_error=(runtime.last_error if runtime and runtime.state == "restarting" else None) or h.last_error,
            worker=runtime.state if runtime else "not_running", fps_in=round(h.fps_in, 2),
            fps_sampled=round(h.fps_sampled, 2), frames_dropped=h.frames_dropped, reconnects=h.reconnects,
            frames_processed=runtime.frames_processed if runtime else 0,
            inference_ms=runtime.median_inference_ms() if runtime else None,
            lag_s=round(runtime.lag_s, 3) if runtime and runtime.lag_s is not None else None)
    return CameraPublic(id=camera.id, name=camera.name, enabled=camera.enabled, timezone=camera.timezone,
                        address=camera.address, grid_code=camera.grid_code, position=camera.position,
                        zones=camera.zones, health=health)


@router.get("", response_model=CamerasPublic, summary="List the configured cameras", responses=_ERRORS)
def list_cameras(services: ServicesDep, _: ReviewerDep) -> CamerasPublic:
    data = [_public(services, c) for c in services.config.cameras]
    return CamerasPublic(data=data, count=len(data))


@router.get("/{camera_id}", response_model=CameraPublic, summary="One configured camera with its health",
            responses=_ERRORS)
def get_camera(camera_id: str, services: ServicesDep, _: ReviewerDep) -> CameraPublic:
    return _public(services, _camera(services, camera_id))


@router.put("/{camera_id}/zones", response_model=ZonesPublic, summary="Replace a camera's zones",
            responses={**_ERRORS, 422: {"model": ErrorPublic}})
def put_zones(camera_id: str, body: ZonesUpdate, services: ServicesDep, _: AdminDep) -> ZonesPublic:
    with services.config_lock:
        config = services.config
        index = next((i for i, c in enumerate(config.cameras) if c.id == camera_id), None)
        if index is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no camera {camera_id!r} in the configuration")
        raw = config.model_dump()
        raw["cameras"][index]["zones"] = [z.model_dump() for z in body.zones]
        try:
            # Whole-config validation: zone ids unique per camera, rules still reference existing zones.
            new_config = AppConfig.model_validate(raw)
        except ValidationError as exc:
            prefix = f"cameras[{index}]."
            items = []
            for line in format_validation_error(exc):
                path, _, reason = line.partition(": ")
                field = path.removeprefix(prefix)
                items.append({"field": field, "msg": reason, "type": "value_error", "loc": ["body", field]})
            raise HTTPException(422, detail=items) from None
        services.config = new_config  # only a fully valid configuration replaces the old one
        return ZonesPublic(camera_id=camera_id, zones=new_config.cameras[index].zones)


def _parse_ts(value: str, field: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise problem(422, field, f"not an ISO 8601 time: {value[:64]!r}", "bad_ts", ["query", field]) from None
    if ts.tzinfo is None:
        raise problem(422, field, "needs a time zone (e.g. 2026-06-01T08:00:00+08:00 or ...Z)", "bad_ts",
                      ["query", field])
    return ts


async def _read_capped(request: Request, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it exceeds `max_bytes` (never buffers more than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/{camera_id}/frames", response_model=FrameAccepted, status_code=status.HTTP_202_ACCEPTED,
    summary="Push one JPEG frame of a camera",
    responses={**_ERRORS, 409: {"model": ErrorPublic}, 413: {"model": ErrorPublic}, 415: {"model": ErrorPublic},
               422: {"model": ErrorPublic}, 503: {"model": ErrorPublic}},
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def push_frame(
    camera_id: str, request: Request, services: ServicesDep, pusher: CameraPusherDep,
    ts: Annotated[str | None, Query(max_length=64, description="Capture time, ISO 8601 with zone.")] = None,
    x_frame_timestamp: Annotated[str | None, Header(max_length=64,
                                                    description="Capture time, ISO 8601 with zone "
                                                                "(when the query has none).")] = None,
) -> FrameAccepted:
    if pusher.role == "camera" and pusher.camera_id != camera_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"Authorization: this key may push frames of camera {pusher.camera_id!r} only")
    _camera(services, camera_id)
    source = services.push_sources.get(camera_id)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"camera {camera_id!r} takes no pushed frames (its source is not 'push')")
    counters = services.push_counters

    def reject(status_code: int, field: str, msg: str, reason: str) -> HTTPException:
        counters.rejected(camera_id, reason)
        return problem(status_code, field, msg, reason, ["body" if field == "body" else "query", field])

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("image/jpeg", "image/jpg"):
        raise reject(415, "content-type", f"must be image/jpeg, got {content_type or 'none'!r}", "not_jpeg")
    if ts is not None:
        frame_ts = _parse_ts(ts, "ts")
    elif x_frame_timestamp is not None:
        frame_ts = _parse_ts(x_frame_timestamp, "X-Frame-Timestamp")
    else:
        raise reject(422, "ts", "missing capture time: give query ts or header X-Frame-Timestamp (ISO 8601 with "
                                "zone)", "bad_ts")
    max_bytes = services.settings.max_push_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise reject(413, "body", f"{declared} bytes exceeds the limit of {max_bytes}", "oversized")
    data = await _read_capped(request, max_bytes)
    if data is None:
        raise reject(413, "body", f"body exceeds the limit of {max_bytes} bytes", "oversized")
    try:
        frame = await run_in_threadpool(source.push, data, frame_ts)
    except PushRejected as exc:
        code = _PUSH_STATUS.get(exc.reason, 422)
        counters.rejected(camera_id, exc.reason)
        field = "ts" if exc.reason in ("out_of_order", "bad_ts") else "body"
        raise problem(code, field, str(exc), exc.reason, ["query" if field == "ts" else "body", field]) from None
    counters.accepted(camera_id)
    return FrameAccepted(camera_id=camera_id, ts=frame_ts, queued=frame is not None,
                         index=None if frame is None else frame.index)
