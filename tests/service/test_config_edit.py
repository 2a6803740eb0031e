"""Writing the configuration back (service.config_edit) and drawing snapshots (service.snapshot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.config import AppConfig, ConfigError, ZoneConfig, load_config
from service.config_edit import (STAMP_PREFIX, ConfigRejected, _guess_indent, config_document, render_config,
                                 validate_config, write_config_file)
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


def test_a_fresh_yaml_file_is_readable():
    text = render_config(load_config(EXAMPLE), Path("c.yaml"), note="zones xh-caoxi-01 by root")
    assert text.startswith(STAMP_PREFIX + " at ") and "(zones xh-caoxi-01 by root)" in text
    assert "polygon: [[0.05, 0.55], [0.62, 0.5], [0.7, 0.98], [0.02, 0.98]]" in text
    assert "days: [mon-fri]" in text and "漕溪北路" in text


# --- rewriting a hand-written YAML file in place (ruamel.yaml round trip) ------------------------------------

COMMENTED = """\
# Bureau of Xuhui, street cameras.   <- top comment
# Owner: ops desk, ext. 4411
config_version: 1

category_codes:
  stall_occupation: '0504'   # single-quoted on purpose
rules:
  stall_occupation:
    min_dwell_s: 300         # five minutes
cameras:
  # ---- the north gate ----
  - id: gate-n
    source: push             # pushed by the NVR
    timezone: Asia/Shanghai
    zones:
      - id: pavement
        kind: no_vending
        polygon: [[0.10, 0.50], [0.60, 0.50], [0.60, 0.90]]   # kerb to shop fronts
      - id: forecourt
        kind: exclusion
        polygon: [[0.70, 0.50], [0.90, 0.50], [0.90, 0.90]]

  # ---- the south gate (between cameras) ----
  - id: gate-s
    source: rtsp://192.0.2.7/live   # documentation address (RFC 5737)
    timezone: Asia/Shanghai

  # ---- the market ----
  - id: market
    source: push
    timezone: Asia/Shanghai
"""
KEPT = ["# Bureau of Xuhui, street cameras.   <- top comment", "# Owner: ops desk, ext. 4411",
        "stall_occupation: '0504'   # single-quoted on purpose", "min_dwell_s: 300         # five minutes",
        "# ---- the north gate ----", "source: push             # pushed by the NVR",
        "polygon: [[0.10, 0.50], [0.60, 0.50], [0.60, 0.90]]   # kerb to shop fronts",
        "# ---- the south gate (between cameras) ----",
        "source: rtsp://192.0.2.7/live   # documentation address (RFC 5737)"]


def _edited(path: Path, edit) -> tuple[str, AppConfig]:
    """Apply `edit` to the plain document the API edits (`config_document`), validate, write; the new text."""
    raw = config_document(load_config(path))
    edit(raw)
    config = validate_config(raw)
    write_config_file(path, config, note="test edit")
    return path.read_text(encoding="utf-8"), config


def _camera(raw: dict, camera_id: str) -> dict:
    return next(c for c in raw["cameras"] if c["id"] == camera_id)


def _add_zone(raw):
    _camera(raw, "gate-n")["zones"].append({"id": "kiosk", "kind": "no_vending", "name": "报亭",
                                             "polygon": [[0.2, 0.2], [0.3, 0.2], [0.3, 0.3]]})


def _move_zone(raw):
    _camera(raw, "gate-n")["zones"][1]["polygon"] = [[0.65, 0.55], [0.95, 0.55], [0.95, 0.95]]


def _reorder_zones(raw):
    _camera(raw, "gate-n")["zones"].reverse()


def _remove_zone(raw):
    del _camera(raw, "gate-n")["zones"][1]


def _add_camera(raw):
    raw["cameras"].append({"id": "gate-e", "source": "push", "timezone": "Asia/Shanghai",
                           "zones": [{"id": "apron", "kind": "watch_area", "polygon": [[0, 0], [1, 0], [1, 1]]}]})


def _remove_camera(raw):
    raw["cameras"] = [c for c in raw["cameras"] if c["id"] != "market"]


def _remove_camera_in_the_middle(raw):
    raw["cameras"] = [c for c in raw["cameras"] if c["id"] != "gate-s"]


@pytest.mark.parametrize("edit, gone", [
    (_add_zone, []),
    (_move_zone, []),
    (_reorder_zones, []),
    (_remove_zone, []),
    (_add_camera, []),
    (_remove_camera, []),
    # Known limit: ruamel keeps a comment line between two items with the item above it, so removing gate-s
    # leaves "south gate" (held by gate-n) above market and drops "the market" (held by gate-s): not checked.
    (_remove_camera_in_the_middle, ["# ---- the south gate (between cameras) ----",
                                    "source: rtsp://192.0.2.7/live   # documentation address (RFC 5737)"]),
])
def test_comments_quoting_and_order_survive_an_edit(tmp_path, edit, gone):
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    text, config = _edited(path, edit)
    for line in KEPT:
        if edit is _remove_camera_in_the_middle and line.startswith("# ---- the south gate"):
            continue
        assert (line in text) == (line not in gone), line
    assert text.startswith(STAMP_PREFIX) and "(test edit)" in text.splitlines()[0]
    assert load_config(path) == config  # the file still validates, to exactly the edited configuration
    top_keys = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert top_keys == ["config_version", "category_codes", "rules", "cameras"]  # operator's order, no defaults
    assert "bike_misparked" not in text  # model-filled defaults (national category codes) are not written in


def test_an_edit_changes_only_the_lines_it_must(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    text, _ = _edited(path, _move_zone)
    before, after = COMMENTED.splitlines(), text.splitlines()[1:]  # without the stamp line
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and changed == [
        ("        polygon: [[0.70, 0.50], [0.90, 0.50], [0.90, 0.90]]",
         "        polygon: [[0.65, 0.55], [0.95, 0.55], [0.95, 0.95]]")]


def test_added_items_follow_the_file_layout(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    text, _ = _edited(path, _add_camera)
    assert text.endswith("  - id: gate-e\n    source: push\n    timezone: Asia/Shanghai\n    zones:\n"
                         "      - id: apron\n        kind: watch_area\n        polygon: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]\n")


def test_the_stamp_line_is_replaced_not_stacked(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    _edited(path, _add_zone)
    text, _ = _edited(path, _remove_zone)
    assert text.count(STAMP_PREFIX) == 1 and text.splitlines()[1] == COMMENTED.splitlines()[0]


def test_an_unchanged_example_is_rewritten_byte_for_byte(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    write_config_file(path, load_config(path), note="no change")
    assert path.read_text(encoding="utf-8").split("\n", 1)[1] == EXAMPLE.read_text(encoding="utf-8")


@pytest.mark.parametrize("text, indent", [
    ("a:\n  b: 1\nc:\n  - x: 1\n", (2, 4, 2)),
    ("a:\n    b: 1\nc:\n- x: 1\n", (4, 2, 0)),
    ("a:  # note\n    b: 1\nc:   # note\n    -   x: 1\n", (4, 8, 4)),
    ("a: 1\n", (2, 4, 2)),  # nothing nested: the defaults
])
def test_guess_indent(text, indent):
    assert _guess_indent(text) == indent


def test_an_existing_file_that_cannot_be_edited_is_left_alone(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot edit the existing file in place"):
        write_config_file(path, AppConfig(config_version=1))
    assert path.read_text(encoding="utf-8") == "- not a mapping\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


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
