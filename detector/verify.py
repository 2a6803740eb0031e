"""A second look before a case: the detector again, on an enlarged crop of each box, at the network's full input.

Strong city systems verify a detection before they report it: a reviewer's time is the scarce resource, and a false
case costs more than a few milliseconds of CPU. When a violation becomes due, each member box is cut out of the
frame with context around it, scaled so the crop fills the network's input (a 40 px bike becomes a 200 px bike:
the "higher resolution" look), and detected again. The box is confirmed when a detection of one of the rule's
classes overlaps it (IoU in frame pixels) at or above the card's threshold. A violation is confirmed when at least
half of its members are (a cluster of bikes with one doubtful member is still a cluster).

Why the detector itself and not a separate classifier: it is already loaded, it needs no new model to ship, and
at the crop's scale it sees what the full frame shrank away (wheels and frame of a bike, the legs of a person). A
dedicated crop classifier trained on reviewer decisions can replace `SecondLook.check` later behind the same
verdict type.

Cost: one network input per member box, only when a violation becomes due (or is re-checked): rare events, so a
camera's CPU hardly changes (`benchmarks/results/second_look.md`).

Example:
    >>> look = SecondLook(detector, SecondLookConfig())                       # doctest: +SKIP
    >>> verdict = look.check(frame.image, violation.xyxy, {"bicycle", "ebike"})  # doctest: +SKIP
    >>> verdict.agree, verdict.reason                                          # doctest: +SKIP
    (True, 'agreed')
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Collection, Mapping

import cv2
import numpy as np

from detector.geometry import box_iou

if TYPE_CHECKING:
    from detector.runtime import OnnxDetector

__all__ = ["SecondLook", "SecondLookConfig", "SecondLookVerdict", "VERDICT_REASONS"]

VERDICT_REASONS = ("agreed", "not_found", "other_class", "no_boxes")
"""Why a second look agreed or not: confirmed; nothing of the rule's classes where the box was; only other classes
there (a person where the frame saw an e-bike); the violation had no box to look at."""


@dataclass(frozen=True)
class SecondLookConfig:
    """How the second look is taken; every field bounded (`LIMITS`).

    Attributes:
        context_frac: Margin cut around a box on each side, as a share of its longer side (context helps the
            network: a bike is recognised by its surroundings too).
        max_upscale: A crop is enlarged to the network's input at most this many times (beyond it, interpolation
            adds nothing).
        min_iou: The re-detected box must overlap the original this much (in frame pixels).
        min_score: Score a re-detection needs (None: the model card's per-class thresholds).
        recheck_interval_s: A violation the second look refused is looked at again at most this often while it
            stays due (the object may be seen better later: the vendor finishes setting up).
    """

    # 1.0 (a box's own size of context on each side) keeps the small far bikes a tiled camera finds, which a
    # tighter crop loses; on the bicycles-2000 holdout it keeps 57 of 58 true first-look boxes (0.6: 56).
    context_frac: float = 1.0
    max_upscale: float = 4.0
    min_iou: float = 0.3
    min_score: float | None = None
    recheck_interval_s: float = 300.0

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "context_frac": (0.0, 3.0), "max_upscale": (1.0, 16.0), "min_iou": (0.0, 1.0), "min_score": (0.0, 1.0),
        "recheck_interval_s": (1.0, 86400.0),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            lo, hi = self.LIMITS[f.name]
            if not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"SecondLookConfig: {f.name} must lie within [{lo:g}, {hi:g}], got {value!r}")


@dataclass(frozen=True)
class SecondLookVerdict:
    """What the second look saw.

    Attributes:
        agree: Whether the violation is confirmed.
        reason: One of `VERDICT_REASONS`.
        score: The lowest score among the confirmed members (0 when none is confirmed): the case's weakest link.
        agreed: Per member box: confirmed or not.
        scores: Per member box: the best matching re-detection's score (0 when none).
        seen_classes: Per member box: the class of the best-overlapping re-detection of any class ("" for none).
        ms: Time the look took.
    """

    agree: bool
    reason: str
    score: float
    agreed: tuple[bool, ...]
    scores: tuple[float, ...]
    seen_classes: tuple[str, ...]
    ms: float

    def as_dict(self) -> dict:
        return {"agree": self.agree, "reason": self.reason, "score": round(self.score, 4),
                "agreed": list(self.agreed), "scores": [round(s, 4) for s in self.scores],
                "seen_classes": list(self.seen_classes), "ms": round(self.ms, 1)}


class SecondLook:
    """Re-detects violation boxes on enlarged crops.

    Args:
        detector: The camera's detector (shared, stateless).
        config: How the look is taken.
        class_map: Model class name → pipeline class (the card's ``violation_classes`` plus the camera's).
    """

    def __init__(self, detector: "OnnxDetector", config: SecondLookConfig | None = None,
                 class_map: Mapping[str, str] | None = None) -> None:
        self.detector = detector
        self.config = config or SecondLookConfig()
        class_map = dict(class_map or {})
        self._names = np.asarray([class_map.get(n, n) for n in detector.class_names])
        self._input_px = max(detector.card.input.width_px, detector.card.input.height_px)

    def _crop(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """The enlarged crop around `box`, and (scale, x0, y0) to map crop pixels back to the frame."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1, 1.0)
        margin = self.config.context_frac * side
        cx0 = max(0, int(math.floor(x1 - margin)))
        cy0 = max(0, int(math.floor(y1 - margin)))
        cx1 = min(w, int(math.ceil(x2 + margin)))
        cy1 = min(h, int(math.ceil(y2 + margin)))
        crop = image[cy0:cy1, cx0:cx1]
        longer = max(crop.shape[0], crop.shape[1], 1)
        scale = min(self.config.max_upscale, self._input_px / longer)
        if scale > 1.0:
            crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_CUBIC)
        else:
            scale = 1.0
        return crop, scale, float(cx0), float(cy0)

    def check(self, image: np.ndarray, xyxy: np.ndarray, classes: Collection[str]) -> SecondLookVerdict:
        """Look again at each box of a violation in `image` (the frame it became due on).

        Args:
            image: HxWx3 uint8 BGR frame.
            xyxy: (N, 4) the violation's member boxes, frame pixels.
            classes: Pipeline classes the rule accepts (a re-detection of another class does not confirm).
        """
        started = time.perf_counter()
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        if not len(boxes):
            return SecondLookVerdict(False, "no_boxes", 0.0, (), (), (), (time.perf_counter() - started) * 1000)
        accept = set(classes)
        agreed, scores, seen = [], [], []
        for box in boxes:
            crop, scale, x0, y0 = self._crop(image, box)
            det = self.detector.detect(crop, self.config.min_score)
            if not len(det):
                agreed.append(False), scores.append(0.0), seen.append("")
                continue
            in_frame = det.xyxy / scale + np.array([x0, y0, x0, y0], np.float32)
            iou = box_iou(box[None, :], in_frame)[0]
            names = self._names[det.class_id]
            ok = (iou >= self.config.min_iou) & np.isin(names, list(accept))
            best_any = int(np.argmax(iou))
            seen.append(str(names[best_any]) if iou[best_any] >= self.config.min_iou else "")
            if ok.any():
                agreed.append(True)
                scores.append(float(det.confidence[ok].max()))
            else:
                agreed.append(False)
                scores.append(0.0)
        n_ok = sum(agreed)
        agree = n_ok >= math.ceil(len(boxes) / 2)
        if agree:
            reason = "agreed"
        elif any(c and c not in accept for c in seen):
            reason = "other_class"
        else:
            reason = "not_found"
        score = min((s for s, a in zip(scores, agreed) if a), default=0.0)
        return SecondLookVerdict(agree, reason, score, tuple(agreed), tuple(scores), tuple(seen),
                                 (time.perf_counter() - started) * 1000)
