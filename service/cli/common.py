"""What every job module of the `streetwatch` command line shares: exit codes, the one-line error and the
progress bar.

Errors the user can fix print one line, ``streetwatch: error: ...``, and the command exits with
`EXIT_USER_ERROR`; they never print a stack trace.
"""

from __future__ import annotations

import sys

__all__ = ["EXIT_OK", "EXIT_USER_ERROR", "_error", "_progress", "progress_bar"]

EXIT_OK = 0
EXIT_USER_ERROR = 2


def _error(message: str) -> None:
    print(f"streetwatch: error: {message}", file=sys.stderr, flush=True)


def _progress(iterable, total: int | None, desc: str, enabled: bool, unit: str = "img"):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def progress_bar(quiet: bool, unit: str = "img"):
    """A `datasets.progress.Progress` that draws a tqdm bar on stderr per pass, or passes the items through with
    `quiet` or when stderr is not a terminal (logs and CI stay clean)."""
    enabled = not quiet and sys.stderr.isatty()
    return lambda items, desc: _progress(items, None, desc, enabled, unit)
