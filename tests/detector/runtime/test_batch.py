"""`BatchingDetector`: concurrent callers share one ``session.run``, each gets its own rows back, errors reach
every caller of the failed batch, and with the shipped street-int8 network the boxes equal the unbatched ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from detector.runtime import RuntimeOptions, load_model
from detector.runtime.batch import BatchingDetector
from detector.types import Detections
from tests.conftest import REPO_ROOT


class EchoDetector:
    """A stand-in for OnnxDetector: run_raw returns each image's mean as its row and records batch sizes; a
    barrier can hold the first run until the test lets it go (so requests queue up meanwhile)."""

    batch_dynamic = True
    class_names = ["thing"]
    card = None

    def __init__(self, fail: bool = False, hold: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.fail = fail
        self.hold = hold
        self._lock = threading.Lock()

    def run_raw(self, tensor: np.ndarray) -> np.ndarray:
        if self.hold is not None:
            self.hold.wait(5)
        with self._lock:
            self.batches.append(tensor.shape[0])
        if self.fail:
            raise RuntimeError("onnxruntime: out of memory")
        return tensor.reshape(tensor.shape[0], -1).mean(axis=1, keepdims=True)

    def preprocess(self, images):
        return np.stack([np.full((3, 4, 4), float(img), np.float32) for img in images]), [None] * len(images)

    def postprocess(self, raw, transforms, min_score=None):
        return [Detections(xyxy=[[0, 0, 1, 1]], confidence=[float(r[0]) / 100], class_id=[0]) for r in raw]


def tensor(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3, 4, 4), value, np.float32)


def call_together(batcher: BatchingDetector, values: list[float]) -> list[np.ndarray]:
    with ThreadPoolExecutor(len(values)) as pool:
        return list(pool.map(lambda v: batcher.run_raw(tensor(v)), values))


def test_concurrent_callers_share_runs_and_get_their_own_rows():
    detector = EchoDetector()
    with BatchingDetector(detector, window_ms=200, max_batch=8) as batcher:
        values = [float(v) for v in range(12)]
        results = call_together(batcher, values)
    assert [float(r[0, 0]) for r in results] == values  # each caller its own row
    assert sum(detector.batches) == 12
    assert max(detector.batches) <= 8 and len(detector.batches) < 12  # batched, never above max_batch
    stats = batcher.stats()
    assert (stats.runs, stats.images, stats.failed_runs) == (len(detector.batches), 12, 0)
    assert stats.max_batch_seen == max(detector.batches) and stats.mean_batch > 1


def test_requests_queued_during_a_run_form_the_next_batch_without_a_window():
    hold = threading.Event()
    detector = EchoDetector(hold=hold)
    with BatchingDetector(detector, window_ms=0, max_batch=8) as batcher, ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.run_raw, tensor(1.0))
        while not batcher._queue.empty():  # the runner took the first request and waits in run_raw
            threading.Event().wait(0.01)
        rest = [pool.submit(batcher.run_raw, tensor(float(v))) for v in range(2, 7)]
        while batcher._queue.qsize() < 5:
            threading.Event().wait(0.01)
        hold.set()
        assert float(first.result(5)[0, 0]) == 1.0
        assert [float(f.result(5)[0, 0]) for f in rest] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert detector.batches == [1, 5]


@pytest.mark.parametrize("n_images, max_batch, expected_runs", [(1, 4, [1]), (4, 4, [4]), (10, 4, [4, 4, 2])])
def test_one_callers_large_tensor_is_split_at_max_batch(n_images, max_batch, expected_runs):
    detector = EchoDetector()
    with BatchingDetector(detector, window_ms=0, max_batch=max_batch) as batcher:
        out = batcher.run_raw(np.arange(n_images, dtype=np.float32)[:, None, None, None] * np.ones((1, 3, 4, 4),
                                                                                                   np.float32))
    assert out[:, 0].tolist() == list(range(n_images))
    assert sorted(detector.batches, reverse=True) == expected_runs


def test_a_failed_run_raises_in_every_caller_of_its_batch():
    detector = EchoDetector(fail=True)
    with BatchingDetector(detector, window_ms=100, max_batch=8) as batcher:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(batcher.run_raw, tensor(1.0)) for _ in range(3)]
            for future in futures:
                with pytest.raises(RuntimeError, match="out of memory"):
                    future.result(5)
        assert batcher.stats().failed_runs == batcher.stats().runs >= 1


def test_detect_and_detect_batch_go_through_the_batch():
    detector = EchoDetector()
    with BatchingDetector(detector, window_ms=0) as batcher:
        assert batcher.detect(42).confidence.tolist() == pytest.approx([0.42])
        assert [d.confidence[0] for d in batcher.detect_batch([10, 20, 30])] == pytest.approx([0.1, 0.2, 0.3])
        assert batcher.detect_batch([]) == []
    assert sum(detector.batches) == 4


def test_closed_batcher_refuses_calls():
    batcher = BatchingDetector(EchoDetector(), window_ms=0)
    batcher.close()
    batcher.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        batcher.run_raw(tensor(1.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"window_ms": -1}, "window_ms"), ({"max_batch": 0}, "max_batch"), ({"runners": 0}, "runners"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchingDetector(EchoDetector(), **kwargs)


def test_a_fixed_batch_network_is_refused():
    detector = EchoDetector()
    detector.batch_dynamic = False
    with pytest.raises(ValueError, match="fixed batch size"):
        BatchingDetector(detector)


def test_street_int8_batched_equals_unbatched():
    # The shipped network (dynamic batch axis): tensors of several callers run as one batch give each caller
    # the raw output the plain detector gives its tensor alone (the rows are not mixed up or altered).
    if not (REPO_ROOT / "models" / "street-int8" / "street-int8.onnx").is_file():
        pytest.fail("models/street-int8 is missing: the shipped model is part of the repository")
    plain = load_model("street-int8", options=RuntimeOptions(intra_op_threads=1))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(720, 1280), (480, 640), (720, 1280)]]
    tensors = [plain.preprocess([image])[0] for image in images]
    expected = [plain.run_raw(t) for t in tensors]
    with BatchingDetector(plain, window_ms=200, max_batch=4) as batcher, ThreadPoolExecutor(3) as pool:
        got = list(pool.map(batcher.run_raw, tensors))
        assert batcher.stats().max_batch_seen >= 2
    for g, e in zip(got, expected):
        assert g.shape == e.shape == (1, 7, 3549)
        np.testing.assert_allclose(g, e, atol=1e-3)
    assert not np.allclose(got[0], got[1], atol=1e-3)  # different pictures, different rows
