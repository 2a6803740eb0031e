"""Colours of things found on Chinese city streets (BGR, 0..255), and small helpers to vary them."""

from __future__ import annotations

import numpy as np

__all__ = [
    "jitter", "pick", "mix",
    "SHARED_BIKE_SCHEMES", "PRIVATE_BIKE_COLORS", "EBIKE_COLORS", "CANOPY_COLORS", "CLOTH_COLORS", "SKIN_COLORS",
    "HAIR_COLORS", "CAR_COLORS", "FRUIT_COLORS", "PACKAGE_COLORS", "CRATE_COLORS", "TARP_COLORS", "SIGN_COLORS",
    "PAVING_COLORS", "FACADE_COLORS", "ROOF_COLORS", "WHITE", "BLACK", "STEEL", "TYRE",
]

BGR = tuple[float, float, float]

WHITE: BGR = (235.0, 235.0, 235.0)
BLACK: BGR = (28.0, 28.0, 30.0)
STEEL: BGR = (175.0, 172.0, 168.0)
TYRE: BGR = (30.0, 30.0, 32.0)

# (frame, accent, wheel rim) of the big shared-bike fleets: Meituan yellow, HelloBike blue, Qingju green,
# Mobike orange wheels on a silver frame.
SHARED_BIKE_SCHEMES: list[tuple[BGR, BGR, BGR]] = [
    ((20.0, 195.0, 250.0), (30.0, 30.0, 30.0), (20.0, 190.0, 245.0)),
    ((205.0, 120.0, 25.0), (240.0, 240.0, 240.0), (200.0, 200.0, 200.0)),
    ((70.0, 175.0, 60.0), (235.0, 235.0, 235.0), (70.0, 170.0, 60.0)),
    ((190.0, 190.0, 195.0), (20.0, 110.0, 240.0), (20.0, 110.0, 240.0)),
    ((25.0, 120.0, 245.0), (35.0, 35.0, 35.0), (25.0, 120.0, 240.0)),
]
PRIVATE_BIKE_COLORS: list[BGR] = [
    (30.0, 30.0, 32.0), (60.0, 60.0, 60.0), (40.0, 40.0, 150.0), (220.0, 220.0, 220.0), (120.0, 60.0, 20.0),
    (170.0, 130.0, 220.0), (90.0, 110.0, 60.0), (150.0, 150.0, 150.0),
]
EBIKE_COLORS: list[BGR] = [
    (235.0, 235.0, 235.0), (30.0, 30.0, 32.0), (40.0, 40.0, 185.0), (170.0, 95.0, 25.0), (185.0, 160.0, 235.0),
    (185.0, 185.0, 180.0), (150.0, 200.0, 120.0), (60.0, 60.0, 65.0), (30.0, 140.0, 230.0),
]
CANOPY_COLORS: list[BGR] = [
    (200.0, 100.0, 20.0), (40.0, 40.0, 200.0), (235.0, 235.0, 235.0), (60.0, 150.0, 40.0), (30.0, 200.0, 245.0),
    (20.0, 120.0, 240.0), (140.0, 60.0, 30.0), (120.0, 40.0, 150.0), (220.0, 170.0, 60.0), (35.0, 35.0, 150.0),
]
CLOTH_COLORS: list[BGR] = [
    (90.0, 50.0, 30.0), (30.0, 30.0, 32.0), (225.0, 225.0, 225.0), (120.0, 120.0, 120.0), (40.0, 40.0, 170.0),
    (110.0, 160.0, 180.0), (70.0, 110.0, 60.0), (190.0, 150.0, 110.0), (60.0, 60.0, 110.0), (150.0, 110.0, 200.0),
    (40.0, 150.0, 230.0), (160.0, 90.0, 40.0),
]
SKIN_COLORS: list[BGR] = [(150.0, 180.0, 225.0), (120.0, 155.0, 205.0), (95.0, 125.0, 175.0), (70.0, 95.0, 140.0)]
HAIR_COLORS: list[BGR] = [(20.0, 20.0, 25.0), (30.0, 35.0, 45.0), (60.0, 70.0, 90.0), (150.0, 150.0, 155.0)]
CAR_COLORS: list[BGR] = [
    (235.0, 235.0, 232.0), (235.0, 235.0, 232.0), (30.0, 30.0, 32.0), (30.0, 30.0, 32.0), (170.0, 170.0, 170.0),
    (110.0, 110.0, 112.0), (40.0, 40.0, 160.0), (130.0, 70.0, 30.0), (180.0, 200.0, 210.0),
]
FRUIT_COLORS: list[BGR] = [
    (0.0, 140.0, 250.0), (30.0, 35.0, 200.0), (60.0, 170.0, 90.0), (40.0, 215.0, 245.0), (90.0, 40.0, 95.0),
    (120.0, 150.0, 240.0), (40.0, 110.0, 40.0), (50.0, 90.0, 170.0), (20.0, 90.0, 220.0),
]
PACKAGE_COLORS: list[BGR] = [
    (80.0, 140.0, 190.0), (230.0, 230.0, 230.0), (40.0, 40.0, 200.0), (200.0, 120.0, 40.0), (40.0, 190.0, 240.0),
    (60.0, 160.0, 60.0), (160.0, 60.0, 150.0), (60.0, 110.0, 160.0),
]
CRATE_COLORS: list[BGR] = [(40.0, 40.0, 190.0), (180.0, 110.0, 30.0), (60.0, 150.0, 50.0), (30.0, 190.0, 240.0),
                           (60.0, 60.0, 60.0)]
