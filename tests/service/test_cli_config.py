"""`streetwatch config validate` through the real entry point."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.service.test_cli_detect import streetwatch

EXAMPLE = REPO_ROOT / "examples" / "config.yaml"


def test_example_config_is_valid():
    r = streetwatch("config", "validate", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    assert "valid (2 cameras" in r.stdout


def _broken(tmp_path, mutate) -> str:
    cfg = yaml.safe_load(EXAMPLE.read_text())
    mutate(cfg)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return str(path)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["cameras"][0]["zones"][0].update(polygon=[[0, 0], [1, 1], [1, 0], [0, 1]]),
         "cameras[0].zones[0].polygon: self-intersecting"),
        (lambda c: c["cameras"][0]["zones"][0].update(polygon=[[0, 0], [1.5, 0], [1, 1]]),
         "cameras[0].zones[0].polygon"),
        (lambda c: c["cameras"][0].update(sample_fps=0), "cameras[0].sample_fps"),
        (lambda c: c["cameras"][1].update(colour="red"), "cameras[1].colour: unknown key"),
        (lambda c: c["cameras"][1].update(id=c["cameras"][0]["id"]), "duplicate"),
        (lambda c: c["cameras"][0].update(timezone="Mars/Olympus"), "cameras[0].timezone"),
    ],
)
def test_each_problem_names_its_field(tmp_path, mutate, expected):
    r = streetwatch("config", "validate", _broken(tmp_path, mutate))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert expected in r.stderr, r.stderr


def test_unparseable_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("cameras: [unclosed")
    r = streetwatch("config", "validate", str(path))
    assert r.returncode == 2 and "x.yaml" in r.stderr and "Traceback" not in r.stderr
