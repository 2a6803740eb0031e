"""The camera actor's host without Ray (`service.cluster.actors`): which configuration reaches its camera worker.

The real actors on a real cluster: tests/cluster/test_ray_engine.py.
"""

from __future__ import annotations

import pytest

from service.cluster.actors import CameraHost, config_for_camera
from service.config import AppConfig
from service.db import DatabaseSettings, make_engine, upgrade_schema
from service.settings import Settings
from service.workers import ServiceWorkers


def make_config(**cam_b) -> AppConfig:
    return AppConfig.model_validate({"config_version": 1, "cameras": [
        {"id": "cam-a", "source": "rtsp://127.0.0.1:9/a", "enabled": False, "timezone": "UTC"},
        {"id": "cam-b", "source": "rtsp://127.0.0.1:9/b", "enabled": False, "timezone": "UTC", **cam_b}]})


@pytest.fixture
def host(tmp_path, monkeypatch):
    syncs: list[str] = []
    original = ServiceWorkers.sync
    monkeypatch.setattr(ServiceWorkers, "sync", lambda self: (syncs.append("sync"), original(self))[1])
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence")
    engine = make_engine(DatabaseSettings(path=settings.database_path))
    upgrade_schema(engine)
    engine.dispose()
    h = CameraHost("cam-a", settings, make_config(), config_version=1)
    h.syncs = syncs
    yield h
    h.stop(timeout_s=5)


def test_config_for_camera_keeps_one_camera_and_the_shared_sections():
    config = make_config()
    mine = config_for_camera(config, "cam-b")
    assert [c.id for c in mine.cameras] == ["cam-b"]
    assert mine.model == config.model and mine.rules == config.rules
    assert config_for_camera(config, "cam-x").cameras == []


def test_state_names_the_camera_its_source_and_version(host):
    state = host.state()
    assert (state.camera_id, state.source, state.config_version, state.node_id) == ("cam-a", "rtsp://127.0.0.1:9/a", 1,
                                                                                     None)
    assert state.runtime is not None and state.runtime.state == "disabled"


@pytest.mark.parametrize(("change", "version", "synced", "running"), [
    ({"name": "renamed"}, 2, False, 2),    # another camera's edit: this camera's worker is left alone
    ({}, 2, False, 2),                     # nothing changed for it
    ({}, 0, False, 1),                     # an older version (another API replica's late call): ignored
])
def test_only_changes_of_its_own_camera_reach_the_worker(host, change, version, synced, running):
    assert host.configure(make_config(**change), version) == running
    assert bool(host.syncs) is synced and host.state().config_version == running


def test_a_change_of_its_own_camera_reaches_the_worker(host):
    moved = make_config().model_copy(update={"cameras": [
        make_config().cameras[0].model_copy(update={"source": "rtsp://127.0.0.1:9/moved"}), make_config().cameras[1]]})
    assert host.configure(moved, 2) == 2
    assert host.syncs == ["sync"] and host.state().source == "rtsp://127.0.0.1:9/moved"
    removed = make_config().model_copy(update={"cameras": [make_config().cameras[1]]})
    host.configure(removed, 3)
    assert host.state().source is None
