"""Where the project's third-party data folder is: one rule for the library, the tools, benchmarks and tests."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "default_shared_dir", "existing_shared_dir"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_shared_dir() -> Path:
    """$STREETWATCH_SHARED, else ``../shared`` beside the repository (whether or not it exists)."""
    env = os.environ.get("STREETWATCH_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def existing_shared_dir() -> Path | None:
    """`default_shared_dir()` when it is a folder, else None (a fresh machine elsewhere has none)."""
    path = default_shared_dir()
    return path if path.is_dir() else None
