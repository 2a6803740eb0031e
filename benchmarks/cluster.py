"""The same synthetic city on the local engine and on the Ray engine with 1, 2 and 3 nodes on this machine.

Each camera plays the ``stall_2min`` scenario (one stall, due 40 s into the clip) as a looping file camera, with
the shipped ``street`` model and PostgreSQL for the cases. Per engine the script measures, over a window after
the cameras started:

* lag p50/p95 (wall clock minus frame time at each sample, read from every camera's health twice a second),
  samples processed, detector p50 ms;
* CPU per camera: the camera's process CPU seconds over the window (Ray: each actor's own process, read from
  /proc by its pid; local: the whole serving process divided by the cameras);
* violations found against the truth (exactly one stall case per camera: nothing lost, nothing doubled);
* Ray's own overhead: the round trip of an actor call (the health read), and of handing one 1280x720 JPEG to an
  actor (what a pushed frame would cost if it crossed Ray; pulled streams never do: each actor reads its
  camera itself, so the per-frame Ray overhead of an RTSP camera is zero).

Two cores cannot show throughput growing with nodes: every "node" here shares the same two cores, so the table
shows correctness and overhead, and docs/SCALING.md turns the measured per-frame costs into a sizing model.

Usage::

    eval "$(bash scripts/pg_test_server.sh start)"
    .venv/bin/python -m benchmarks.cluster --cameras 3 --window-s 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import benchmarks.common as common  # noqa: E402
from benchmarks.common import environment, md_table  # noqa: E402

TRUTH_PER_CAMERA = 1  # stall_2min: one stall in no_vending_1


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (/proc; Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _config(video: Path, timeline: dict, n_cameras: int):
    from service.config import AppConfig

    zones = [{"id": z["id"], "kind": z["kind"], "polygon": z["polygon_norm"]} for z in timeline["zones"]
             if z["kind"] in ("no_vending", "watch_area")]
    return AppConfig.model_validate({
        "config_version": 1, "model": {"name": "street", "conf": 0.1},
        "rules": {"stall_occupation": {"min_dwell_s": 30, "cooldown_s": 1800}},
        "cameras": [{"id": f"cam-{i:02d}", "source": f"file://{video}", "timezone": "UTC", "sample_fps": 1,
                     "zones": zones} for i in range(n_cameras)]})


def _schema_url(pg_url: str) -> str:
    from sqlalchemy import create_engine, text

    from service.db import DatabaseSettings, make_engine, upgrade_schema
    from tests.service.conftest import url_with_search_path

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = url_with_search_path(pg_url, schema)
    engine = make_engine(DatabaseSettings(url=url))
    upgrade_schema(engine)
    engine.dispose()
    return url


def _count_cases(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from service.db import DatabaseSettings, make_engine
    from service.db.models import Case

    engine = make_engine(DatabaseSettings(url=url))
    with engine.connect() as conn:
        rows = conn.execute(select(Case.camera_id, func.count()).group_by(Case.camera_id)).all()
    engine.dispose()
    return {camera: n for camera, n in rows}


def _watch(runtimes: dict, window_s: float) -> dict[str, list[float]]:
    lags: dict[str, list[float]] = {}
    deadline = time.monotonic() + window_s
    seen: dict[str, object] = {}
    while time.monotonic() < deadline:
        for camera_id, rt in list(runtimes.items()):
            if rt.lag_s is not None and seen.get(camera_id) != rt.last_frame_ts:
                seen[camera_id] = rt.last_frame_ts
                lags.setdefault(camera_id, []).append(rt.lag_s)
        time.sleep(0.5)
    return lags


def _row(engine: str, nodes: int, config, runtimes: dict, lags: dict, cpu_s: dict[str, float], window_s: float,
         cases: dict[str, int], start_s: float, rss_mb: float) -> dict:
    all_lags = [v for values in lags.values() for v in values]
    inference = [rt.median_inference_ms() for rt in runtimes.values() if rt.median_inference_ms() is not None]
    n = len(config.cameras)
    found = sum(min(cases.get(c.id, 0), TRUTH_PER_CAMERA) for c in config.cameras)
    return {
        "engine": engine, "nodes": nodes, "cameras": n, "start_s": round(start_s, 1),
        "lag_p50_s": _pct(all_lags, 0.5), "lag_p95_s": _pct(all_lags, 0.95),
        "samples": sum(rt.frames_processed for rt in runtimes.values()),
        "inference_p50_ms": round(statistics.median(inference), 1) if inference else None,
        "cpu_per_camera_pct": round(100 * sum(cpu_s.values()) / n / window_s, 1),
        "rss_mb_per_camera": round(rss_mb / n),
        "cases_found": found, "cases_truth": n * TRUTH_PER_CAMERA,
        "cases_doubled": sum(max(0, cases.get(c.id, 0) - TRUTH_PER_CAMERA) for c in config.cameras),
    }


def run_local(pg_url: str, video: Path, timeline: dict, n_cameras: int, window_s: float, speed: float) -> dict:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    url = _schema_url(pg_url)
    config = _config(video, timeline, n_cameras)
    settings = Settings(database_url=url, evidence_dir=Path(tempfile.mkdtemp(prefix="bench-ev-")),
                        file_camera_speed=speed, run_flights=False, outbox={"deliver": False})
    t0 = time.monotonic()
    app = create_app(settings, config)
    with TestClient(app):
        runtimes = app.state.services.runtimes
        while not all(rt.frames_processed for rt in runtimes.values()) or len(runtimes) < n_cameras:
            time.sleep(0.2)
        start_s = time.monotonic() - t0
        cpu0 = _cpu_s(os.getpid())
        lags = _watch(runtimes, window_s)
        cpu = {"all": _cpu_s(os.getpid()) - cpu0}
        row = _row("local", 1, config, runtimes, lags, cpu, window_s, _count_cases(url), start_s,
                   _rss_mb(os.getpid()))
    return row


def ray_overhead(n_calls: int = 200) -> dict:
    """Round trips to an actor on another node: an empty call, and one carrying a 1280x720 JPEG."""
    import cv2
    import numpy as np
    import ray

    @ray.remote(num_cpus=0.01, resources={"node_a": 0.01})
    class Echo:
        def ping(self) -> int:
            return 0

        def frame(self, data: bytes) -> int:
            return len(data)

    echo = Echo.remote()
    ray.get(echo.ping.remote())
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), np.uint8), (9, 9), 0)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    out = {"jpeg_bytes": len(jpeg)}
    for name, call in (("call", lambda: echo.ping.remote()), ("frame", lambda: echo.frame.remote(jpeg))):
        times = []
        for _ in range(n_calls):
            t = time.perf_counter()
            ray.get(call())
            times.append((time.perf_counter() - t) * 1000)
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = _pct(times, 0.5), _pct(times, 0.95)
    ray.kill(echo)
    return out


def run_ray(pg_url: str, video: Path, timeline: dict, n_cameras: int, window_s: float, speed: float,
            nodes: int) -> tuple[dict, dict | None]:
    import ray
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings
    from tests.cluster.ray_nodes import LocalRayCluster, new_temp_dir

    workers = ("node_a", "node_b")[:nodes - 1]
    cluster = LocalRayCluster(new_temp_dir())
    try:
        cluster.start("streetwatch-bench", workers=workers)
        url = _schema_url(pg_url)
        config = _config(video, timeline, n_cameras)
        settings = Settings(database_url=url, evidence_dir=Path(tempfile.mkdtemp(prefix="bench-ev-")),
                            file_camera_speed=speed, run_flights=False, outbox={"deliver": False},
                            engine={"ray": {"address": cluster.address, "namespace": "streetwatch-bench",
                                            "camera_actor_cpus": min(0.5, nodes / n_cameras),
                                            "reconcile_interval_s": 0.5}})
        t0 = time.monotonic()
        app = create_app(settings, config)
        with TestClient(app):
            engine = app.state.services.workers.cluster
            runtimes = app.state.services.runtimes
            while not all(rt.frames_processed for rt in runtimes.values()) or len(runtimes) < n_cameras:
                time.sleep(0.2)
            start_s = time.monotonic() - t0
            pids = {cid: s.pid for cid, s in engine.states().items() if not isinstance(s, Exception)}
            cpu0 = {cid: _cpu_s(pid) for cid, pid in pids.items()}
            lags = _watch(runtimes, window_s)
            cpu = {cid: _cpu_s(pid) - cpu0[cid] for cid, pid in pids.items()}
            row = _row("ray", nodes, config, runtimes, lags, cpu, window_s, _count_cases(url), start_s,
                       sum(_rss_mb(pid) for pid in pids.values()))
            row["nodes_used"] = len(set(engine.placement.values()))
        overhead = ray_overhead() if "node_a" in workers else None
        return row, overhead
    finally:
        ray.shutdown()
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=60.0, help="measuring window per engine")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="file cameras play this many times real time (above 1 frame times run ahead of the "
                             "clock and lag reads 0)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    parser.add_argument("--no-local", action="store_true", help="skip the local engine")
    args = parser.parse_args(argv)
    pg_url = os.environ.get("STREETWATCH_TEST_PG_URL", "")
    if not pg_url:
        parser.error("STREETWATCH_TEST_PG_URL is not set (eval \"$(bash scripts/pg_test_server.sh start)\")")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from datasets.synth.scenario import render_scenario

    clip = render_scenario("stall_2min", Path(tempfile.mkdtemp(prefix="bench-clip-")), fps=2.0, size_px=(640, 360))
    rows, overhead = [], None
    if not args.no_local:
        rows.append(run_local(pg_url, clip.video_path, clip.timeline, args.cameras, args.window_s, args.speed))
        print(rows[-1], flush=True)
    for nodes in args.nodes:
        row, measured = run_ray(pg_url, clip.video_path, clip.timeline, args.cameras, args.window_s, args.speed, nodes)
        rows.append(row)
        overhead = measured or overhead
        print(row, measured or "", flush=True)
    env = environment()
    payload = {"environment": env, "args": vars(args), "rows": rows, "ray_overhead": overhead}
    columns = ["engine", "nodes", "nodes_used", "cameras", "start_s", "lag_p50_s", "lag_p95_s", "samples",
               "inference_p50_ms", "cpu_per_camera_pct", "rss_mb_per_camera", "cases_found", "cases_truth", "cases_doubled"]
    lines = [
        "# Local engine vs Ray engine (1–3 nodes on one machine)", "",
        f"{env['date_utc']} · {env['cpu_model']} · {env['cpu_count']} cores · onnxruntime {env['onnxruntime']} · "
        f"{args.cameras} cameras (stall_2min, 640x360, file cameras at {args.speed}x, "
        f"sample 1 fps of clip time) · window {args.window_s:.0f} s · PostgreSQL", "",
        md_table(columns, [[row.get(c, "") for c in columns] for row in rows]), "",
        "All nodes share this machine's two cores: the rows show correctness (cases found vs truth, none doubled) "
        "and overhead, not scaling. CPU per camera counts each Ray actor's own process; local counts the serving "
        "process divided by the cameras (RSS likewise: local shares one model, each Ray actor loads its own). Lag and "
        "detector times are wall clock, so they grow with whatever else loads the machine: see the load average.", "",
        f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f}", "",
    ]
    if overhead:
        lines += ["Ray overhead, driver → actor on another node (median / p95 ms): empty call "
                  f"{overhead['call_p50_ms']} / {overhead['call_p95_ms']}, one 1280x720 JPEG "
                  f"({overhead['jpeg_bytes']} B) {overhead['frame_p50_ms']} / {overhead['frame_p95_ms']}. "
                  "Pulled streams (RTSP) never cross Ray: the actor reads its camera itself.", ""]
    common.write_results("cluster", payload, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
