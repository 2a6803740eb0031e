"""Fixtures of the cluster tests: a real three-node Ray cluster on this machine (`tests.cluster.ray_nodes`), a
PostgreSQL schema of their own, and a rendered scenario clip with a known violation.

The cluster needs Ray (the ``cluster`` extra, installed by scripts/test.sh) and PostgreSQL
(``STREETWATCH_TEST_PG_URL``; scripts/test.sh starts a throw-away server). Without them the tests skip with the
reason; in CI both are there, so they run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.cluster.ray_nodes import LocalRayCluster, new_temp_dir
from tests.service.conftest import PG_URL_ENV, url_with_search_path

NAMESPACE = "streetwatch-test"


# Package scope: the three nodes (about 1 GB and some CPU while idle) stop when tests/cluster is done instead of
# idling through the rest of the suite.
@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """Head (``node_head``) and two worker nodes (``node_a``, ``node_b``), one CPU each; this process is
    connected to it as a driver. Stopped at the end, whatever happened (only its own processes)."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
    import ray

    cluster = LocalRayCluster(new_temp_dir())
    try:
        cluster.start(NAMESPACE)
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections work in a new schema of this module's own, dropped afterwards."""
    url = os.environ.get(PG_URL_ENV, "")
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set: no PostgreSQL server (scripts/test.sh starts one)")
    schema = f"cluster_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url_with_search_path(url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def stall_clip(tmp_path_factory) -> tuple[Path, dict]:
    """The ``stall_2min`` scenario (a stall from 10 s to the end, 30 s dwell in zone no_vending_1) at 640x360,
    1 fps (the cameras sample 1 fps): small, so rendering and decoding stay cheap."""
    from datasets.synth.scenario import render_scenario

    clip = render_scenario("stall_2min", tmp_path_factory.mktemp("clip"), fps=1.0, size_px=(640, 360))
    return clip.video_path, clip.timeline
