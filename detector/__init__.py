"""streetwatch detector library: frames in, detections, tracks and violations out (no web, no database)."""

from detector.types import Detections, Frame, FrameGeo

__all__ = ["Detections", "Frame", "FrameGeo"]
