"""Real bicycles cut out of labelled photos, to paste into synthetic scenes.

Each labelled box of the bicycles-2000 *train* split (never val or test) is cut out with GrabCut started from
the labelled rectangle, at most 160 px on its long side for speed, with OpenCV's random generator seeded so
the cut is the same on every run. Crops that would look wrong pasted whole are skipped: boxes cut by the
photo's edge or overlapping another bike, boxes where a COCO detector (YOLOX-Nano from ../shared/models) sees
a person over the bike (riders, people pushing), photos with heavy salt-and-pepper noise, blurred photos (held
to a stricter test where the detector sees no bicycle), and cuts that kept too little of the box or let the
background in. The bank is cached as PNG files (BGRA, straight
alpha) and built once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.synth.sketch import Layer
from detector.types import Detections

__all__ = ["BikeCropBank", "cut_out_bicycle", "default_cache_dir", "BANK_VERSION"]

BANK_VERSION = "v8"
_GRABCUT_SIDE_PX = 160
_MAX_STORED_SIDE_PX = 320
_MIN_BOX_PX = 56
_COCO_PERSON, _COCO_BICYCLE = 0, 1
VETTING_MODEL = "yolox-nano-coco"
"""COCO detector (from ../shared/models) that vets crops: riders are left out, unrecognised bikes must be sharp."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/streetwatch`` (``~/.cache/streetwatch``)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "streetwatch"


