"""Drone georeferencing: telemetry in, findings on the map out (pure logic; no video decoding, no models).

Rooms:
- `telemetry`: DJI SRT sidecars and geotagged stills → per-frame `detector.types.FrameGeo`.
- `profiles`: camera intrinsics of common DJI cameras (published sensor and lens figures).
- `camera`: the pinhole camera model; pixel rays ↔ the ground plane; frame footprints.
- `enu`: WGS84 ↔ a local east-north-up frame (pymap3d).
- `sampling`: which frames to analyse, by ground distance (footprint overlap), not by frame count.
- `merge`: per-frame ground detections → one `MapFinding` per physical object.
- `layers`, `maprules`: GeoJSON layers (baseline, e-fences, no-vending areas, grid cells) and the rules
  that turn findings into violations in map space.
"""
