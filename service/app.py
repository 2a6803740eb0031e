"""The HTTP service, built by a factory: ``create_app(settings) -> FastAPI``.

Nothing is created at import: the factory makes the engine, upgrades the schema, builds the case store, the
outbox, the key ring and one `PushSource` per camera configured with source ``push``, and keeps them on
``app.state.services`` (see `service.api.deps.Services`). When the app starts (ASGI lifespan), the background
workers start too (`service.workers.ServiceWorkers`: one pipeline thread per enabled camera when
``settings.run_cameras``, outbox delivery when ``settings.outbox.deliver``); at shutdown they are stopped, then
the push sources, then the engine is disposed.

Routes: ``/api/v1/cases``, ``/api/v1/cameras`` (create, update, delete, zones, snapshot; frames pushed to
``/api/v1/cameras/{id}/frames``), ``/api/v1/outbox``, ``/api/v1/flights`` (drone flight jobs: upload, progress,
cancel, report), ``/api/v1/me``, and ``/health``, ``/metrics`` at the root. Camera and zone changes are written
back to ``settings.config_path`` (kept in memory only when there is none). Drone flights run one at a time in
the `service.flights.FlightWorker` thread when ``settings.run_flights``.

Example:
    >>> app = create_app(Settings(database_path="/tmp/cases.db", evidence_dir="/tmp/evidence"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="0.0.0.0", port=8000)                                              # doctest: +SKIP
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI

from service.api.auth import KeyRing
from service.api.deps import Services
from service.api.errors import install_error_handlers
from service.api.routers import cameras, cases, flights, kinds, me, outbox, system, web
from service.cases import CaseSettings, CaseStore
from service.config import AppConfig, load_config
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.flights import FlightStore, FlightWorker, ReportLinks
from service.metrics import PushCounters
from service.outbox import OutboxWorker
from service.pipeline import make_push_source
from service.settings import Settings, effective_adapters, flights_dir
from service.workers import DetectorPool, ServiceWorkers, WorkerContext

__all__ = ["API_PREFIX", "build_adapters", "create_app"]

API_PREFIX = "/api/v1"


def create_app(settings: Settings, config: AppConfig | None = None) -> FastAPI:
    """A ready FastAPI app for `settings`.

    Args:
        settings: Database, evidence folder, keys, limits.
        config: The camera configuration; default: loaded from ``settings.config_path`` (none: no cameras).

    Raises:
        service.config.ConfigError: The configuration file is invalid.
    """
    if config is None:
        config = load_config(settings.config_path) if settings.config_path else AppConfig(config_version=1)
    engine = make_engine(DatabaseSettings(path=settings.database_path, url=settings.database_url,
                                          busy_timeout_s=settings.busy_timeout_s))
    upgrade_schema(engine)
    session_factory = make_session_factory(engine)
    case_settings = CaseSettings.from_config(config, adapters=effective_adapters(settings),
                                             evidence_base_url=settings.evidence_base_url)
    push_sources = {c.id: make_push_source(settings, c) for c in config.cameras if c.source == "push"}
    o = settings.outbox
    services = Services(
        settings=settings, engine=engine, session_factory=session_factory,
        cases=CaseStore(session_factory, case_settings),
        outbox=OutboxWorker(session_factory, build_adapters(settings) if o.deliver else {},
                            max_attempts=o.max_attempts, base_backoff_s=o.base_backoff_s,
                            max_backoff_s=o.max_backoff_s, lease_s=o.lease_s),
        keys=KeyRing(settings.api_keys), config=config, push_sources=push_sources, push_counters=PushCounters(),
        flights=FlightStore(session_factory), report_links=ReportLinks(settings.flights.report_link_ttl_s),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers = None
        if settings.run_cameras or o.deliver:
            ctx = WorkerContext(config=lambda: services.config, cases=services.cases,
                                # Absolute, so stored evidence paths do not depend on the working directory.
                                evidence_dir=Path(settings.evidence_dir).resolve(),
                                latest_frames=services.latest_frames,
                                push_sources=services.push_sources,
                                detectors=DetectorPool(settings.inference_threads), stop=threading.Event(),
                                evidence_interval_s=settings.evidence_interval_s,
                                file_speed=settings.file_camera_speed)
            workers = ServiceWorkers(ctx, services.runtimes, services.outbox if o.deliver else None, o.poll_s,
                                     cameras=settings.run_cameras).start()
            services.workers = workers
        flight_worker = None
        if settings.run_flights:
            f = settings.flights
            flight_worker = FlightWorker(services.flights, services.cases, lambda: services.config,
                                         flights_dir(settings), threads=f.intra_op_threads,
                                         progress_interval_s=f.progress_interval_s, poll_s=f.poll_s).start()
            services.flight_worker = flight_worker
        try:
            yield
        finally:
            services.workers = None
            services.flight_worker = None
            if flight_worker is not None:
                flight_worker.stop()
            if workers is not None:
                workers.stop()
            for source in services.push_sources.values():
                source.stop()
            services.engine.dispose()

    app = FastAPI(title="streetwatch", version="1", lifespan=lifespan,
                  description="Candidate cases from city cameras, reviewed by humans, posted to the city's case "
                              "system.")
    app.state.services = services
    install_error_handlers(app)
    app.include_router(cases.router, prefix=API_PREFIX)
    app.include_router(cameras.router, prefix=API_PREFIX)
    app.include_router(outbox.router, prefix=API_PREFIX)
    app.include_router(kinds.router, prefix=API_PREFIX)
    app.include_router(flights.router, prefix=API_PREFIX)
    app.include_router(me.router, prefix=API_PREFIX)
    app.include_router(system.router)
    app.include_router(web.router)
    return app


def build_adapters(settings: Settings) -> dict:
    """The outbox adapters configured in `settings`, by name."""
    from service.adapters import Open311Adapter, Open311Settings, WebhookAdapter, WebhookSettings

    adapters: dict = {}
    o = settings.outbox
    if o.webhook is not None:
        adapters["webhook"] = WebhookAdapter(WebhookSettings(url=o.webhook.url, secret=o.webhook.secret,
                                                             timeout_s=o.webhook.timeout_s))
    if o.open311 is not None:
        c = o.open311
        adapters["open311"] = Open311Adapter(Open311Settings(
            endpoint=c.endpoint, api_key=c.api_key, service_codes=dict(c.service_codes),
            jurisdiction_id=c.jurisdiction_id, idempotency_attribute=c.idempotency_attribute, timeout_s=c.timeout_s))
    return adapters
