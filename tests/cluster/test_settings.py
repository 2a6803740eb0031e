"""The ``engine`` switch of the server settings (`service.cluster.settings`, `service.settings.Settings`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.cluster.settings import RayEngineSettings
from service.settings import Settings

PG_URL = "postgresql+psycopg://streetwatch@/streetwatch?host=/run/postgresql"


def settings(**fields) -> Settings:
    return Settings(evidence_dir="/tmp/evidence", **{"database_url": PG_URL, **fields})


def test_local_is_the_default_engine():
    assert Settings(database_path="/tmp/cases.db", evidence_dir="/tmp/evidence").engine == "local"


@pytest.mark.parametrize("address", ["auto", "ray://head.city.example:10001", "10.0.0.5:6379", "127.0.0.1:6379"])
def test_ray_engine_addresses_accepted(address):
    engine = settings(engine={"ray": {"address": address}}).engine
    assert engine.ray.address == address and engine.ray.namespace == "streetwatch"


@pytest.mark.parametrize(("fields", "message"), [
    ({"database_url": "", "database_path": "/tmp/cases.db", "engine": {"ray": {}}}, "needs a PostgreSQL database_url"),
    ({"database_url": "sqlite:////tmp/cases.db", "engine": {"ray": {}}}, "needs a PostgreSQL database_url"),
    ({"engine": "ray"}, "engine"),
    ({"engine": {"ray": {"address": "http://head:8265"}}}, "address"),
    ({"engine": {"ray": {"address": "ray://head"}}}, "address"),
    ({"engine": {"ray": {"camera_actor_cpus": 0}}}, "camera_actor_cpus"),
    ({"engine": {"ray": {"reconcile_interval_s": 0.01}}}, "reconcile_interval_s"),
    ({"engine": {"ray": {"namespace": "a b"}}}, "namespace"),
    ({"engine": {"ray": {"placement": "random"}}}, "placement"),
    ({"engine": {"ray": {}, "dask": {}}}, "dask"),
    ({"engine": {"ray": {"adress": "auto"}}}, "adress"),
])
def test_bad_engine_settings_are_refused_by_name(fields, message):
    with pytest.raises(ValidationError, match=message):
        settings(**fields)


def test_every_ray_setting_is_described():
    assert all(f.description for f in RayEngineSettings.model_fields.values())
