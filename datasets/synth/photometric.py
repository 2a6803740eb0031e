"""What the camera and the weather do to a rendered scene: time of day, street lights, fog, rain, blur,
sensor noise, tone curve and the on-screen clock of a CCTV camera.

Everything works on the float32 canvas of a `Compositor` (0..255) and draws from the scene's `Generator`,
so a seed gives the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synth.sketch import Light

__all__ = [
    "Lighting", "sample_lighting", "apply_lighting", "add_glows", "add_fog", "add_rain", "add_blur",
    "add_sensor_noise", "add_grain", "tone_curve", "draw_osd", "LIGHTING_NAMES",
]

LIGHTING_NAMES = ("day", "overcast", "dusk", "night")


@dataclass(frozen=True)
class Lighting:
    """The light a scene is seen in.

    Attributes:
        name: One of `LIGHTING_NAMES`.
        gain_bgr: Multiplier of unlit (not self-luminous) pixels per channel.
        sun: Direction and strength of the sun for shading and cast shadows; None when overcast or dark.
        shadow_strength: How much a cast shadow darkens the ground (0..1).
        contact_shadow_strength: Darkening under objects (ambient occlusion), present in every light.
        lamps_on: Street lights, shop signs and car lights glow.
        noise_sigma: Standard deviation of sensor noise, grey levels.
        desaturation: Share of colour removed (overcast, night).
        rain: Rain streaks and wet ground.
    """

    name: str
    gain_bgr: tuple[float, float, float]
    sun: Light | None
    shadow_strength: float
    contact_shadow_strength: float
    lamps_on: bool
    noise_sigma: float
    desaturation: float
    rain: bool


def _sun(rng: np.random.Generator, elevation_deg: float) -> Light:
    azimuth = rng.uniform(0.0, 2 * math.pi)
    el = math.radians(elevation_deg)
    return Light(sun_dir=(math.cos(el) * math.cos(azimuth), math.cos(el) * math.sin(azimuth), math.sin(el)),
                 ambient=float(rng.uniform(0.55, 0.68)), diffuse=float(rng.uniform(0.35, 0.5)))


def sample_lighting(rng: np.random.Generator, weights: tuple[float, float, float, float] = (0.45, 0.25, 0.15, 0.15),
                    rain_probability: float = 0.12) -> Lighting:
    """Draw a lighting condition: day, overcast, dusk or night, with `weights`."""
    w = np.asarray(weights, np.float64)
    name = LIGHTING_NAMES[int(rng.choice(4, p=w / w.sum()))]
    rain = bool(rng.random() < rain_probability) and name != "day"
    if name == "day":
        g = rng.uniform(0.92, 1.12)
        warm = rng.uniform(-0.04, 0.05)
        return Lighting(name, (g * (1 - warm), g, g * (1 + warm)), _sun(rng, rng.uniform(25, 70)),
                        float(rng.uniform(0.3, 0.5)), 0.35, False, float(rng.uniform(1.0, 3.5)), 0.0, False)
    if name == "overcast":
        g = rng.uniform(0.72, 0.92)
        return Lighting(name, (g * 1.03, g, g * 0.97), None, 0.0, 0.45, False, float(rng.uniform(1.5, 4.0)),
                        float(rng.uniform(0.15, 0.35)), rain)
    if name == "dusk":
        g = rng.uniform(0.42, 0.6)
        return Lighting(name, (g * 0.8, g * 0.92, g * 1.12), _sun(rng, rng.uniform(5, 14)),
                        float(rng.uniform(0.15, 0.3)), 0.4, True, float(rng.uniform(3.0, 6.0)), 0.1, rain)
    g = rng.uniform(0.22, 0.36)
    return Lighting(name, (g * 1.15, g, g * 0.85), None, 0.0, 0.3, True, float(rng.uniform(4.0, 9.0)),
                    float(rng.uniform(0.2, 0.45)), rain)


def apply_lighting(image: np.ndarray, emission: np.ndarray, lighting: Lighting, light_map: np.ndarray | None = None,
                   light_bgr: tuple[float, float, float] = (0.65, 0.85, 1.0)) -> None:
    """Darken and tint unlit pixels; self-lit ones (emission) keep their brightness. In place.

    Args:
        image: (H, W, 3) float32 canvas.
        emission: (H, W) float32 0..1, how self-lit each pixel is.
        lighting: The condition.
        light_map: (H, W) float32 extra light from street lamps (0..~1.5), multiplied by `light_bgr`.
        light_bgr: Colour of that extra light (warm sodium-ish by default).
    """
    if lighting.desaturation > 0:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        image *= 1.0 - lighting.desaturation
        image += (lighting.desaturation * gray)[..., None]
    gain = np.asarray(lighting.gain_bgr, np.float32)
    has_emission = bool(emission.any())
    if light_map is None and not has_emission:
        image *= gain
        return
    factor = np.empty_like(image)
    factor[:] = gain
    if light_map is not None:
        factor += light_map[..., None] * np.asarray(light_bgr, np.float32)
    if has_emission:
        e = emission[..., None]
        factor -= 1.0
        factor *= 1.0 - e
        factor += 1.0
    image *= factor


def add_glows(image: np.ndarray, points_px: np.ndarray, radii_px: np.ndarray, colors_bgr: np.ndarray,
              strength: float = 1.0) -> None:
    """Add soft halos around light sources (lamps, head lights), computed at quarter size. In place."""
    if len(points_px) == 0:
        return
    h, w = image.shape[:2]
    small = np.zeros(((h + 3) // 4, (w + 3) // 4, 3), np.float32)
    for (x, y), r, c in zip(points_px, radii_px, colors_bgr):
        if not (-r * 2 < x < w + r * 2 and -r * 2 < y < h + r * 2):
            continue
        rr = max(1, int(round(r / 4)))
        cv2.circle(small, (int(round(x / 4)), int(round(y / 4))), rr, tuple(float(v) for v in c), -1, cv2.LINE_AA)
    sigma = max(1.0, float(np.median(radii_px)) / 4.0)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    glow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    image += strength * glow
    # the light itself: a small bright core
    for (x, y), r, c in zip(points_px, radii_px, colors_bgr):
        if 0 <= x < w and 0 <= y < h:
            cv2.circle(image, (int(round(x)), int(round(y))), max(1, int(round(r * 0.18))), (255.0, 255.0, 255.0),
                       -1, cv2.LINE_AA)


def add_fog(image: np.ndarray, depth_rows_m: np.ndarray, visibility_m: float,
            color_bgr: tuple[float, float, float]) -> None:
    """Blend towards the fog colour by depth: ``1 - exp(-depth / visibility)`` per row. In place."""
    f = (1.0 - np.exp(-np.asarray(depth_rows_m, np.float32) / visibility_m)).astype(np.float32)[:, None, None]
    image *= 1.0 - f
    image += f * np.asarray(color_bgr, np.float32)


def add_rain(image: np.ndarray, rng: np.random.Generator, density: float = 1.0) -> None:
    """Bright slanted streaks (falling drops caught by the exposure), drawn at half size. In place."""
    h, w = image.shape[:2]
    hs, ws = (h + 1) // 2, (w + 1) // 2
    layer = np.zeros((hs, ws), np.float32)
    n = int(density * rng.uniform(400, 1200) * hs * ws / (640 * 360))
    angle = rng.uniform(-0.35, 0.35)
    x = rng.uniform(0, ws, n)
    y = rng.uniform(0, hs, n)
    length = rng.uniform(6, 18, n)
    bright = rng.uniform(25, 70, n)
    dx, dy = np.sin(angle) * length, np.cos(angle) * length
    for i in range(n):
        cv2.line(layer, (int(x[i]), int(y[i])), (int(x[i] + dx[i]), int(y[i] + dy[i])), float(bright[i]), 1,
                 cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (3, 3), 0)
    image += cv2.resize(layer, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]


def add_blur(image: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """``"defocus"`` (Gaussian), ``"motion"`` (a short line kernel: camera shake on a pole) or ``"none"``."""
    if kind == "defocus":
        return cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.6, 1.6)))
    if kind == "motion":
        k = int(rng.integers(5, 12))
        kernel = np.zeros((k, k), np.float32)
        a = rng.uniform(0, math.pi)
        c = (k - 1) / 2
        cv2.line(kernel, (int(round(c - math.cos(a) * c)), int(round(c - math.sin(a) * c))),
                 (int(round(c + math.cos(a) * c)), int(round(c + math.sin(a) * c))), 1.0, 1, cv2.LINE_AA)
        kernel /= kernel.sum()
        return cv2.filter2D(image, -1, kernel)
    return image


def add_grain(image: np.ndarray, rng: np.random.Generator, amount: float = 0.06) -> None:
    """Low- and mid-frequency multiplicative variation: stains, uneven paint, dirt. In place."""
    h, w = image.shape[:2]
    coarse = rng.standard_normal(((h + 31) // 32, (w + 31) // 32), dtype=np.float32)
    mid = rng.standard_normal(((h + 7) // 8, (w + 7) // 8), dtype=np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * amount
    field += cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR) * (amount * 0.5)
    field += 1.0
    image *= field[..., None]


def add_sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> None:
    """Luminance noise at full resolution plus weaker, blotchy chroma noise. In place."""
    h, w = image.shape[:2]
    # a quarter of the rows' worth of noise, tiled with random horizontal rolls: repeats 180 rows apart in a
    # 720-row frame are invisible, and drawing normals is the costliest step of the whole finish
    block_h = max(1, (h + 3) // 4)
    block = rng.standard_normal((block_h, w), dtype=np.float32) * np.float32(sigma)
    rolls = rng.integers(0, w, 4)
    luma = np.concatenate([np.roll(block, int(r), axis=1) for r in rolls])[:h]
    cv2.add(image, cv2.merge([luma, luma, luma]), dst=image)
    chroma = rng.standard_normal(((h + 3) // 4, (w + 3) // 4, 3), dtype=np.float32) * np.float32(sigma * 0.5)
    cv2.add(image, cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR), dst=image)


def tone_curve(image_u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A per-channel look-up: gamma, contrast and white-balance drift of a cheap camera."""
    x = np.arange(256, dtype=np.float32) / 255.0
    gamma = rng.uniform(0.85, 1.15)
    contrast = rng.uniform(0.9, 1.15)
    lut = []
    for _ in range(3):
        y = np.power(x, gamma * rng.uniform(0.97, 1.03))
        y = (y - 0.5) * contrast + 0.5
        lut.append(np.clip(y * 255.0 * rng.uniform(0.96, 1.04), 0, 255).astype(np.uint8))
    return cv2.LUT(image_u8, np.stack(lut, axis=1).reshape(256, 1, 3))


def draw_osd(image_u8: np.ndarray, rng: np.random.Generator) -> None:
    """The date/time and camera name that CCTV cameras burn into the picture (white, outlined). In place."""
    h, w = image_u8.shape[:2]
    scale = w / 1280.0 * rng.uniform(0.7, 1.0)
    day = int(rng.integers(1, 29))
    stamp = (f"20{int(rng.integers(22, 27))}-{int(rng.integers(1, 13)):02d}-{day:02d} "
             f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}")
    name = f"CAM{int(rng.integers(1, 999)):03d} {['ROAD', 'STREET', 'GATE', 'MARKET', 'LANE'][int(rng.integers(5))]}"
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = max(1, int(round(2 * scale)))
    places = ((stamp, (int(20 * scale), int(40 * scale))), (name, (int(w - 330 * scale), int(h - 24 * scale))))
    for text, (x, y) in places:
        cv2.putText(image_u8, text, (x, y), font, 0.9 * scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(image_u8, text, (x, y), font, 0.9 * scale, (255, 255, 255), thick, cv2.LINE_AA)
