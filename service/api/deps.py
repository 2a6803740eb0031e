"""Shared dependencies (`Annotated` aliases): the app's services and the caller's principal by role."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from detector.sources.push import PushSource
from service.api.auth import KeyRing, Principal, require_roles
from service.api.ratelimit import FailedAuthLimiter
from service.cases import CaseStore
from service.evidence_guard import EvidenceGuard
from service.config import AppConfig
from service.evidence_links import EvidenceLinks
from service.flights import FlightStore, FlightWorker, ReportLinks
from service.metrics import BuildInfo, PushCounters, read_build_info
from service.outbox import OutboxWorker
from service.privacy import PublicCopies
from service.settings import Settings
from service.workers import CameraRuntime, LatestFrames, ServiceWorkers

__all__ = ["AdminDep", "CameraPusherDep", "FlightReaderDep", "FlightUploaderDep", "PageUserDep", "ReviewerDep",
           "Services", "ServicesDep"]


@dataclass
class Services:
    """Everything one app instance owns (kept on ``app.state.services``)."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    cases: CaseStore
    outbox: OutboxWorker
    keys: KeyRing
    config: AppConfig
    push_sources: dict[str, PushSource]
    push_counters: PushCounters
    config_lock: threading.Lock = field(default_factory=threading.Lock)
    latest_frames: LatestFrames = field(default_factory=LatestFrames)
    # Camera id -> its worker's state (empty when the app runs no camera workers).
    runtimes: dict[str, CameraRuntime] = field(default_factory=dict)
    # The background workers while the app is running (None before startup, after shutdown, or when the app
    # runs none); configuration changes call its sync().
    workers: ServiceWorkers | None = None
    # Drone flight jobs: their rows, the worker that runs them (None when this process runs none, or outside
    # the app's lifespan), and the browser links to their reports.
    flights: FlightStore | None = None
    flight_worker: FlightWorker | None = None
    report_links: ReportLinks = field(default_factory=ReportLinks)
    # Signs and checks the evidence links sent to case systems (None: no public_base_url, no links).
    evidence_links: EvidenceLinks | None = None
    # Failed authentications per client address (None: no limit).
    auth_limiter: FailedAuthLimiter | None = None
    # Evidence writes: failures, the disk-space watermark (health, readiness and metrics read it).
    evidence_guard: EvidenceGuard | None = None
    # Version and git commit for streetwatch_build_info, read once when the app is made.
    build: BuildInfo = field(default_factory=read_build_info)
    # The blurred (public) copies of evidence images served outside the service (`service.privacy`); None: made
    # under the default policy (never the originals).
    public_copies: PublicCopies | None = None


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]
ReviewerDep = Annotated[Principal, Depends(require_roles("reviewer", "admin"))]
CameraPusherDep = Annotated[Principal, Depends(require_roles("camera", "admin"))]
# Drone flights: pilots and admins upload; pilots read their own flights only (checked by the route).
FlightUploaderDep = Annotated[Principal, Depends(require_roles("pilot", "admin"))]
FlightReaderDep = Annotated[Principal, Depends(require_roles("pilot", "reviewer", "admin"))]
# Any key that uses the review page (not camera keys).
PageUserDep = Annotated[Principal, Depends(require_roles("pilot", "reviewer", "admin"))]
