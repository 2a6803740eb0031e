"""``/metrics`` through prometheus_client (`service.metrics`): full-precision values, the inference histogram,
``streetwatch_build_info``, process metrics, every family listed even without samples, and the git commit read
from a checkout's files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from detector.sources import SourceHealth, SourceState
from service.app import create_app
from service.config import AppConfig
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.metrics import (BuildInfo, PushCounters, SecondsHistogram, git_commit, read_build_info,
                             render_metrics)
from service.settings import Settings
from service.workers import CameraRuntime

BUILD = BuildInfo(version="9.8.7", git_commit="0123456789abcdef0123456789abcdef01234567")


@pytest.fixture
def session_factory(tmp_path):
    engine = make_engine(DatabaseSettings(path=tmp_path / "cases.db"))
    upgrade_schema(engine)
    yield make_session_factory(engine)
    engine.dispose()


def runtime(camera_id: str = "cam-1", **fields) -> CameraRuntime:
    rt = CameraRuntime(camera_id, state="running")
    for name, value in fields.items():
        setattr(rt, name, value)
    return rt


def scrape(session_factory, runtimes=None, push=None, **kwargs) -> str:
    return render_metrics(session_factory, push or PushCounters(), runtimes or {}, build=BUILD, **kwargs).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("count", [123456789, 2 ** 40 + 1, 1_000_001])
def test_a_large_counter_prints_exactly(session_factory, count):
    """The hand-written exposition printed 6 significant digits (123456789 -> 1.23457e+08)."""
    text = scrape(session_factory, {"cam-1": runtime(frames_processed=count)})
    assert samples(text)[("streetwatch_camera_frames_processed_total", (("camera_id", "cam-1"),))] == count
    line = next(li for li in text.splitlines() if li.startswith("streetwatch_camera_frames_processed_total{"))
    assert float(line.split()[-1]) == count
    if count == 123456789:
        assert line.endswith(" 1.23456789e+08")


@pytest.mark.parametrize("bounds_s, observed_s, cumulative", [
    ((0.01, 0.1, 1.0), [0.004, 0.01, 0.05, 0.5, 3.0], (2, 3, 4, 5)),  # 0.01 falls in le="0.01"
    ((0.01, 0.1, 1.0), [], (0, 0, 0, 0)),
    ((0.5,), [0.7, 0.8], (0, 2)),
])
def test_seconds_histogram_counts_cumulative_buckets(bounds_s, observed_s, cumulative):
    h = SecondsHistogram(bounds_s)
    for t_s in observed_s:
        h.observe(t_s)
    snap = h.snapshot()
    assert snap.cumulative == cumulative and snap.count == len(observed_s)
    assert snap.sum_s == pytest.approx(sum(observed_s))


@pytest.mark.parametrize("bounds_s", [(), (0.1, 0.1), (0.5, 0.1), (0.0, 1.0)])
def test_seconds_histogram_refuses_bad_bounds(bounds_s):
    with pytest.raises(ValueError, match="bounds"):
        SecondsHistogram(bounds_s)


def test_inference_histogram_in_the_exposition(session_factory):
    rt = runtime()
    for ms in (3.0, 20.0, 20.0, 700.0, 30000.0):
        rt.inference_s.observe(ms / 1000)
    text = scrape(session_factory, {"cam-1": rt})
    assert "# TYPE streetwatch_camera_inference_seconds histogram" in text
    got = samples(text)
    cam = ("camera_id", "cam-1")

    def bucket(le: str) -> float:
        return got[("streetwatch_camera_inference_seconds_bucket", (cam, ("le", le)))]

    assert [bucket(le) for le in ("0.005", "0.025", "0.5", "1.0", "10.0", "+Inf")] == [1, 3, 3, 4, 4, 5]
    assert got[("streetwatch_camera_inference_seconds_count", (cam,))] == 5
    assert got[("streetwatch_camera_inference_seconds_sum", (cam,))] == pytest.approx(30.743)
    assert "streetwatch_camera_inference_ms" not in text  # replaced by the histogram


def test_build_info_names_version_commit_and_models(session_factory):
    runtimes = {"cam-1": runtime("cam-1", model="street-v2@2.1"), "cam-2": runtime("cam-2", model="street-v2@2.1"),
                "cam-3": runtime("cam-3", model="bikes@0.3"), "cam-4": runtime("cam-4")}
    text = scrape(session_factory, runtimes)
    assert "# TYPE streetwatch_build_info gauge" in text
    (sample,) = [s for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "streetwatch_build_info"]
    assert sample.value == 1
    assert sample.labels == {"version": "9.8.7", "git_commit": BUILD.git_commit, "models": "bikes@0.3,street-v2@2.1"}


def test_every_family_is_listed_without_samples_and_process_metrics_come_along(session_factory):
    text = scrape(session_factory)
    for name, kind in [("streetwatch_camera_fps_in", "gauge"), ("streetwatch_second_look_total", "counter"),
                       ("streetwatch_camera_inference_seconds", "histogram"),
                       ("streetwatch_evidence_write_failures_total", "counter"),
                       ("streetwatch_flight_eta_seconds", "gauge"), ("streetwatch_cases_by_kind", "gauge")]:
        assert f"# TYPE {name} {kind}" in text
    # no evidence state: the family is listed, without a sample
    assert not any(li.startswith("streetwatch_evidence_write_failures_total") for li in text.splitlines())
    assert "python_info{" in text
    if Path("/proc/self/stat").exists():  # prometheus_client's process collector reads /proc (Linux)
        assert "# TYPE process_cpu_seconds_total counter" in text


def test_camera_health_and_counters(session_factory):
    health = SourceHealth(source_id="cam-1", kind="rtsp", state=SourceState.STREAMING, connected=True,
                          since=datetime(2026, 6, 1, tzinfo=timezone.utc), fps_in=12.5, fps_sampled=1.0,
                          frames_in=100, frames_sampled=9, frames_dropped=7, frames_rejected=2,
                          rejected_reasons={"black": 2}, reconnects=1, last_frame_ts=None, last_error=None,
                          heartbeat_ts=None)
    rt = runtime(source_health=health, lag_s=0.25, restarts=3, queue_depth=4)
    rt.second_look.update({"agreed": 5, "not_found": 2})
    push = PushCounters()
    push.accepted("cam-1")
    push.rejected("cam-1", "not_jpeg")
    got = samples(scrape(session_factory, {"cam-1": rt}, push, outbox_outcomes={("webhook", "sent"): 9}))
    cam = (("camera_id", "cam-1"),)
    assert got[("streetwatch_camera_up", cam)] == 1 and got[("streetwatch_camera_fps_in", cam)] == 12.5
    assert got[("streetwatch_camera_frames_dropped_total", cam)] == 7
    assert got[("streetwatch_camera_lag_seconds", cam)] == 0.25
    assert got[("streetwatch_camera_restarts_total", cam)] == 3
    assert got[("streetwatch_second_look_total", (("camera_id", "cam-1"), ("verdict", "not_found")))] == 2
    assert got[("streetwatch_push_frames_rejected_total", (("camera_id", "cam-1"), ("reason", "not_jpeg")))] == 1
    assert got[("streetwatch_outbox_deliveries_total", (("adapter", "webhook"), ("outcome", "sent")))] == 9


def make_git(root: Path, head: str, loose: dict[str, str] | None = None, packed: str | None = None) -> Path:
    git = root / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text(head + "\n")
    for ref, sha in (loose or {}).items():
        (git / ref).parent.mkdir(parents=True, exist_ok=True)
        (git / ref).write_text(sha + "\n")
    if packed is not None:
        (git / "packed-refs").write_text(packed)
    return root


SHA = "a" * 40
OTHER = "b" * 40


@pytest.mark.parametrize("head, loose, packed, expected", [
    ("ref: refs/heads/main", {"refs/heads/main": SHA}, None, SHA),
    ("ref: refs/heads/main", None, f"# pack-refs with: peeled\n{OTHER} refs/heads/dev\n{SHA} refs/heads/main\n", SHA),
    (SHA, None, None, SHA),  # detached HEAD
    ("ref: refs/heads/gone", None, f"{OTHER} refs/heads/dev\n", None),
])
def test_git_commit_from_the_checkout_files(tmp_path, head, loose, packed, expected):
    assert git_commit(make_git(tmp_path, head, loose, packed)) == expected


def test_build_info_without_a_checkout_says_unknown_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("STREETWATCH_GIT_COMMIT", raising=False)
    assert read_build_info(tmp_path).git_commit == "unknown"
    monkeypatch.setenv("STREETWATCH_GIT_COMMIT", OTHER)
    assert read_build_info(make_git(tmp_path / "repo", SHA)).git_commit == OTHER


def test_metrics_endpoint_serves_the_collector(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False})
    app = create_app(settings, config=AppConfig(config_version=1))
    rt = runtime("cam-9", model="street@1")
    rt.inference_s.observe(0.02)
    app.state.services.runtimes["cam-9"] = rt
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(response.text)
    assert got[("streetwatch_camera_inference_seconds_bucket", (("camera_id", "cam-9"), ("le", "0.025")))] == 1
    build = next(labels for (name, labels) in got if name == "streetwatch_build_info")
    assert dict(build)["models"] == "street@1" and dict(build)["version"] == app.state.services.build.version


def test_stage_time_and_cpu_per_camera_in_the_exposition(session_factory):
    # Where each camera's time goes (issue 19): wall time per sample and stage as a histogram, CPU seconds per
    # stage as a counter (decode from the source's reader thread, the rest from the worker).
    rt = runtime()
    for stage, wall_s, cpu_s in [("decode", 0.006, 0.005), ("decode", 0.008, 0.007), ("inference", 0.03, 0.016),
                                 ("rules", 0.0004, 0.0003)]:
        rt.observe_stage(stage, wall_s, cpu_s)
    text = scrape(session_factory, {"cam-1": rt})
    assert "# TYPE streetwatch_camera_stage_seconds histogram" in text
    assert "# TYPE streetwatch_camera_stage_cpu_seconds_total counter" in text
    got = samples(text)
    cam = ("camera_id", "cam-1")
    assert got[("streetwatch_camera_stage_seconds_count", (cam, ("stage", "decode")))] == 2
    assert got[("streetwatch_camera_stage_seconds_bucket", (cam, ("le", "0.005"), ("stage", "decode")))] == 0
    assert got[("streetwatch_camera_stage_seconds_bucket", (cam, ("le", "0.01"), ("stage", "decode")))] == 2
    assert got[("streetwatch_camera_stage_seconds_bucket", (cam, ("le", "0.0005"), ("stage", "rules")))] == 1
    assert got[("streetwatch_camera_stage_cpu_seconds_total", (cam, ("stage", "decode")))] == pytest.approx(0.012)
    assert got[("streetwatch_camera_stage_cpu_seconds_total", (cam, ("stage", "inference")))] == pytest.approx(0.016)
