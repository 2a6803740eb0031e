"""The ``engine`` section of the server settings: where the camera pipelines run.

``engine: local`` (the default) runs one pipeline thread per camera inside ``streetwatch serve``
(`service.workers`). ``engine: {ray: {...}}`` runs each camera as an actor on a Ray cluster
(`service.cluster.engine`); its cases then go to a PostgreSQL database every node reaches
(`service.settings.Settings` refuses the Ray engine with SQLite).

Only pydantic here: the settings load without Ray installed.

Example:
    >>> RayEngineSettings(address="ray://head.city.example:10001").namespace
    'streetwatch'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EngineSettings", "RayEngineSettings"]

# "auto" (a node of the cluster: ray.init finds it), a Ray Client URL, or a GCS address host:port.
_ADDRESS_PATTERN = r"^(auto|ray://[A-Za-z0-9.\-\[\]:]+:\d{1,5}|[A-Za-z0-9.\-\[\]]+:\d{1,5})$"


class RayEngineSettings(BaseModel):
    """How ``serve`` uses a Ray cluster for its camera pipelines (one actor per camera)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field("auto", max_length=300, pattern=_ADDRESS_PATTERN,
                         description="The cluster: 'auto' (this machine is a node of it), "
                                     "'ray://head:10001' (Ray Client) or 'head:6379' (the head's GCS address).")
    namespace: str = Field("streetwatch", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                           description="Ray namespace of the camera actors (their names are camera:<id>); one "
                                       "per streetwatch deployment on a shared cluster.")
    camera_actor_cpus: float = Field(0.5, gt=0, le=64,
                                     description="CPUs Ray reserves for each camera actor (placement only: "
                                                 "Ray does not cap the actor's use).")
    placement: Literal["spread", "default"] = Field(
        "spread", description="'spread': Ray spreads the camera actors over the nodes (a failed node takes "
                              "few cameras with it); 'default': Ray packs them.")
    detached: bool = Field(False, description="Camera actors outlive the API process that made them (several "
                                              "API replicas on one cluster; stop them with `ray kill` or by "
                                              "deleting the camera). Off: they end with the API process.")
    reconcile_interval_s: float = Field(2.0, ge=0.2, le=60,
                                        description="How often the API process reads the actors' health and "
                                                    "re-sends the configuration to an actor Ray restarted.")
    call_timeout_s: float = Field(10.0, gt=0, le=300,
                                  description="Longest wait for one call to a camera actor (health, config).")


class EngineSettings(BaseModel):
    """``engine: {ray: {...}}``: run the camera pipelines on a Ray cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ray: RayEngineSettings = Field(description="The Ray cluster and how camera actors are placed.")
