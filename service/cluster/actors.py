"""What one camera actor holds on a Ray node: the camera's pipeline worker, its case store, its health.

`CameraHost` is a plain class (no Ray in it): `service.cluster.engine` makes it a Ray actor, one per camera,
and the tests also build it directly. It runs the camera with the local engine's own code, a
`service.workers.ServiceWorkers` restricted to this one camera: the same `CameraWorker` loop (source,
`CameraPipeline` from `service.pipeline.build_pipeline`, evidence, `CaseStore.ingest`), the same restart after
a failure, the same reaction to configuration changes (`ServiceWorkers.sync`, `CameraWorker._reconfigure`).
There is one home for the per-camera loop; the actor only gives it a process on some node and a database
every node reaches (PostgreSQL).

After a restart (Ray runs ``__init__`` again with its first arguments, on any node) nothing of the old tracker
or rules is left, exactly as when the local engine restarts: the stall or bike still standing there is seen
again, its new violation opens, and `CaseStore.ingest` folds it into the open case of the same camera, zone
and kind whose boxes overlap and that was seen within ``cooldown_s`` (the dedupe of `service.cases`; the
audit row says ``dedupe_attach``). So a restarted actor rebuilds its open violations from the database's
open cases rather than opening second ones. The engine then sends it the current configuration
(`CameraHost.configure`) when the one it was built with is older.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from service.cases import CaseSettings, CaseStore
from service.db import DatabaseSettings, make_engine, make_session_factory
from service.evidence_guard import EvidenceGuard
from service.settings import effective_adapters
from service.workers import CameraRuntime, DetectorPool, LatestFrames, ServiceWorkers, WorkerContext

if TYPE_CHECKING:
    from service.config import AppConfig
    from service.settings import Settings

__all__ = ["CameraHost", "CameraHostState", "config_for_camera"]


@dataclass(frozen=True)
class CameraHostState:
    """What a camera actor reports to the engine.

    Attributes:
        camera_id: The camera.
        node_id: The Ray node the actor runs on (hex; None outside Ray).
        pid: The actor's process.
        config_version: The engine's version of the configuration the actor runs.
        started_at_s: Wall-clock time (Unix seconds) the actor was built: a restart shows as a new value.
        source: The camera's source in the configuration the actor runs (None: the camera is not in it).
        runtime: The camera worker's health and counters (None while it has none: a disabled camera).
    """

    camera_id: str
    node_id: str | None
    pid: int
    config_version: int
    started_at_s: float
    source: str | None
    runtime: CameraRuntime | None


def config_for_camera(config: "AppConfig", camera_id: str) -> "AppConfig":
    """`config` with only `camera_id` among its cameras (the defaults, rules, grid and model stay), so that the
    local engine's workers, run inside an actor, start and watch this camera only.

    Example:
        >>> config_for_camera(config, "gate-7").cameras[0].id  # doctest: +SKIP
        'gate-7'
    """
    return config.model_copy(update={"cameras": [c for c in config.cameras if c.id == camera_id]})


def _node_id() -> str | None:
    try:
        import ray
    except ImportError:  # built outside Ray (tests of the host itself)
        return None
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


class CameraHost:
    """One camera's pipeline, case store and health inside a camera actor (see the module docstring).

    Args:
        camera_id: The camera this host runs (others in `config` are ignored).
        settings: The server settings (a PostgreSQL ``database_url``; an absolute ``evidence_dir`` that every
            node reaches).
        config: The whole camera configuration.
        config_version: The engine's version number of `config`.
    """

    def __init__(self, camera_id: str, settings: "Settings", config: "AppConfig", config_version: int) -> None:
        self.camera_id = camera_id
        self._config = config_for_camera(config, camera_id)
        self._version = config_version
        self._started_at_s = time.time()
        evidence_dir = Path(settings.evidence_dir)
        self._db = make_engine(DatabaseSettings(path=settings.database_path, url=settings.database_url,
                                                busy_timeout_s=settings.busy_timeout_s))
        session_factory = make_session_factory(self._db)
        if getattr(settings.outbox, "mqtt", None) is not None:
            # Cases written here must queue their MQTT events as the API process's do (`create_app`).
            from service.adapters.mqtt import install_case_events

            install_case_events(session_factory)
        cases = CaseStore(session_factory, CaseSettings.from_config(
            config, adapters=effective_adapters(settings), undo_window_s=settings.review.undo_window_s))
        self._ctx = WorkerContext(config=lambda: self._config, cases=cases, evidence_dir=evidence_dir,
                                  latest_frames=LatestFrames(), push_sources={},  # the engine runs no push camera here
                                  detectors=DetectorPool(settings.inference_threads), stop=threading.Event(),
                                  evidence_interval_s=settings.evidence_interval_s,
                                  file_speed=settings.file_camera_speed,
                                  evidence_guard=EvidenceGuard(evidence_dir, settings.evidence_min_free_bytes))
        self._runtimes: dict[str, CameraRuntime] = {}
        self._workers = ServiceWorkers(self._ctx, self._runtimes).start()

    def configure(self, config: "AppConfig", config_version: int) -> int:
        """Run the camera with `config` from now on; returns the version now running.

        Only a change of what this camera sees (its own entry, defaults, rules, model, grid) reaches its worker:
        an edit of another camera leaves this one's tracks and open violations alone. An older version than the
        running one is ignored (calls from several API replicas may cross).
        """
        if config_version < self._version:
            return self._version
        mine = config_for_camera(config, self.camera_id)
        self._version = config_version
        if mine != self._config:
            self._config = mine
            self._workers.sync()
        return self._version

    def state(self) -> CameraHostState:
        """The host's placement, configuration version and the camera worker's health."""
        camera = next(iter(self._config.cameras), None)
        return CameraHostState(self.camera_id, _node_id(), os.getpid(), self._version, self._started_at_s,
                               None if camera is None else camera.source, self._runtimes.get(self.camera_id))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the camera worker and the database connections (before the actor is killed)."""
        self._workers.stop(timeout_s)
        self._db.dispose()
