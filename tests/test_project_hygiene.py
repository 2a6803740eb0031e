"""The files a user or packager expects beside the code: the licence matches pyproject's, `detector` ships its
``py.typed`` marker, the changelog keeps its format, ruff is configured and run before the tests, and the tree is
lint-clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_licence_file_is_the_licence_pyproject_names():
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_readme_says_the_shipped_weights_are_agpl():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    licences = readme.split("## Data and licences", 1)[1]
    assert "`LICENSE`" in licences and "AGPL-3.0" in licences


def test_detector_ships_its_type_marker():
    assert (REPO_ROOT / "detector" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["detector"]


def test_changelog_keeps_a_changelog_format():
    text = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    dates = headings[1:]
    assert dates and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in dates), dates
    assert dates == sorted(dates, reverse=True)  # newest first
    kinds = set(re.findall(r"^### (.+)$", text, flags=re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds


def test_ruff_is_a_dev_dependency_and_runs_before_pytest():
    assert any(re.match(r"ruff\b", d) for d in PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert PYPROJECT["tool"]["ruff"]["line-length"] == 120
    script = (REPO_ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert 0 <= script.index(".venv/bin/ruff check .") < script.index("-m pytest")


def test_the_tree_is_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