TARP_COLORS: list[BGR] = [(180.0, 110.0, 40.0), (40.0, 40.0, 170.0), (80.0, 130.0, 80.0), (200.0, 200.0, 200.0),
                          (60.0, 150.0, 200.0), (130.0, 80.0, 140.0)]
SIGN_COLORS: list[BGR] = [
    (30.0, 30.0, 190.0), (30.0, 30.0, 190.0), (150.0, 70.0, 20.0), (50.0, 120.0, 40.0), (30.0, 180.0, 235.0),
    (235.0, 235.0, 235.0), (35.0, 35.0, 35.0), (20.0, 100.0, 220.0),
]
PAVING_COLORS: list[BGR] = [(150.0, 152.0, 155.0), (120.0, 125.0, 150.0), (165.0, 170.0, 175.0), (110.0, 115.0, 125.0),
                            (140.0, 150.0, 170.0), (95.0, 100.0, 130.0)]
FACADE_COLORS: list[BGR] = [
    (200.0, 205.0, 210.0), (170.0, 185.0, 200.0), (150.0, 150.0, 150.0), (190.0, 200.0, 220.0), (90.0, 110.0, 150.0),
    (215.0, 215.0, 215.0), (130.0, 140.0, 160.0), (170.0, 170.0, 160.0),
]
ROOF_COLORS: list[BGR] = [(150.0, 150.0, 148.0), (125.0, 128.0, 130.0), (170.0, 172.0, 170.0), (105.0, 110.0, 115.0),
                          (140.0, 135.0, 128.0)]


def jitter(rng: np.random.Generator, color: BGR, amount: float = 12.0, scale: float = 0.08) -> BGR:
    """A colour varied by a shared brightness factor (±`scale`) and a per-channel offset (±`amount`)."""
    k = 1.0 + rng.uniform(-scale, scale)
    d = rng.uniform(-amount, amount, 3)
    return (min(255.0, max(0.0, color[0] * k + d[0])), min(255.0, max(0.0, color[1] * k + d[1])),
            min(255.0, max(0.0, color[2] * k + d[2])))


def pick(rng: np.random.Generator, colors: list[BGR], amount: float = 10.0) -> BGR:
    """A random colour from a palette, jittered."""
    return jitter(rng, colors[int(rng.integers(len(colors)))], amount)


def mix(a: BGR, b: BGR, t: float) -> BGR:
    """Linear blend: t = 0 gives `a`, 1 gives `b`."""
    return tuple(float(x * (1.0 - t) + y * t) for x, y in zip(a, b))  # type: ignore[return-value]
