"""``/cameras``: configured cameras with their health; camera and zone edits (admin); snapshots; pushed frames.

Every edit goes through `_apply`: the changed configuration is validated as a whole (`service.config_edit`;
problems name the field of the request body), written back to ``settings.config_path`` atomically, swapped in
for the old one, and the push buffers and camera workers are brought in line (`ServiceWorkers.sync`). When the
settings name no configuration file the change lives in memory only, and the response says so
(``persisted: false``). Each accepted change is logged on ``streetwatch.audit`` with the key's holder.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from detector.sources.base import one_line
from detector.sources.push import PushRejected
from service.api.auth import Principal
from service.api.deps import AdminDep, CameraPusherDep, ReviewerDep, Services, ServicesDep
from service.api.errors import problem
from service.api.schemas import (CameraCreate, CameraDeleted, CameraHealth, CameraPublic, CamerasPublic,
                                 CameraSaved, CameraUpdate, ErrorPublic, FrameAccepted, ZonesPublic, ZonesUpdate,
                                 error_responses)
from service.config import AppConfig, CameraConfig, ConfigError
from service.config_edit import ConfigRejected, config_document, validate_config, write_config_file
from service.pipeline import make_push_source
from service.snapshot import draw_zones, encode_jpeg

router = APIRouter(prefix="/cameras", tags=["cameras"])
audit_log = logging.getLogger("streetwatch.audit")

_ERRORS = error_responses(401, 403, 404, 429)
_WRITE_ERRORS = {**error_responses(400, 401, 403, 404, 413, 422, 429),
                 500: {"model": ErrorPublic, "description": "The configuration file could not be written; nothing "
                                                            "was changed."}}
# Camera fields a PATCH may set to null: the camera then falls back to the defaults.
_NULLABLE = ("position", "model", "rules", "tracker")
# Sources an admin may set through the API unless settings.allow_file_cameras: network streams and push. A local
# file or folder as a camera would let an API key read host files through the snapshot endpoint.
_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
# PushRejected.reason -> HTTP status; every other reason (corrupt, truncated, empty, black, ...) is 422.
_PUSH_STATUS = {"oversized": 413, "not_jpeg": 415, "out_of_order": 409, "stopped": 503}


def _camera(services: Services, camera_id: str) -> CameraConfig:
    for camera in services.config.cameras:
        if camera.id == camera_id:
            return camera
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"camera_id: no camera {camera_id!r} in the configuration")


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
                        zones=camera.zones, health=health, source_kind=camera.source.partition("://")[0],
                        sample_fps=camera.sample_fps)


def _index(config: AppConfig, camera_id: str) -> int:
    index = next((i for i, c in enumerate(config.cameras) if c.id == camera_id), None)
    if index is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"camera_id: no camera {camera_id!r} in the configuration")
    return index


def _check_source(services: Services, source: str | None) -> None:
    """422 naming ``source`` for a local file or folder source, unless the settings allow them."""
    if source is None or source == "push" or services.settings.allow_file_cameras:
        return
    scheme = source.partition("://")[0].lower() if "://" in source else ""
    if scheme not in _STREAM_SCHEMES:
        raise problem(422, "source", "must be 'push' or a stream URL (rtsp://, rtsps://, rtmp://, http(s)://); local "
                                     "files and folders need settings.allow_file_cameras", "source_not_allowed",
                      ["body", "source"])


def _validated(raw: dict[str, Any], index: int) -> AppConfig:
    """`raw` as a whole configuration; 422 naming each field relative to camera `index` (the request body)."""
    try:
        # Whole-config validation: ids unique, rules still reference existing zones of the right kind.
        return validate_config(raw, prefix=f"cameras[{index}].")
    except ConfigRejected as exc:
        raise HTTPException(422, detail=[{"field": field, "msg": reason, "type": "value_error", "loc": ["body", field]}
                                         for field, reason in exc.problems]) from None


def _sync_push_sources(services: Services, old: AppConfig, new: AppConfig) -> None:
    old_cameras = {c.id: c for c in old.cameras}
    new_cameras = {c.id: c for c in new.cameras}
    for camera_id in list(services.push_sources):
        camera, before = new_cameras.get(camera_id), old_cameras.get(camera_id)
        if camera is None or camera.source != "push" or before is None or camera.sample_fps != before.sample_fps:
            services.push_sources.pop(camera_id).stop()
    for camera in new.cameras:
        if camera.source == "push" and camera.id not in services.push_sources:
            services.push_sources[camera.id] = make_push_source(services.settings, camera)


def _apply(services: Services, new_config: AppConfig, who: Principal, action: str, camera_id: str) -> bool:
    """Make `new_config` (validated) the service's configuration; call with ``services.config_lock`` held.

    Returns whether it was written to the configuration file. Raises a 500 naming the file when it could not
    be written; the running configuration is then left as it was.
    """
    path = services.settings.config_path
    if path is not None:
        try:
            write_config_file(path, new_config, note=f"{action} {camera_id} by {who.name}")
        except (OSError, ConfigError) as exc:
            audit_log.error("config %s camera=%s by=%s refused: %s: %s", action, camera_id, who.name, path,
                            one_line(exc))
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                                detail=f"config_path: cannot write the configuration file: {one_line(exc)}; "
                                       "nothing was changed") from None
    old = services.config
    services.config = new_config  # only a fully valid configuration replaces the old one
    _sync_push_sources(services, old, new_config)
    for gone in {c.id for c in old.cameras} - {c.id for c in new_config.cameras}:
        services.latest_frames.discard(gone)
    if services.workers is not None:
        services.workers.sync()
    audit_log.info("config %s camera=%s by=%s role=%s persisted=%s%s", action, camera_id, who.name, who.role,
                   path is not None, f" file={path}" if path is not None else " (memory only: no config_path)")
    return path is not None


def _saved(services: Services, camera_id: str, persisted: bool) -> CameraSaved:
    public = _public(services, services.config.camera(camera_id))
    return CameraSaved(**public.model_dump(), persisted=persisted)


@router.get("", response_model=CamerasPublic, summary="List the configured cameras", responses=_ERRORS)
def list_cameras(services: ServicesDep, _: ReviewerDep) -> CamerasPublic:
    data = [_public(services, c) for c in services.config.cameras]
    return CamerasPublic(data=data, count=len(data))


@router.get("/{camera_id}", response_model=CameraPublic, summary="One configured camera with its health",
            responses=_ERRORS)
def get_camera(camera_id: str, services: ServicesDep, _: ReviewerDep) -> CameraPublic:
    return _public(services, _camera(services, camera_id))


@router.post("", response_model=CameraSaved, status_code=status.HTTP_201_CREATED, summary="Add a camera",
             responses={**_WRITE_ERRORS, 409: {"model": ErrorPublic}})
def create_camera(body: CameraCreate, services: ServicesDep, who: AdminDep) -> CameraSaved:
    _check_source(services, body.source)
    with services.config_lock:
        raw = config_document(services.config)
        if any(c.id == body.id for c in services.config.cameras):
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"id: a camera {body.id!r} exists already")
        raw["cameras"].append(body.model_dump(mode="json", exclude_unset=True))
        new_config = _validated(raw, len(raw["cameras"]) - 1)
        persisted = _apply(services, new_config, who, "create", body.id)
        return _saved(services, body.id, persisted)


@router.patch("/{camera_id}", response_model=CameraSaved, summary="Change a camera's settings",
              responses=_WRITE_ERRORS)
def update_camera(camera_id: str, body: CameraUpdate, services: ServicesDep, who: AdminDep) -> CameraSaved:
    _check_source(services, body.source)
    with services.config_lock:
        index = _index(services.config, camera_id)
        raw = config_document(services.config)
        camera = raw["cameras"][index]
        for key, value in body.model_dump(mode="json", exclude_unset=True).items():
            if value is None and key in _NULLABLE:
                camera.pop(key, None)
            else:
                camera[key] = value  # a null for any other field is refused by the validation below
        new_config = _validated(raw, index)
        if new_config == services.config and config_document(new_config) == config_document(services.config):
            return _saved(services, camera_id, services.settings.config_path is not None)  # nothing changed
        persisted = _apply(services, new_config, who, "update", camera_id)
        return _saved(services, camera_id, persisted)


@router.delete("/{camera_id}", response_model=CameraDeleted, summary="Remove a camera (its cases stay)",
               responses={**_ERRORS, 500: _WRITE_ERRORS[500]})
def delete_camera(camera_id: str, services: ServicesDep, who: AdminDep) -> CameraDeleted:
    with services.config_lock:
        index = _index(services.config, camera_id)
        raw = config_document(services.config)
        del raw["cameras"][index]
        new_config = _validated(raw, index)
        persisted = _apply(services, new_config, who, "delete", camera_id)
        return CameraDeleted(id=camera_id, persisted=persisted)


@router.put("/{camera_id}/zones", response_model=ZonesPublic, summary="Replace a camera's zones",
            responses=_WRITE_ERRORS)
def put_zones(camera_id: str, body: ZonesUpdate, services: ServicesDep, who: AdminDep) -> ZonesPublic:
    with services.config_lock:
        index = _index(services.config, camera_id)
        raw = config_document(services.config)
        raw["cameras"][index]["zones"] = [z.model_dump(mode="json", exclude_unset=True) for z in body.zones]
        new_config = _validated(raw, index)
        persisted = _apply(services, new_config, who, "zones", camera_id)
        return ZonesPublic(camera_id=camera_id, zones=new_config.cameras[index].zones, persisted=persisted)


@router.get(
    "/{camera_id}/snapshot.jpg", response_class=Response, summary="The camera's latest frame as JPEG",
    description="The latest frame the service received from the camera, with its zones drawn (outline and "
                "`id - kind` label, coloured by kind); `zones=false` gives the bare frame (the zone editor draws "
                "on that). 404 while no frame has arrived yet.",
    responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "JPEG; header X-Frame-Timestamp gives the frame's capture time."},
               **_ERRORS, 422: {"model": ErrorPublic}},
)
def snapshot(camera_id: str, services: ServicesDep, _: ReviewerDep,
             zones: Annotated[bool, Query(description="Draw the camera's zones on the frame.")] = True) -> Response:
    camera = _camera(services, camera_id)
    frame = services.latest_frames.get(camera_id)
    if frame is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"camera {camera_id!r} has no frame yet (a snapshot shows the latest frame "
                                   "received from the camera; try again once it streams or pushes one)")
    image = draw_zones(frame.image, camera.zones) if zones else frame.image
    return Response(encode_jpeg(image), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store", "X-Frame-Timestamp": frame.ts.isoformat()})


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
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"camera_id: camera {camera_id!r} takes no pushed frames (its source is not 'push')")
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
        field = "ts" if exc.reason in ("out_of_order", "bad_ts", "future_ts") else "body"
        raise problem(code, field, str(exc), exc.reason, ["query" if field == "ts" else "body", field]) from None
    counters.accepted(camera_id)
    if frame is not None:  # snapshots work whether or not a pipeline worker consumes the push buffer
        services.latest_frames.put(camera_id, frame)
    return FrameAccepted(camera_id=camera_id, ts=frame_ts, queued=frame is not None,
                         index=None if frame is None else frame.index)
