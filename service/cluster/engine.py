"""The Ray engine: each enabled camera runs as a Ray actor (`service.cluster.actors.CameraHost`) somewhere on
the cluster, and the API process keeps the set of actors in line with the configuration.

`RayCameraEngine` is the supervisor; it lives in the API process (``streetwatch serve`` with
``engine: {ray: ...}``, started and stopped by the app's lifespan through `service.workers.ServiceWorkers`):

* `sync` (called at start and by every camera edit through the API, as the local engine's is) creates the actor
  of a new or re-enabled camera, kills the actor of a deleted or disabled one, and sends the new configuration
  to the others at once (`CameraHost.configure`; a camera whose own settings did not change is left alone).
* Actors are named ``camera:<id>`` in the configured namespace, placed by Ray (``SPREAD`` over the nodes by
  default) and restarted by Ray without limit (``max_restarts=-1``) when they or their node die: on another
  node when theirs is gone. A restarted actor is built again with the configuration it was first given; the
  engine's reconcile loop (every ``reconcile_interval_s``) sees its older version and sends the current one.
* The reconcile loop also copies each actor's health (`service.workers.CameraRuntime`) into the app's
  ``runtimes``, so ``/api/v1/cameras`` and ``/metrics`` report every camera, wherever it runs, and keeps
  each camera's node (`placement`) for operators and tests.

Not here (yet): pushed frames (``source: push``) do not reach actors, so a push camera is reported as
``unsupported`` and gets no actor; the detector is not a Ray Serve deployment (each actor loads its model);
drone flights still run in the API process. Each is named in docs/SCALING.md.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import ray

from service.cluster.actors import CameraHost, CameraHostState
from service.workers import CameraRuntime

if TYPE_CHECKING:
    from service.cluster.settings import RayEngineSettings
    from service.config import AppConfig, CameraConfig
    from service.settings import Settings

__all__ = ["ACTOR_PREFIX", "RayCameraEngine", "actor_name"]

ACTOR_PREFIX = "camera:"
PUSH_UNSUPPORTED = "push cameras need engine: local (frames pushed to the API do not reach Ray actors yet)"

_CameraActor = ray.remote(CameraHost)


def actor_name(camera_id: str) -> str:
    """The Ray actor name of a camera (camera ids cannot hold ``:``, so names never collide)."""
    return f"{ACTOR_PREFIX}{camera_id}"


class RayCameraEngine:
    """The supervisor of the camera actors (see the module docstring).

    Args:
        settings: The server settings; ``settings.engine.ray`` says where the cluster is.
        config: Returns the current configuration (replaced as a whole by API edits).
        runtimes: Filled with each camera's health (the API and /metrics read it).
        clock: Monotonic seconds (tests).
    """

    def __init__(self, settings: "Settings", config: Callable[[], "AppConfig"],
                 runtimes: dict[str, CameraRuntime], clock: Callable[[], float] = time.monotonic) -> None:
        if settings.engine == "local":
            raise ValueError("engine: RayCameraEngine needs settings with engine: {ray: {...}}")
        # Absolute: the actors run in other processes and working directories (every node must reach the path).
        self.settings = settings.model_copy(update={"evidence_dir": Path(settings.evidence_dir).resolve()})
        self.ray_settings: RayEngineSettings = settings.engine.ray
        self._config = config
        self.runtimes = runtimes
        self._clock = clock
        self._actors: dict[str, Any] = {}  # camera id -> actor handle
        self._sources: dict[str, tuple[str, float]] = {}  # camera id -> what its actor was made with
        self.placement: dict[str, str] = {}  # camera id -> node id (hex) its actor last reported
        self._pending: dict[str, Any] = {}  # camera id -> its unanswered state() call
        self._version = 0
        self._sent: AppConfig | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected_here = False

    @property
    def config_version(self) -> int:
        """The version of the configuration last sent to the actors (wall-clock ns of the change it follows)."""
        return self._version

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "RayCameraEngine":
        """Connect to the cluster (unless this process already is), start the cameras, start reconciling."""
        if not ray.is_initialized():
            r = self.ray_settings
            ray.init(address=r.address, namespace=r.namespace, log_to_driver=False)
            self._connected_here = True
        self.sync()
        self._thread = threading.Thread(target=self._reconcile_loop, name="ray-cameras", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reconciling; stop and kill the camera actors unless they are detached (another API replica may
        still serve them); disconnect when `start` connected."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if not self.ray_settings.detached:
            with self._lock:
                for camera_id in list(self._actors):
                    self._kill(camera_id, timeout_s)
        if self._connected_here:
            ray.shutdown()

    # --- configuration ---------------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the actors in line with the current configuration (at start and after every camera edit)."""
        with self._lock:
            config = self._config()
            if config is not self._sent:
                # Wall-clock nanoseconds, so that a restarted API process (or another replica) numbers its
                # configuration above what detached actors already run; +1 keeps it rising within a process.
                self._version = max(self._version + 1, time.time_ns())
                self._sent = config
            wanted = {c.id: c for c in config.cameras}
            for camera_id in list(self._actors):
                camera = wanted.get(camera_id)
                if camera is None or not camera.enabled or camera.source == "push":
                    self._kill(camera_id, self.ray_settings.call_timeout_s)
            for camera_id in list(self.runtimes):
                if camera_id not in wanted:
                    del self.runtimes[camera_id]
                    self.placement.pop(camera_id, None)
            for camera in config.cameras:
                if not camera.enabled or camera.source == "push":
                    runtime = self.runtimes.setdefault(camera.id, CameraRuntime(camera.id))
                    runtime.state = "disabled" if not camera.enabled else "unsupported"
                    runtime.last_error = None if not camera.enabled else PUSH_UNSUPPORTED
                    continue
                if camera.id in self._actors:
                    # At once, not waited for: a slow or restarting actor must not hold up the API; the
                    # reconcile loop re-sends to an actor that missed it.
                    self._actors[camera.id].configure.remote(config, self._version)
                else:
                    self._create(camera, config)

    def _create(self, camera: "CameraConfig", config: "AppConfig") -> None:
        r = self.ray_settings
        options: dict[str, Any] = dict(name=actor_name(camera.id), namespace=r.namespace, num_cpus=r.camera_actor_cpus,
                                       max_restarts=-1, get_if_exists=True)
        if r.placement == "spread":
            options["scheduling_strategy"] = "SPREAD"
        if r.detached:
            options["lifetime"] = "detached"
        actor = _CameraActor.options(**options).remote(camera.id, self.settings, config, self._version)
        # An actor that already existed (detached, made by another API replica) gets this configuration too.
        actor.configure.remote(config, self._version)
        self._actors[camera.id] = actor
        self.runtimes.setdefault(camera.id, CameraRuntime(camera.id)).state = "starting"

    def _kill(self, camera_id: str, timeout_s: float) -> None:
        actor = self._actors.pop(camera_id)
        self._pending.pop(camera_id, None)
        try:  # let the worker close its source and database connections first
            ray.get(actor.stop.remote(), timeout=timeout_s)
        except (ray.exceptions.RayError, TimeoutError):
            pass  # dead or stuck: killed below either way
        ray.kill(actor, no_restart=True)
        self.placement.pop(camera_id, None)

    # --- health and restarts ---------------------------------------------------------------------------

    def states(self, timeout_s: float | None = None) -> dict[str, CameraHostState | Exception]:
        """Each actor's state, or the error that stood in for it (a dead node, a restart still under way)."""
        with self._lock:
            actors = dict(self._actors)
            # A call still unanswered (an actor busy starting, or restarting) is waited for again rather than
            # asked twice: calls must not pile up in a slow actor's queue.
            refs = {camera_id: self._pending.get(camera_id) or actor.state.remote()
                    for camera_id, actor in actors.items()}
        out: dict[str, CameraHostState | Exception] = {}
        deadline = self._clock() + (timeout_s or self.ray_settings.call_timeout_s)
        for camera_id, ref in refs.items():
            try:
                out[camera_id] = ray.get(ref, timeout=max(0.1, deadline - self._clock()))
            except ray.exceptions.GetTimeoutError as exc:
                out[camera_id] = exc
                with self._lock:
                    if camera_id in self._actors:
                        self._pending[camera_id] = ref
                continue
            except ray.exceptions.RayError as exc:
                out[camera_id] = exc
            with self._lock:
                self._pending.pop(camera_id, None)
        return out

    def reconcile(self) -> dict[str, CameraHostState | Exception]:
        """One pass: read every actor's state into ``runtimes`` and ``placement``; re-send the configuration to an
        actor running an older one (Ray restarted it). Returns the states read."""
        states = self.states()
        with self._lock:
            for camera_id, state in states.items():
                actor = self._actors.get(camera_id)
                if actor is None:
                    continue  # deleted meanwhile
                if isinstance(state, Exception):
                    runtime = self.runtimes.setdefault(camera_id, CameraRuntime(camera_id))
                    runtime.state = "restarting"
                    runtime.last_error = f"actor unavailable: {type(state).__name__}"
                    continue
                if state.node_id is not None:
                    self.placement[camera_id] = state.node_id
                if state.runtime is not None:
                    self.runtimes[camera_id] = state.runtime
                if state.config_version < self._version and self._sent is not None:
                    actor.configure.remote(self._sent, self._version)
        return states

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self.ray_settings.reconcile_interval_s):
            try:
                self.reconcile()
            except Exception as exc:  # the cluster away for a moment: keep reconciling; health says why
                for runtime in list(self.runtimes.values()):
                    runtime.last_error = f"cluster: {type(exc).__name__}: {exc}"[:300]
