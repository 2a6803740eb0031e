"""The defaults that put more cameras on a node (issue 19): motion gating on, and the model's int8 copy where its
card allows it (`ModelSelection.precision`); a camera can still ask for the float model or for no gating."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import ModelSelection, MotionSettings
from service.pipeline import load_camera_model
from service.workers import DetectorPool


def test_motion_gating_is_on_by_default_with_stationary_rechecks():
    settings = MotionSettings()
    assert settings.enabled
    # Parked objects are re-detected at least this often, well inside the tracker's stationary_max_missing_s.
    assert settings.reverify_interval_s == 10.0 and settings.max_gap_s == 5.0
    assert not MotionSettings(enabled=False).enabled


@pytest.mark.parametrize("selection, card_name", [
    (ModelSelection(name="street"), "street-int8"),
    (ModelSelection(name="street", precision="fp32"), "street"),
    (ModelSelection(name="street-int8", precision="auto"), "street-int8"),
    # tiled or resized cameras look for far, small objects: the int8 card does not measure those
    (ModelSelection(name="street", tile=True), "street"),
    (ModelSelection(name="street", input_wh=(832, 480)), "street"),
    (ModelSelection(name="street", tile=True, precision="int8"), "street-int8"),
])
def test_the_camera_model_is_the_int8_copy_where_its_card_allows(selection, card_name):
    assert load_camera_model(selection, threads=1).card.name == card_name


def test_precision_is_checked():
    assert ModelSelection().precision == "auto"
    with pytest.raises(ValidationError, match="precision"):
        ModelSelection(name="street", precision="fp16")


def test_the_detector_pool_keeps_precisions_apart():
    pool = DetectorPool(threads=1)
    auto = pool.get(ModelSelection(name="street"))
    fp32 = pool.get(ModelSelection(name="street", precision="fp32"))
    assert auto is pool.get(ModelSelection(name="street", conf=0.2))  # thresholds do not load another copy
    tiled = pool.get(ModelSelection(name="street", tile=True))
    assert (auto.card.name, fp32.card.name, tiled.card.name) == ("street-int8", "street", "street")


def test_the_worker_counts_what_its_source_spent_decoding_per_sample(tmp_path):
    # Decoding happens in the source's reader thread; the worker adds the source's DecodeTiming growth since the
    # previous sample to the camera's "decode" stage (its first sample only sets the baseline).
    import threading
    from types import SimpleNamespace

    from detector.sources.decode import DecodeTiming, DecodeTotals
    from service.config import AppConfig
    from service.workers import CameraRuntime, CameraWorker, LatestFrames, WorkerContext

    ctx = WorkerContext(config=lambda: AppConfig(config_version=1), cases=None, evidence_dir=tmp_path,
                        latest_frames=LatestFrames(), push_sources={}, detectors=DetectorPool(), stop=threading.Event())
    runtime = CameraRuntime("cam-1")
    worker = CameraWorker("cam-1", ctx, runtime)
    source = SimpleNamespace(decode_timing=DecodeTiming())
    for decode_cpu_s in (0.004, 0.006, 0.007):
        source.decode_timing.add(DecodeTotals(decode_s=decode_cpu_s + 0.001, decode_cpu_s=decode_cpu_s,
                                              convert_cpu_s=0.001, decoded=1, converted=1))
        worker._observe_decode(source)
    assert runtime.stage_s["decode"].snapshot().count == 2
    assert runtime.stage_cpu_s["decode"] == pytest.approx(0.006 + 0.001 + 0.007 + 0.001)
    worker._observe_decode(SimpleNamespace())  # a source that does not decode video: nothing to count
    assert runtime.stage_s["decode"].snapshot().count == 2
