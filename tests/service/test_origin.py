"""Case origins: the record `CaseStore.ingest` takes for a camera or a drone flight, and a camera's conversion."""

from __future__ import annotations

import pytest

from service.config import CameraConfig, camera_origin
from service.origin import CaseLocation, CaseOrigin


def test_a_camera_origin_copies_what_the_cameras_table_keeps():
    camera = CameraConfig(id="cam-7", name="Gate", source="rtsp://10.0.0.5/stream", timezone="Asia/Shanghai",
                          position={"lat_deg": 31.2304, "lon_deg": 121.4737}, address="88 Nanjing Rd",
                          grid_code="310101-001", enabled=False)
    assert camera_origin(camera) == CaseOrigin(
        kind="camera", source_id="cam-7", name="Gate", lat_deg=31.2304, lon_deg=121.4737, address="88 Nanjing Rd",
        grid_code="310101-001", source="rtsp://10.0.0.5/stream", timezone="Asia/Shanghai", enabled=False)
    unplaced = camera_origin(CameraConfig(id="cam-8", source="push", timezone="UTC"))
    assert (unplaced.lat_deg, unplaced.lon_deg, unplaced.location()) == (None, None, CaseLocation())


@pytest.mark.parametrize("grid_code, address, expected", [
    (None, None, CaseLocation(31.195, 121.436, "Xuhui rooftops", "310104-001")),      # the flight's cell
    ("310104-017", None, CaseLocation(31.195, 121.436, "Xuhui rooftops", "310104-017")),
    ("", "12 Tianyaoqiao Rd", CaseLocation(31.195, 121.436, "12 Tianyaoqiao Rd", "")),  # outside every cell
])
def test_a_per_case_location_overrides_the_origins(grid_code, address, expected):
    flight = CaseOrigin.flight("f-1", lat_deg=31.19, lon_deg=121.43, address="Xuhui rooftops",
                               grid_code="310104-001")
    assert flight.location() == CaseLocation(31.19, 121.43, "Xuhui rooftops", "310104-001")
    placed = flight.at(31.195, 121.436, grid_code=grid_code, address=address)
    assert placed.location() == expected
    assert (placed.kind, placed.source_id, placed.lat_deg) == ("flight", "f-1", 31.19)  # the flight is unchanged
    assert placed.label() == "flight f-1" and CaseOrigin.camera("cam-1").label() == "camera cam-1"


@pytest.mark.parametrize("make, message", [
    (lambda: CaseOrigin("drone", "f-1"), "kind must be 'camera' or 'flight', got 'drone'"),
    (lambda: CaseOrigin.flight(""), "flight id must be 1..64 characters"),
    (lambda: CaseOrigin.camera("c" * 65), "camera id must be 1..64 characters"),
    (lambda: CaseOrigin.camera("cam-1", lat_deg=31.2), "cam-1: lat_deg and lon_deg go together"),
    (lambda: CaseOrigin.flight("f-1", lat_deg=91.0, lon_deg=0.0), r"f-1: lat_deg must lie within \[-90, 90\]"),
    (lambda: CaseOrigin.flight("f-1").at(31.2, 181.0), r"case location: lon_deg must lie within \[-180, 180\]"),
    (lambda: CaseOrigin.flight("f-1").at(float("nan"), 121.4), "case location: lat_deg must lie within"),
])
def test_bad_origins_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()
