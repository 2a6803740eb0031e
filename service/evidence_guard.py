"""Evidence writes watched: failures counted, a disk-space watermark, and the state health and metrics report.

A full or read-only evidence disk must never lose evidence silently. The camera workers ask `EvidenceGuard.
may_write` before writing a violation's images (false below the watermark: the case is kept, the images are
skipped and counted, and the next event of the violation tries again), and report each write's outcome. While
the latest write failed or the disk is below the watermark, `state().degraded` is true: ``/health`` says
``degraded``, ``/ready`` answers 503, and ``streetwatch_evidence_write_failures_total`` counts the failures.

Example:
    >>> guard = EvidenceGuard(Path("/tmp"), min_free_bytes=10 ** 9, free_bytes=lambda path: 5 * 10 ** 8)
    >>> guard.may_write(), guard.state().reasons
    (False, ('evidence disk below the watermark: 500000000 bytes free, 1000000000 needed',))
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["EvidenceGuard", "EvidenceState", "disk_free_bytes"]


def disk_free_bytes(path: Path) -> int:
    """Free bytes on the disk of `path`, or of its nearest existing parent (the folder may not exist yet)."""
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class EvidenceState:
    """What health, readiness and metrics report about evidence writes.

    Attributes:
        written_total: Evidence sets (annotated, original, crop) written.
        write_failures_total: Evidence sets that could not be written (the case was kept without them).
        skipped_low_disk_total: Evidence sets not written because the disk was below the watermark.
        failing: The latest write failed (cleared by the next successful one).
        low_disk: Free space is below the watermark.
        free_bytes: Free space last measured (None before the first measurement).
        min_free_bytes: The watermark.
        last_error: The latest failure, one line.
    """

    written_total: int
    write_failures_total: int
    skipped_low_disk_total: int
    failing: bool
    low_disk: bool
    free_bytes: int | None
    min_free_bytes: int
    last_error: str | None

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why evidence is degraded, one line each; empty when it is not."""
        out = []
        if self.failing:
            out.append(f"evidence writes failing: {self.last_error}")
        if self.low_disk:
            out.append(f"evidence disk below the watermark: {self.free_bytes} bytes free, {self.min_free_bytes} "
                       f"needed")
        return tuple(out)

    @property
    def degraded(self) -> bool:
        return self.failing or self.low_disk


class EvidenceGuard:
    """The evidence folder's write outcomes and free space; thread-safe (camera workers write, the API reads).

    Args:
        evidence_dir: The evidence folder.
        min_free_bytes: Watermark: no new evidence below this much free space (0: no watermark).
        free_bytes: Measures free space (default `disk_free_bytes`; tests pass a fake).
        check_every_s: Free space is measured at most this often (a statvfs per violation event is cheap, but
            there is no need for more).
        clock_s: Monotonic clock in seconds.
    """

    def __init__(self, evidence_dir: Path, min_free_bytes: int, *,
                 free_bytes: Callable[[Path], int] = disk_free_bytes, check_every_s: float = 5.0,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.evidence_dir = Path(evidence_dir)
        self.min_free_bytes = int(min_free_bytes)
        self._free_bytes = free_bytes
        self.check_every_s = float(check_every_s)
        self._clock_s = clock_s
        self._lock = threading.Lock()
        self._written = 0
        self._failures = 0
        self._skipped = 0
        self._failing = False
        self._last_error: str | None = None
        self._free: int | None = None
        self._measured_s: float | None = None

    def _measure(self, force: bool = False) -> int | None:
        now = self._clock_s()
        if force or self._measured_s is None or now - self._measured_s >= self.check_every_s:
            try:
                free = int(self._free_bytes(self.evidence_dir))
            except OSError as exc:
                free = None
                self._last_error = f"cannot measure free space of {self.evidence_dir}: {exc}"
            with self._lock:
                self._free, self._measured_s = free, now
        return self._free

    def _low(self, free: int | None) -> bool:
        return self.min_free_bytes > 0 and free is not None and free < self.min_free_bytes

    def may_write(self) -> bool:
        """Whether there is room for new evidence; when not, the skip is counted."""
        if self._low(self._measure()):
            with self._lock:
                self._skipped += 1
            return False
        return True

    def written(self) -> None:
        """One evidence set was written."""
        with self._lock:
            self._written += 1
            self._failing = False

    def failed(self, error: str) -> None:
        """One evidence set could not be written (`error`: one line naming the file and the reason)."""
        with self._lock:
            self._failures += 1
            self._failing = True
            self._last_error = error

    def state(self, refresh: bool = False) -> EvidenceState:
        """The current state; `refresh` measures free space now (health checks)."""
        free = self._measure(force=refresh)
        with self._lock:
            return EvidenceState(written_total=self._written, write_failures_total=self._failures,
                                 skipped_low_disk_total=self._skipped, failing=self._failing,
                                 low_disk=self._low(free), free_bytes=free, min_free_bytes=self.min_free_bytes,
                                 last_error=self._last_error)
