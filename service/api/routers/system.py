"""``/health`` and ``/ready`` (no auth) and ``/metrics`` (Prometheus text exposition, `service.metrics`).

``/health`` always answers 200 with ``status`` ``ok`` or ``degraded`` and the reasons in ``details``; ``/ready``
answers the same body with 503 while degraded (database unreachable, evidence writes failing, or the evidence disk
below its watermark), for load balancers and orchestrators.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from service.api.deps import ServicesDep
from service.api.schemas import HealthPublic
from service.metrics import CONTENT_TYPE, render_metrics

router = APIRouter(tags=["system"])


def _health(services) -> HealthPublic:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # reported, not raised: health must answer
        database = "unreachable"
    reasons = [] if database == "ok" else ["database unreachable"]
    details = {}
    if services.evidence_guard is not None:
        e = services.evidence_guard.state(refresh=True)
        reasons += e.reasons
        details["evidence"] = {"written_total": e.written_total, "write_failures_total": e.write_failures_total,
                               "skipped_low_disk_total": e.skipped_low_disk_total, "free_bytes": e.free_bytes,
                               "min_free_bytes": e.min_free_bytes, "last_error": e.last_error}
    if reasons:
        details["reasons"] = reasons
    return HealthPublic(status="degraded" if reasons else "ok", database=database,
                        cameras=len(services.config.cameras), details=details)


@router.get("/health", response_model=HealthPublic, summary="Liveness, database reachability and evidence writes")
def health(services: ServicesDep) -> HealthPublic:
    return _health(services)


@router.get("/ready", response_model=HealthPublic, summary="Readiness: 503 while degraded",
            responses={503: {"model": HealthPublic, "description": "Degraded: details.reasons says why."}})
def ready(services: ServicesDep) -> JSONResponse:
    body = _health(services)
    return JSONResponse(body.model_dump(mode="json"),
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE if body.status != "ok" else 200)


@router.get("/metrics", response_class=Response, response_model=str, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(services: ServicesDep) -> Response:
    evidence = services.evidence_guard.state() if services.evidence_guard is not None else None
    body = await run_in_threadpool(render_metrics, services.session_factory, services.push_counters,
                                   services.runtimes, dict(services.outbox.outcomes), evidence, services.build)
    return Response(body, media_type=CONTENT_TYPE)
