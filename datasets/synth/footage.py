"""Real camera backgrounds: the empty scene of a fixed camera, recovered from its footage.

A per-pixel median over frames sampled across a clip removes people and cars that pass through. People
who stop for a long time survive a plain median, so the median is taken over the frames that look most like
frames from other times of the clip (the empty scene recurs, a visitor does not).

Only footage without unlabelled objects of our classes may be used: ``parking-lot-bicycle.mp4`` shows a
bicycle and is never a background.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FootageBackground", "FOOTAGE_SPECS", "temporal_median", "load_footage_backgrounds"]


@dataclass(frozen=True)
class FootageBackground:
    """An empty real scene and how to stand objects on it.

    Attributes:
        name: The clip's file name.
        image: (H, W, 3) uint8 BGR median frame at the clip's size.
        ground_polygon_norm: (K, 2) where objects may stand, normalised image coordinates.
        pitch_deg: Assumed downward tilt of the camera.
        hfov_deg: Assumed horizontal field of view.
        bottom_px_per_m: Scale at the bottom centre of a 1280 px wide frame, pixels per metre. Chosen
            smaller than the clip's true scale where that would make bikes wider than the datasets want.
        paintable: Whether painted markings (bike-parking boxes) look right on its ground.
    """

    name: str
    image: np.ndarray
    ground_polygon_norm: np.ndarray
    pitch_deg: float
    hfov_deg: float
    bottom_px_per_m: float
    paintable: bool


@dataclass(frozen=True)
class _Spec:
    ground_polygon_norm: tuple[tuple[float, float], ...]
    pitch_deg: float
    hfov_deg: float
    bottom_px_per_m: float
    paintable: bool


FOOTAGE_SPECS: dict[str, _Spec] = {
    # elevated camera looking steeply down on a car park: all of the picture is asphalt
    "parking-lot-cars.mp4": _Spec(((0.0, 0.06), (1.0, 0.06), (1.0, 1.0), (0.0, 1.0)), 52.0, 60.0, 120.0, True),
    # a room seen from above a door: wooden floor below the skirting board
    "people-walking.mp4": _Spec(((0.0, 0.6), (1.0, 0.62), (1.0, 1.0), (0.0, 1.0)), 30.0, 65.0, 150.0, False),
}


def temporal_median(video_path: Path, n_samples: int = 31, refine_keep: float = 0.3) -> np.ndarray:
    """The static background of a fixed-camera clip.

    Args:
        video_path: The clip.
        n_samples: Frames sampled evenly across the clip.
        refine_keep: Share of the samples, those most alike to frames from other times, that the median uses.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise ValueError(f"{video_path}: cannot open video")
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(1, n_frames // n_samples)
    frames = []
    index = 0
    while True:
        if not cap.grab():
            break
        if index % step == 0:
            ok, frame = cap.retrieve()
            if ok:
                frames.append(frame)
        index += 1
    cap.release()
    if not frames:
        raise ValueError(f"{video_path}: no frames decoded")
    stack = np.stack(frames)
    small = np.stack([cv2.resize(f, (96, 54), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    n = len(frames)
    dist = np.abs(small[:, None] - small[None, :]).mean(axis=(2, 3, 4))
    # The empty scene recurs across the whole clip, while each visitor is there for one stretch only: score
    # each frame by how well it matches frames far from it in time, and keep the best-matching ones.
    gap = max(1, n // 5)
    score = np.empty(n)
    for i in range(n):
        far = dist[i, np.abs(np.arange(n) - i) >= gap]
        score[i] = np.quantile(far, 0.3) if far.size else 0.0
    keep = np.argsort(score, kind="stable")[:max(3, int(round(n * refine_keep)))]
    return np.median(stack[np.sort(keep)], axis=0).astype(np.uint8)


def load_footage_backgrounds(shared_dir: Path, cache_dir: Path | None = None) -> list[FootageBackground]:
    """Median backgrounds of the usable clips under ``shared_dir/footage`` (cached as PNG in `cache_dir`).

    Returns:
        One background per clip found; empty when the folder or the clips are absent.
    """
    folder = Path(shared_dir) / "footage"
    out = []
    for name, spec in FOOTAGE_SPECS.items():
        path = folder / name
        if not path.is_file():
            continue
        image = None
        cache_file = None
        if cache_dir is not None:
            stat = path.stat()
            key = hashlib.sha1(f"v1|{name}|{stat.st_size}".encode()).hexdigest()[:12]
            cache_file = Path(cache_dir) / f"median-{Path(name).stem}-{key}.png"
            if cache_file.is_file():
                image = cv2.imread(str(cache_file), cv2.IMREAD_COLOR)
        if image is None:
            image = temporal_median(path)
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp.png")
                cv2.imwrite(str(tmp), image)
                tmp.replace(cache_file)
        out.append(FootageBackground(name, image, np.asarray(spec.ground_polygon_norm, np.float32), spec.pitch_deg,
                                     spec.hfov_deg, spec.bottom_px_per_m, spec.paintable))
    return out
