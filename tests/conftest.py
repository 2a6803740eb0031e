"""Fixtures shared by every test package: where ../shared lives, and builders of frames and detections."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from detector.paths import existing_shared_dir
from detector.types import Detections, Frame

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path() -> Path | None:
    """The third-party data folder: $STREETWATCH_SHARED, else ../shared beside the repository."""
    return existing_shared_dir()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if path is None:
        pytest.skip("../shared (or $STREETWATCH_SHARED) is absent: real models, photos and footage are unavailable")
    return path


@pytest.fixture(scope="session")
def bicycles_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "bicycles-2000"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=timezone.utc)


def make_frame(index: int = 0, width_px: int = 640, height_px: int = 360, ts_s: float = 0.0, source_id: str = "cam-1",
               value: int = 90) -> Frame:
    """A flat grey frame stamped `ts_s` seconds after a fixed epoch."""
    image = np.full((height_px, width_px, 3), value, np.uint8)
    return Frame(source_id=source_id, index=index, ts=T0 + timedelta(seconds=ts_s), image=image)


def make_detections(rows: list[tuple], tracker: bool = False) -> Detections:
    """Build Detections from rows of (x1, y1, x2, y2, score, class_id[, tracker_id])."""
    if not rows:
        return Detections.empty(with_tracker=tracker)
    arr = np.asarray(rows, dtype=np.float64)
    return Detections(
        xyxy=arr[:, :4],
        confidence=arr[:, 4],
        class_id=arr[:, 5].astype(int),
        tracker_id=arr[:, 6].astype(int) if tracker else None,
    )


@pytest.fixture
def frame_factory():
    return make_frame


@pytest.fixture
def detections_factory():
    return make_detections
