"""The HTTP service, built by a factory: ``create_app(settings) -> FastAPI``.

Nothing is created at import: the factory makes the engine, upgrades the schema, builds the case store, the
outbox, the key ring and one `PushSource` per camera configured with source ``push``, and keeps them on
``app.state.services`` (see `service.api.deps.Services`). When the app starts (ASGI lifespan), the background
workers start too (`service.workers.ServiceWorkers`: one pipeline thread per enabled camera when
``settings.run_cameras``, outbox delivery when ``settings.outbox.deliver``); at shutdown they are stopped, then
the push sources, then the engine is disposed.

Hostile input is bounded before any route runs: request bodies by `service.api.limits.BodyLimitMiddleware`
(per route group, before the body is read and before the key is checked), failed authentications per client
address (`service.api.ratelimit`). The database file and the evidence folder are created owner-only; evidence
writes are watched (`service.evidence_guard`: ``/health`` degraded, ``/ready`` 503), and evidence of reviewed
cases expires by policy (`service.retention`, a thread while the app runs camera workers).

Routes: ``/api/v1/cases``, ``/api/v1/cameras`` (create, update, delete, zones, snapshot; frames pushed to
``/api/v1/cameras/{id}/frames``), ``/api/v1/outbox``, ``/api/v1/flights`` (drone flight jobs: upload, progress,
cancel, report), ``/api/v1/me``, ``/api/v1/export`` (cases as a zip, `service.export`), and ``/health``,
``/metrics`` and the signed evidence links ``/evidence/{case_id}/{file}`` (no key) at the root. Every evidence
image served is its blurred copy (`service.privacy`; admins may ask for the original). Camera and zone changes are written
back to ``settings.config_path`` (kept in memory only when there is none). Drone flights run one at a time in
the `service.flights.FlightWorker` thread when ``settings.run_flights``.

Example:
    >>> app = create_app(Settings(database_path="/tmp/cases.db", evidence_dir="/tmp/evidence"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="0.0.0.0", port=8000)                                              # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable

from fastapi import FastAPI

from service.api.auth import KeyRing
from service.api.deps import Services
from service.api.errors import install_error_handlers
from service.api.limits import BodyLimitMiddleware, BodyLimits, RouteLimit
from service.api.ratelimit import FailedAuthLimiter
from service.api.routers import cameras, cases, docs, evidence, export, flights, kinds, me, outbox, system, web
from service.cases import CaseSettings, CaseStore, utc_now
from service.config import AppConfig, load_config
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.evidence_guard import EvidenceGuard
from service.flights import FlightStore, FlightWorker, ReportLinks
from service.metrics import PushCounters
from service.adapters.base import MQTT_ADAPTER
from service.adapters.mqtt import CameraAvailability, MqttAdapter, camera_online, install_case_events, mqtt_settings
from service.outbox import OutboxWorker
from service.pipeline import make_push_source
from service.privacy import PrivacyPolicy, PublicCopies
from service.retention import RetentionWorker
from service.serving import install_log_redaction
from service.evidence_links import EvidenceLinks, load_or_create_secret
from service.settings import Settings, effective_adapters, evidence_link_secret_path, flights_dir
from service.workers import DetectorPool, ServiceWorkers, WorkerContext

__all__ = ["API_PREFIX", "build_adapters", "build_evidence_links", "create_app"]

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
    install_log_redaction()
    evidence_dir = Path(settings.evidence_dir).resolve()
    _make_private(settings, evidence_dir)
    engine = make_engine(DatabaseSettings(path=settings.database_path, url=settings.database_url,
                                          busy_timeout_s=settings.busy_timeout_s))
    upgrade_schema(engine)
    session_factory = make_session_factory(engine)
    if settings.outbox.mqtt is not None:
        install_case_events(session_factory)  # each case change queues its MQTT event in its own transaction
    case_settings = CaseSettings.from_config(config, adapters=effective_adapters(settings),
                                             undo_window_s=settings.review.undo_window_s)
    links = build_evidence_links(settings)
    push_sources = {c.id: make_push_source(settings, c) for c in config.cameras if c.source == "push"}
    o = settings.outbox
    services = Services(
        settings=settings, engine=engine, session_factory=session_factory,
        cases=CaseStore(session_factory, case_settings),
        outbox=OutboxWorker(session_factory, build_adapters(settings) if o.deliver else {},
                            max_attempts=o.max_attempts, base_backoff_s=o.base_backoff_s,
                            max_backoff_s=o.max_backoff_s, lease_s=o.lease_s,
                            reconcile_after_s=o.reconcile_after_s, max_reconcile_attempts=o.max_reconcile_attempts,
                            evidence_links=links),
        keys=KeyRing(settings.api_keys), config=config, push_sources=push_sources, push_counters=PushCounters(),
        flights=FlightStore(session_factory), report_links=ReportLinks(settings.flights.report_link_ttl_s),
        auth_limiter=FailedAuthLimiter(settings.auth_limit.burst, settings.auth_limit.per_minute,
                                       settings.auth_limit.max_clients),
        evidence_guard=EvidenceGuard(evidence_dir, settings.evidence_min_free_bytes),
        evidence_links=links,
        public_copies=PublicCopies(PrivacyPolicy.from_settings(settings.privacy)),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers = None
        if settings.run_cameras or o.deliver:
            ctx = WorkerContext(config=lambda: services.config, cases=services.cases,
                                # Absolute, so stored evidence paths do not depend on the working directory.
                                evidence_dir=evidence_dir, evidence_guard=services.evidence_guard,
                                latest_frames=services.latest_frames,
                                push_sources=services.push_sources,
                                detectors=DetectorPool(settings.inference_threads), stop=threading.Event(),
                                evidence_interval_s=settings.evidence_interval_s,
                                file_speed=settings.file_camera_speed)
            cluster = None
            if settings.run_cameras and settings.engine != "local":
                from service.cluster.engine import RayCameraEngine  # imports Ray: only with the Ray engine

                cluster = RayCameraEngine(settings, lambda: services.config, services.runtimes)
            workers = ServiceWorkers(ctx, services.runtimes, services.outbox if o.deliver else None, o.poll_s,
                                     cameras=settings.run_cameras, cluster=cluster).start()
            services.workers = workers
        flight_worker = None
        if settings.run_flights:
            f = settings.flights
            flight_worker = FlightWorker(services.flights, services.cases, lambda: services.config,
                                         flights_dir(settings), threads=f.intra_op_threads,
                                         progress_interval_s=f.progress_interval_s, poll_s=f.poll_s).start()
            services.flight_worker = flight_worker
        retention = None
        r = settings.retention
        if settings.run_cameras and (r.rejected_days is not None or r.confirmed_days is not None):
            retention = RetentionWorker(services.session_factory, r, evidence_dir, utc_now).start()
        stop_mqtt = _start_mqtt(settings, services)
        try:
            yield
        finally:
            if retention is not None:
                retention.stop()
            services.workers = None
            services.flight_worker = None
            if flight_worker is not None:
                flight_worker.stop()
            if workers is not None:
                workers.stop()
            stop_mqtt()  # after the outbox thread: publishes the service offline and disconnects
            for source in services.push_sources.values():
                source.stop()
            services.engine.dispose()

    # docs_url=None: /docs comes from service.api.routers.docs with Swagger UI served locally (no CDN).
    app = FastAPI(title="streetwatch", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Candidate cases from city cameras, reviewed by humans, posted to the city's case "
                              "system.")
    app.state.services = services
    install_error_handlers(app)
    # Body limits per route group, checked before the body is read and before the key (see service.api.limits).
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits(default_bytes=settings.max_json_bytes, routes=(
        RouteLimit("POST", rf"^{API_PREFIX}/cameras/[^/]+/frames$", settings.max_push_bytes),
        RouteLimit("POST", rf"^{API_PREFIX}/flights$", settings.flights.max_upload_bytes),
    )))
    app.include_router(cases.router, prefix=API_PREFIX)
    app.include_router(cameras.router, prefix=API_PREFIX)
    app.include_router(outbox.router, prefix=API_PREFIX)
    app.include_router(kinds.router, prefix=API_PREFIX)
    app.include_router(flights.router, prefix=API_PREFIX)
    app.include_router(me.router, prefix=API_PREFIX)
    app.include_router(export.router, prefix=API_PREFIX)
    app.include_router(system.router)
    app.include_router(evidence.router)
    app.include_router(web.router)
    app.include_router(docs.router)
    return app


def build_evidence_links(settings: Settings) -> EvidenceLinks | None:
    """The signer of evidence links for case systems (None without ``public_base_url``: no links are made)."""
    if not settings.public_base_url:
        return None
    secret = (settings.evidence_link_secret.encode("utf-8") if settings.evidence_link_secret
              else load_or_create_secret(evidence_link_secret_path(settings)))
    return EvidenceLinks(secret=secret, base_url=settings.public_base_url, ttl_s=settings.evidence_link_ttl_s)


def _make_private(settings: Settings, evidence_dir: Path) -> None:
    """Create the evidence folder and the SQLite database file owner-only (they hold images of people and
    plates, and the cases); existing ones are left as they are (an operator may have chosen otherwise)."""
    if not evidence_dir.exists():
        evidence_dir.mkdir(parents=True, mode=0o700)
        evidence_dir.chmod(0o700)  # mkdir's mode is masked by the umask
    if not settings.database_url and settings.database_path is not None:
        path = Path(settings.database_path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # SQLite creates its -wal/-shm/-journal files with the database file's permissions.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


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
    if o.mqtt is not None:
        adapters[MQTT_ADAPTER] = MqttAdapter(mqtt_settings(o.mqtt))
    return adapters


def _start_mqtt(settings: Settings, services: Services) -> Callable[[], None]:
    """Start publishing camera availability when this process delivers MQTT and runs cameras; returns what
    stops it and closes the broker connection (a no-op without MQTT)."""
    adapter = services.outbox.adapters.get(MQTT_ADAPTER)
    if not isinstance(adapter, MqttAdapter):
        return lambda: None
    adapter.start()
    cameras = None
    if settings.run_cameras and settings.outbox.mqtt is not None:
        cameras = CameraAvailability(adapter, lambda: {
            camera_id: camera_online(rt.state, rt.source_health.connected if rt.source_health else None)
            for camera_id, rt in list(services.runtimes.items())}, settings.outbox.mqtt.camera_interval_s).start()

    def stop() -> None:
        if cameras is not None:
            cameras.stop()
        adapter.close()
    return stop
