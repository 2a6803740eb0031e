"""``/health`` (no auth) and ``/metrics`` (Prometheus text exposition)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from service.api.deps import ServicesDep
from service.api.schemas import HealthPublic
from service.metrics import CONTENT_TYPE, render_metrics

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthPublic, summary="Liveness and database reachability")
def health(services: ServicesDep) -> HealthPublic:
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # reported, not raised: health must answer
        database = "unreachable"
    return HealthPublic(status="ok" if database == "ok" else "degraded", database=database,
                        cameras=len(services.config.cameras))


@router.get("/metrics", response_class=Response, response_model=str, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(services: ServicesDep) -> Response:
    body = await run_in_threadpool(render_metrics, services.session_factory, services.push_counters,
                                   services.runtimes, dict(services.outbox.outcomes))
    return Response(body, media_type=CONTENT_TYPE)
