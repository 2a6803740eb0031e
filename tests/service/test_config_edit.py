"""Writing the configuration back (service.config_edit) and drawing snapshots (service.snapshot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.config import AppConfig, ZoneConfig, load_config
from service.config_edit import ConfigRejected, config_document, render_config, validate_config, write_config_file
from service.evidence import ZONE_COLORS, draw_zones, zone_color
from service.snapshot import encode_jpeg

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "config.yaml"


@pytest.mark.parametrize("name", ["config.yaml", "config.json"])
def test_the_example_configuration_survives_a_rewrite(tmp_path, name):
    config = load_config(EXAMPLE)
    path = tmp_path / name
    write_config_file(path, config, note="test")
    again = load_config(path)
    assert again == config and config_document(again) == config_document(config)
    for camera in config.cameras:  # effective rules (camera overrides over the defaults) are unchanged
        assert again.rules_for(again.camera(camera.id)) == config.rules_for(camera)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_rendered_yaml_is_readable():
    text = render_config(load_config(EXAMPLE), Path("c.yaml"), note="zones xh-caoxi-01 by root")
    assert text.startswith("# streetwatch configuration, rewritten by the service at ")
    assert "(zones xh-caoxi-01 by root)" in text and "comments of a hand-written file are not kept" in text
    assert "- [0.05, 0.55]" in text and "days: [mon-fri]" in text and "漕溪北路" in text


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_config_file(tmp_path / "missing-dir" / "config.yaml", AppConfig(config_version=1))
    assert list(tmp_path.iterdir()) == []


def test_validate_config_names_fields_relative_to_the_camera():
    raw = config_document(AppConfig(config_version=1))
    raw["cameras"].append({"id": "c", "source": "push", "timezone": "Asia/Shanghai",
                           "zones": [{"id": "z", "kind": "no_vending", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]})
    with pytest.raises(ConfigRejected) as caught:
        validate_config(raw, prefix="cameras[0].")
    assert caught.value.problems == [
        ("zones[0].polygon", "self-intersecting at segment 2\u20133 (crosses segment 0\u20131)")]


def test_draw_zones_outlines_each_kind_in_its_colour():
    image = np.full((200, 400, 3), 128, np.uint8)
    zones = [ZoneConfig(id=kind, kind=kind,
                        polygon=[(0.1 + i * 0.18, 0.2), (0.2 + i * 0.18, 0.2), (0.2 + i * 0.18, 0.9)])
             for i, kind in enumerate(ZONE_COLORS)]
    drawn = draw_zones(image, zones, fill_alpha=0)
    assert (image == 128).all()  # the frame itself is left alone
    for i, zone in enumerate(zones):
        x, y = int(round((0.2 + i * 0.18) * 400)), int(round(0.75 * 200))  # on the zone's vertical edge
        patch = drawn[y - 1:y + 2, x - 2:x + 3].reshape(-1, 3).astype(int)
        distance = np.abs(patch - np.array(zone_color(zone.kind))).sum(axis=1).min()
        assert distance < 40, (zone.kind, patch)
    assert (draw_zones(image, []) == image).all()
    assert encode_jpeg(drawn)[:3] == b"\xff\xd8\xff"


def test_labels_stay_inside_the_frame():
    image = np.zeros((120, 160, 3), np.uint8)
    zone = ZoneConfig(id="corner-zone-with-a-long-name", kind="watch_area", polygon=[(0.9, 0.9), (1, 0.9), (1, 1)])
    drawn = draw_zones(image, [zone], fill_alpha=0)
    assert drawn[:, -10:].any() and drawn[-10:].any()  # drawn at the bottom-right, clipped to the frame