def _noisy(image: np.ndarray) -> bool:
    """Salt-and-pepper augmentation in the source photo (pasted, it would be a give-away texture)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    diff = cv2.absdiff(gray, cv2.medianBlur(gray, 3))
    return float((diff > 60).mean()) > 0.01


def cut_out_bicycle(image: np.ndarray, xyxy_px: tuple[int, int, int, int], min_sharpness: float = 60.0
                    ) -> np.ndarray | None:
    """Cut one labelled bicycle out of a photo.

    Args:
        image: (H, W, 3) uint8 BGR photo.
        xyxy_px: The labelled box.
        min_sharpness: Least variance of the Laplacian (at 128 px wide) of the crop: blurred photos fail.

    Returns:
        (h, w, 4) uint8 BGRA crop of the box with a soft alpha, or None when the cut looks unusable.
    """
    h_img, w_img = image.shape[:2]
    x1, y1, x2, y2 = xyxy_px
    bw, bh = x2 - x1, y2 - y1
    mx, my = int(0.15 * bw) + 4, int(0.15 * bh) + 4
    X1, Y1, X2, Y2 = max(0, x1 - mx), max(0, y1 - my), min(w_img, x2 + mx), min(h_img, y2 + my)
    region = image[Y1:Y2, X1:X2]
    scale = min(1.0, _GRABCUT_SIDE_PX / max(region.shape[:2]))
    small = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else region
    sh, sw = small.shape[:2]
    rx1, ry1 = max(1, int(round((x1 - X1) * scale))), max(1, int(round((y1 - Y1) * scale)))
    rx2, ry2 = min(sw - 2, int(round((x2 - X1) * scale))), min(sh - 2, int(round((y2 - Y1) * scale)))
    if rx2 - rx1 < 8 or ry2 - ry1 < 8:
        return None
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: fixed, so the bank is the same on every machine and run
    try:
        cv2.grabCut(small, mask, (rx1, ry1, rx2 - rx1, ry2 - ry1), bgd, fgd, 3, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return None
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= 0.03 * stats[1:, cv2.CC_STAT_AREA].sum()
    fg = keep[lab].astype(np.uint8)
    inner = fg[ry1:ry2, rx1:rx2]
    fill = float(inner.mean())
    if not 0.12 <= fill <= 0.72:
        return None
    border = np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]])
    if float(border.mean()) > 0.2:  # background leaking in: a bike touches its box at a few points only
        return None
    top_band = inner[: max(2, inner.shape[0] // 25)]
    if float(top_band.mean()) > 0.3:  # a rider's body crossing the top edge, cut off by the label box
        return None
    # back to full resolution: soft alpha from the upscaled mask, cropped to the labelled box
    alpha = cv2.resize(fg.astype(np.float32), (X2 - X1, Y2 - Y1), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8)
    alpha = alpha[y1 - Y1:y2 - Y1, x1 - X1:x2 - X1]
    crop = image[y1:y2, x1:x2]
    ring = np.ones(region.shape[:2], bool)
    ring[y1 - Y1:y2 - Y1, x1 - X1:x2 - X1] = False
    ring_px = region[ring].astype(np.int16)
    ring_px = ring_px[ring_px.max(axis=1) > 15]  # letterbox bars of rotated or padded photos are not backdrop
    if len(ring_px) > 50:
        backdrop = np.median(ring_px, axis=0)
        if float((np.abs(ring_px - backdrop).max(axis=1) < 30).mean()) > 0.85:
            # a studio shot on a plain backdrop: GrabCut keeps the backdrop seen through the frame; blank out
            # backdrop-coloured areas too wide to be a tube of the same colour
            near = (np.abs(crop.astype(np.int16) - backdrop).max(axis=2) < 30).astype(np.uint8)
            wide = cv2.morphologyEx(near, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
            alpha = alpha * (1.0 - cv2.GaussianBlur(wide.astype(np.float32), (0, 0), 1.0))
            kept = alpha > 0.5
            if not kept.any() or float(near[kept].mean()) > 0.45:
                return None  # a bike the colour of its backdrop: no clean cut possible
    s = min(1.0, _MAX_STORED_SIDE_PX / max(crop.shape[:2]))
    if s < 1.0:
        crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (128, max(8, int(128 * gray.shape[0] / gray.shape[1]))), interpolation=cv2.INTER_AREA)
    if float(cv2.Laplacian(gray, cv2.CV_32F).var()) < min_sharpness:  # motion-blurred or out of focus
        return None
    a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([crop, a8])


@functools.lru_cache(maxsize=1)
def _load_vetting_model():
    """The vetting detector, or None when its model file (third-party, in ../shared) is absent."""
    from detector.errors import StreetwatchError
    from detector.runtime import RuntimeOptions, load_model

    try:
        return load_model(VETTING_MODEL, options=RuntimeOptions(intra_op_threads=1))
    except (StreetwatchError, OSError):
        return None


def _boxes_of(label_file: Path, w: int, h: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] != "0":
            continue
        cx, cy, bw, bh = (float(v) for v in parts[1:])
        boxes.append((int(round((cx - bw / 2) * w)), int(round((cy - bh / 2) * h)),
                      int(round((cx + bw / 2) * w)), int(round((cy + bh / 2) * h))))
    return boxes


def _vetting(box: tuple[int, int, int, int], found: Detections | None) -> str:
    """A COCO detector's opinion of a labelled box.

    Returns:
        ``"rider"`` when a person covers the bike (riders, people pushing or standing in front), ``"bicycle"``
        when it sees a bicycle there, ``"unsure"`` otherwise (odd angles, blur: kept only when sharp).
    """
    if found is None:
        return "unsure"
    b = np.asarray(box, np.float64)
    area = (b[2] - b[0]) * (b[3] - b[1])
    ix = np.clip(np.minimum(found.xyxy[:, 2], b[2]) - np.maximum(found.xyxy[:, 0], b[0]), 0, None)
    iy = np.clip(np.minimum(found.xyxy[:, 3], b[3]) - np.maximum(found.xyxy[:, 1], b[1]), 0, None)
    inter = ix * iy
    iou = inter / (area + found.area_px2 - inter + 1e-9)
    if ((found.class_id == _COCO_PERSON) & (found.confidence >= 0.3) & (inter > 0.25 * area)).any():
        return "rider"
    if ((found.class_id == _COCO_BICYCLE) & (iou >= 0.3)).any():
        return "bicycle"
    return "unsure"


def _usable(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]], w: int, h: int) -> bool:
    x1, y1, x2, y2 = box
    if x2 - x1 < _MIN_BOX_PX or y2 - y1 < _MIN_BOX_PX:
        return False
    if x1 <= 2 or y1 <= 2 or x2 >= w - 2 or y2 >= h - 2:
        return False  # cut by the photo's edge: pasted whole it would be half a bike
    area = (x2 - x1) * (y2 - y1)
    for o in others:
        if o == box:
            continue
        ix = max(0, min(x2, o[2]) - max(x1, o[0]))
        iy = max(0, min(y2, o[3]) - max(y1, o[1]))
        if ix * iy > 0.05 * area:
            return False
    return True


@dataclass
class BikeCropBank:
    """Cut-out real bicycles (BGRA, straight alpha) and where they came from.

    Example:
        >>> bank = BikeCropBank([np.full((40, 60, 4), 255, np.uint8)], ["a.jpg"])
        >>> layer = bank.layer(0, height_px=20.0, flip=True)
        >>> (layer.height_px, layer.width_px)
        (20, 30)
    """

    crops: list[np.ndarray]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.crops)

    def layer(self, index: int, height_px: float, flip: bool = False, squash: float = 1.0,
              gain: float = 1.0) -> Layer:
        """Crop `index` scaled to `height_px` (width × `squash`⁻¹ kept to aspect), optionally mirrored.

        Args:
            index: Which crop.
            height_px: Target height.
            flip: Mirror left-right.
            squash: Vertical factor applied after scaling (< 1 looks a little more from above).
            gain: Brightness factor (the photos' exposure differs from the scene's).
        """
        crop = self.crops[index]
        h, w = crop.shape[:2]
        th = max(2, int(round(height_px * squash)))
        tw = max(2, int(round(w * height_px / h)))
        interp = cv2.INTER_AREA if th < h else cv2.INTER_LINEAR
        # scale premultiplied colour so edges do not pick up the cut-away background
        a = crop[..., 3].astype(np.float32) * (1.0 / 255.0)
        pre = crop[..., :3].astype(np.float32) * a[..., None] * gain
        pre = cv2.resize(pre, (tw, th), interpolation=interp)
        a = cv2.resize(a, (tw, th), interpolation=interp)
        if flip:
            pre, a = pre[:, ::-1].copy(), a[:, ::-1].copy()
        np.clip(pre, 0.0, 255.0 * a[..., None], out=pre)
        return Layer(pre, a, 0, 0)

    # --- building and caching -------------------------------------------------------------------

    @classmethod
    def build(cls, train_dir: Path, max_crops: int | None = None, progress: bool = False,
              vet: bool = True) -> "BikeCropBank":
        """Cut out the usable bicycles of a YOLO split folder (``images/`` + ``labels/``).

        Args:
            train_dir: e.g. ``shared/data/bicycles-2000/train``. Never pass val or test: they are holdouts.
            max_crops: Stop after this many usable crops (images are visited in name order, so a small bank
                is a prefix of the full one).
            progress: Show a tqdm bar.
            vet: Let `VETTING_MODEL` reject boxes with a person over them, and hold boxes where it sees no
                bicycle to a stricter sharpness test.
        """
        detector = _load_vetting_model() if vet else None
        train_dir = Path(train_dir)
        if train_dir.name in ("val", "valid", "test"):
            raise ValueError(f"{train_dir}: bicycle crops must come from the train split only")
        images = sorted((train_dir / "images").glob("*.jpg"))
        crops, sources = [], []
        for path in tqdm(images, desc="bike crops", disable=not progress, unit="img"):
            label = train_dir / "labels" / (path.stem + ".txt")
            if not label.is_file():
                continue
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            h, w = image.shape[:2]
            boxes = _boxes_of(label, w, h)
            usable = [b for b in boxes if _usable(b, boxes, w, h)]
            if not usable or _noisy(image):
                continue
            found = detector.detect(image, min_score=0.1) if detector is not None else None
            for box in usable:
                opinion = _vetting(box, found) if vet else "bicycle"
                if opinion == "rider":
                    continue
                crop = cut_out_bicycle(image, box, min_sharpness=60.0 if opinion == "bicycle" else 180.0)
                if crop is not None:
                    crops.append(crop)
                    sources.append(path.name)
            if max_crops is not None and len(crops) >= max_crops:
                crops, sources = crops[:max_crops], sources[:max_crops]
                break
        return cls(crops, sources)

    @classmethod
    def load_or_build(cls, train_dir: Path, cache_dir: Path | None = None, max_crops: int | None = None,
                      progress: bool = False, vet: bool = True) -> "BikeCropBank":
        """The cached bank for `train_dir`, building it on the first call.

        Args:
            train_dir: The train split of bicycles-2000.
            cache_dir: Where banks are kept; default ``~/.cache/streetwatch``.
            max_crops: Size limit (tests use small banks); part of the cache key.
            progress: Show a tqdm bar while building.
            vet: Vet crops with a COCO detector when its model is available (part of the cache key).
        """
        train_dir = Path(train_dir)
        vet = vet and _load_vetting_model() is not None
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        names = sorted(p.name for p in (train_dir / "images").glob("*.jpg"))
        key = hashlib.sha1(f"{BANK_VERSION}|{max_crops}|{vet}|{len(names)}|{'|'.join(names)}".encode()).hexdigest()[:16]
        folder = cache_dir / "bike_crops" / f"{BANK_VERSION}-{key}"
        index_file = folder / "index.json"
        if index_file.is_file():
            index = json.loads(index_file.read_text())
            crops = [cv2.imread(str(folder / f), cv2.IMREAD_UNCHANGED) for f in index["files"]]
            if all(c is not None and c.ndim == 3 and c.shape[2] == 4 for c in crops):
                return cls(crops, list(index["sources"]))
        bank = cls.build(train_dir, max_crops=max_crops, progress=progress, vet=vet)
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for i, crop in enumerate(bank.crops):
            name = f"{i:05d}.png"
            cv2.imwrite(str(folder / name), crop)
            files.append(name)
        tmp = folder / "index.json.tmp"
        tmp.write_text(json.dumps({"version": BANK_VERSION, "files": files, "sources": bank.sources}))
        tmp.replace(index_file)
        return bank

    def preview(self, n: int = 48, cell_px: int = 96) -> np.ndarray:
        """A grid of the first `n` crops over a checkerboard (for a visual check of the cut-outs)."""
        n = min(n, len(self))
        cols = max(1, int(math.ceil(math.sqrt(n * 1.5))))
        rows = max(1, int(math.ceil(n / cols)))
        sheet = np.zeros((rows * cell_px, cols * cell_px, 3), np.float32)
        yy, xx = np.mgrid[:rows * cell_px, :cols * cell_px]
        sheet[:] = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 90.0, 160.0)
        for i in range(n):
            layer = self.layer(i, cell_px - 4)
            if layer.width_px > cell_px - 4:
                layer = self.layer(i, (cell_px - 4) * (cell_px - 4) / layer.width_px)
            r, c = divmod(i, cols)
            y0, x0 = r * cell_px + 2, c * cell_px + 2
            region = sheet[y0:y0 + layer.height_px, x0:x0 + layer.width_px]
            region *= 1.0 - layer.alpha[..., None]
            region += layer.bgr
        return sheet.astype(np.uint8)
