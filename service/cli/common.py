"""What every job module of the `streetwatch` command line shares: exit codes, the one-line error and the
progress bar.

Errors the user can fix print one line, ``streetwatch: error: ...``, and the command exits with
`EXIT_USER_ERROR`; they never print a stack trace.
"""

from __future__ import annotations

import sys

__all__ = ["EXIT_OK", "EXIT_USER_ERROR", "_error", "_progress"]

EXIT_OK = 0
EXIT_USER_ERROR = 2


def _error(message: str) -> None:
    print(f"streetwatch: error: {message}", file=sys.stderr, flush=True)


def _progress(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr, leave=False)
