"""Seeded synthetic scenes for training the street-camera and drone detectors, written as YOLO datasets.

Street scenes: a pole camera over a street with shopfronts; labels ``bicycle`` (real cut-out photos from the
bicycles-2000 train split and drawn shared bikes), ``stall`` and ``ebike``; people, cars, awnings, goods in
shop windows, empty carts and street furniture are left unlabelled on purpose. Drone scenes: city blocks from
above or at an angle; labels ``bicycle``, ``stall`` and ``illegal_structure`` (rooftop sheds, new builds),
with factory roofs of the same colour steel left unlabelled.

Everything is drawn from one ``numpy.random.Generator`` per image, so a seed gives the same bytes.

Example:
    >>> import numpy as np
    >>> sample = render_street_scene(np.random.default_rng([0, 0]), (640, 360))
    >>> sample.image.shape
    (360, 640, 3)
"""

from datasets.synth.aerial import AerialView, AerialViewSampling, render_aerial_frame_4k, render_aerial_scene
from datasets.synth.bike_bank import BikeCropBank
from datasets.synth.classes import AERIAL_CLASSES, STREET_CLASSES, classes_for
from datasets.synth.dataset import generate_dataset, load_street_assets, resolve_shared_dir
from datasets.synth.sample import SceneSample
from datasets.synth.scenario import SCENARIOS, ScenarioClip, render_scenario, scenario_timeline
from datasets.synth.street import StreetAssets, render_street_scene

__all__ = [
    "STREET_CLASSES", "AERIAL_CLASSES", "classes_for", "SceneSample", "StreetAssets", "BikeCropBank", "AerialView",
    "AerialViewSampling", "generate_dataset", "load_street_assets", "resolve_shared_dir", "render_street_scene",
    "render_aerial_scene", "render_aerial_frame_4k", "SCENARIOS", "ScenarioClip", "render_scenario",
    "scenario_timeline",
]
