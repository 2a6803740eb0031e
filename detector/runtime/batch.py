"""Batching across cameras: the frames several camera threads need detected go through one ``session.run``.

`BatchingDetector` wraps a loaded `OnnxDetector` whose network has a dynamic batch axis (the shipped ``street``,
``street-int8``, ``aerial`` exports do: ``images`` is ``[batch, 3, height, width]``) and offers the same calls
(`detect`, `detect_batch`, `preprocess`, `run_raw`, `postprocess`, ...), so a `CameraPipeline`, the second look and tiled inference use
it unchanged. Each caller prepares its own tensor (letterbox: parallel in the callers' threads), hands it to a
queue and waits; a runner thread takes what is queued, waits at most `window_ms` for more (up to `max_batch`
images), runs the session once on the concatenated tensor and gives every caller its rows back; each caller
decodes its own rows (NMS: parallel again).

What it buys depends on the hardware. On a GPU one run of 8 images costs little more than one of 1 image, so
batching multiplies throughput. On CPU cores onnxruntime's convolutions already keep a core busy with one image,
so a batch costs about the sum of its images (measured on this project's 2-core CI machine with one intra-op
thread: street-int8 15.7-16.4 ms per image at batch 1, 2, 4 and 8; benchmarks/results/streams.md): there the
batcher saves only the per-call overhead, and its gather window adds latency. It is therefore opt-in.

Example:
    >>> from detector.runtime import load_model  # doctest: +SKIP
    >>> batcher = BatchingDetector(load_model("street-int8"), window_ms=2.0, max_batch=8)  # doctest: +SKIP
    >>> detections = batcher.detect(frame.image)  # from any number of threads  # doctest: +SKIP
    >>> batcher.stats().mean_batch  # doctest: +SKIP
    3.7
    >>> batcher.close()  # doctest: +SKIP
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from detector.runtime.detector import OnnxDetector
from detector.types import Detections

__all__ = ["BatchStats", "BatchingDetector"]


@dataclass(frozen=True)
class BatchStats:
    """What the batcher has done since it started.

    Attributes:
        runs: ``session.run`` calls.
        images: Images through them.
        max_batch_seen: The largest batch run.
        failed_runs: Runs that raised (every caller of such a run got the exception).
        run_cpu_s: CPU seconds the runner threads spent in ``session.run`` (with one intra-op thread all of the
            inference; the callers' own CPU time no longer contains it).
    """

    runs: int = 0
    images: int = 0
    max_batch_seen: int = 0
    failed_runs: int = 0
    run_cpu_s: float = 0.0

    @property
    def mean_batch(self) -> float:
        """Images per run (0 before the first run)."""
        return self.images / self.runs if self.runs else 0.0


@dataclass
class _Request:
    tensor: np.ndarray  # NCHW, n >= 1 images
    future: Future


_STOP = object()


class BatchingDetector:
    """A shared detector that runs the tensors of concurrent callers as one batch (see the module docstring).

    Args:
        detector: A loaded detector with a dynamic batch axis (``detector.batch_dynamic``).
        window_ms: How long a runner waits for more requests after the first one arrived (0: run what is queued
            at once; requests that arrive while a run is in progress still form the next batch).
        max_batch: Most images per ``session.run``.
        runners: Runner threads, i.e. ``session.run`` calls in flight at once. One intra-op thread per run and
            one runner per core keep every core busy; a GPU wants one runner.

    Raises:
        ValueError: The network has a fixed batch size, or an argument is out of range.
    """

    def __init__(self, detector: OnnxDetector, window_ms: float = 2.0, max_batch: int = 8, runners: int = 1) -> None:
        if not getattr(detector, "batch_dynamic", False):
            raise ValueError(f"{detector!r}: the network has a fixed batch size; batching needs a dynamic batch "
                             "axis (re-export with dynamic=True)")
        if not 0.0 <= window_ms <= 1000.0:
            raise ValueError(f"window_ms must lie within [0, 1000], got {window_ms}")
        if not 1 <= max_batch <= 256:
            raise ValueError(f"max_batch must lie within [1, 256], got {max_batch}")
        if not 1 <= runners <= 64:
            raise ValueError(f"runners must lie within [1, 64], got {runners}")
        self.detector = detector
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._stats = BatchStats()
        self._closed = False
        self._runners = [threading.Thread(target=self._run_batches, name=f"batch-runner-{i}", daemon=True)
                         for i in range(runners)]
        for thread in self._runners:
            thread.start()

    # --- what an OnnxDetector offers ---------------------------------------------------------------------

    @property
    def card(self) -> Any:
        return self.detector.card

    @property
    def class_names(self) -> list[str]:
        return self.detector.class_names

    @property
    def class_nms_iou(self) -> np.ndarray:
        return self.detector.class_nms_iou

    @property
    def batch_dynamic(self) -> bool:
        return True

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list]:
        return self.detector.preprocess(images)

    def postprocess(self, raw: np.ndarray, transforms: Sequence[Any], min_score: float | None = None
                    ) -> list[Detections]:
        return self.detector.postprocess(raw, transforms, min_score)

    def run_raw(self, tensor: np.ndarray) -> np.ndarray:
        """``session.run`` on `tensor` as part of a batch with other callers' tensors; blocks until done.

        Raises:
            RuntimeError: The batcher was closed.
            Exception: Whatever ``session.run`` raised on the batch this tensor was part of.
        """
        if tensor.ndim != 4 or tensor.shape[0] < 1:
            raise ValueError(f"expected an NCHW tensor with at least one image, got shape {tensor.shape}")
        parts = [tensor[i:i + self.max_batch] for i in range(0, tensor.shape[0], self.max_batch)]
        futures = [self._submit(part) for part in parts]
        results = [f.result() for f in futures]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def detect(self, image: np.ndarray, min_score: float | None = None) -> Detections:
        """As `OnnxDetector.detect`, the ``session.run`` shared with other callers' images."""
        tensor, transforms = self.preprocess([image])
        return self.postprocess(self.run_raw(tensor), transforms, min_score)[0]

    def detect_batch(self, images: Sequence[np.ndarray], min_score: float | None = None) -> list[Detections]:
        """Several images of one caller (tiles, second-look crops), batched with other callers' requests."""
        if not images:
            return []
        tensor, transforms = self.preprocess(images)
        return self.postprocess(self.run_raw(tensor), transforms, min_score)

    def detect_multilabel(self, *args: Any, **kwargs: Any) -> Detections:
        """Evaluation only: runs on the wrapped detector directly (no batching)."""
        return self.detector.detect_multilabel(*args, **kwargs)

    # --- lifecycle and numbers ---------------------------------------------------------------------------

    def stats(self) -> BatchStats:
        with self._lock:
            return self._stats

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the runners after the requests already queued; later calls raise `RuntimeError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._runners:
            self._queue.put(_STOP)
        for thread in self._runners:
            thread.join(timeout_s)

    def __enter__(self) -> "BatchingDetector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"BatchingDetector({self.detector!r}, window_ms={self.window_s * 1000:g}, max_batch={self.max_batch}, "
                f"runners={len(self._runners)})")

    # --- internals ---------------------------------------------------------------------------------------

    def _submit(self, tensor: np.ndarray) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("BatchingDetector is closed")
            self._queue.put(_Request(tensor, future))
        return future

    def _run_batches(self) -> None:
        leftover: Any = None
        while True:
            first = leftover if leftover is not None else self._queue.get()
            if first is _STOP:
                return
            batch, leftover = self._gather(first)
            self._run(batch)

    def _gather(self, first: _Request) -> tuple[list[_Request], Any]:
        """The first request plus whatever arrives within the window, up to `max_batch` images; and what was taken
        from the queue but did not fit (a request, the stop marker, or None), which starts the next batch."""
        batch, images = [first], first.tensor.shape[0]
        deadline_s = time.monotonic() + self.window_s
        while images < self.max_batch:
            remaining_s = deadline_s - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining_s) if remaining_s > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP or images + item.tensor.shape[0] > self.max_batch:
                return batch, item
            batch.append(item)
            images += item.tensor.shape[0]
        return batch, None

    def _run(self, batch: list[_Request]) -> None:
        sizes = [r.tensor.shape[0] for r in batch]
        tensor = batch[0].tensor if len(batch) == 1 else np.concatenate([r.tensor for r in batch])
        started_cpu_s = time.thread_time()
        try:
            raw = self.detector.run_raw(tensor)
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch, who raises it
            self._count(tensor.shape[0], time.thread_time() - started_cpu_s, failed=True)
            for request in batch:
                request.future.set_exception(exc)
            return
        self._count(tensor.shape[0], time.thread_time() - started_cpu_s, failed=False)
        start = 0
        for request, n in zip(batch, sizes):
            request.future.set_result(raw[start:start + n])
            start += n

    def _count(self, images: int, cpu_s: float, failed: bool) -> None:
        with self._lock:
            s = self._stats
            self._stats = BatchStats(s.runs + 1, s.images + images, max(s.max_batch_seen, images),
                                     s.failed_runs + int(failed), s.run_cpu_s + cpu_s)
