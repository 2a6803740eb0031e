"""Grid cells (单元网格) shared by street cameras and drone flights: a camera with a position gets the code of the
cell it stands in from the configuration's grid layer (service.pipeline.camera_case_origin), and `config validate`
names a broken layer file, its feature and the reason."""

from __future__ import annotations

import json

import pytest

from service.config import parse_config
from service.pipeline import camera_case_origin, grid_code_at, validate_config_file

LAT0, LON0 = 22.5431, 114.0579
D = 0.001  # about 100 m


def square(lon0: float, lat0: float, size: float) -> list:
    return [[[lon0, lat0], [lon0 + size, lat0], [lon0 + size, lat0 + size], [lon0, lat0 + size], [lon0, lat0]]]


def write_grid(path, cells) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": code, "properties": {"code": code},
         "geometry": {"type": "Polygon", "coordinates": ring}} for code, ring in cells]}))


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.geojson"
    write_grid(path, [("440304001001", square(LON0, LAT0, D)), ("440304001002", square(LON0 + D, LAT0, D))])
    return path


def config_with(grid_file, camera_extra: dict):
    camera = {"id": "cam-1", "source": "push", "timezone": "Asia/Shanghai", **camera_extra}
    return parse_config({"config_version": 1, "grid": {"path": str(grid_file)}, "cameras": [camera]})


@pytest.mark.parametrize("camera_extra, expected", [
    ({"position": {"lat_deg": LAT0 + D / 2, "lon_deg": LON0 + D / 2}}, "440304001001"),
    ({"position": {"lat_deg": LAT0 + D / 2, "lon_deg": LON0 + 1.5 * D}}, "440304001002"),
    ({"position": {"lat_deg": LAT0 - D, "lon_deg": LON0}}, ""),  # outside every cell
    ({"position": {"lat_deg": LAT0 + D / 2, "lon_deg": LON0 + D / 2}, "grid_code": "OWN-7"}, "OWN-7"),  # its own
    ({}, ""),  # no position: no cell
])
def test_camera_cases_take_the_grid_code_of_their_position(grid_file, camera_extra, expected):
    config = config_with(grid_file, camera_extra)
    assert camera_case_origin(config, config.cameras[0]).grid_code == expected


def test_grid_code_at_without_a_grid_is_none(grid_file):
    assert grid_code_at(None, LAT0, LON0) is None
    config = config_with(grid_file, {})
    assert grid_code_at(config.grid, LAT0 + D / 2, LON0 + D / 2) == "440304001001"


def test_a_grid_file_edited_while_running_is_read_again(grid_file):
    config = config_with(grid_file, {})
    assert grid_code_at(config.grid, LAT0 + D / 2, LON0 + D / 2) == "440304001001"
    write_grid(grid_file, [("NEW-1", square(LON0, LAT0, D))])
    assert grid_code_at(config.grid, LAT0 + D / 2, LON0 + D / 2) == "NEW-1"


def test_config_validate_names_a_broken_layer(tmp_path):
    bad = tmp_path / "grid.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "G-1", "properties": {"code": "1"},
         "geometry": {"type": "Polygon", "coordinates": [[[LON0, LAT0], [LON0 + D, LAT0], [LON0, LAT0 + D]]]}}]}))
    config_path = tmp_path / "config.yaml"
    config_path.write_text("config_version: 1\ngrid: {path: grid.geojson}\n"
                           "drone:\n  layers:\n    bike_parking: [missing.geojson]\n")
    problems = validate_config_file(config_path)
    assert any(p.startswith("grid.path: ") and "G-1" in p and "ring" in p for p in problems), problems
    assert any(p.startswith("drone.layers.bike_parking[0]: ") and "missing.geojson" in p for p in problems), problems
