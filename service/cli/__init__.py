"""`streetwatch` command line, one module per job.

* `service.cli.detect`: ``detect``, ``models``, ``eval``, ``config validate``
* `service.cli.train`: ``train``, ``release``, ``quantize``, ``retrain``
* `service.cli.serve`: ``run``, ``serve``, ``demo``
* `service.cli.dataset`: ``dataset ACTION``
* `service.cli.drone`: ``drone`` (a flight: video + SRT, or geotagged stills)
* `service.cli.backup`: ``backup``, ``restore`` (case database and evidence)
* `service.cli.export`: ``export`` (cases with blurred evidence as a zip)

Each job module exposes ``add_parsers(subparsers)`` and its ``cmd_*`` functions; `build_parser` asks every
module in `JOBS` to add its commands, so a new job (``streetwatch drone``) is one module plus one entry there.
Each command imports what it needs when it runs, so ``streetwatch detect`` never loads the web stack and a
broken optional dependency cannot break unrelated commands.

Errors the user can fix (a bad file, a bad card, a bad config) print one line, ``streetwatch: error: ...``,
and exit with status 2; they never print a stack trace.

Example:
    >>> from service.cli import main
    >>> main(["config", "validate", "cameras.yaml"])  # doctest: +SKIP
    cameras.yaml: valid (2 cameras, 3 zones)
    0
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, Sequence

from service.cli import backup, dataset, detect, drone, export, serve, train
from service.cli.common import EXIT_OK, EXIT_USER_ERROR, _error

__all__ = ["EXIT_OK", "EXIT_USER_ERROR", "JOBS", "build_parser", "main"]

JOBS = (detect, train, serve, drone, dataset, backup, export)
"""The job modules, in the order their commands are listed by ``streetwatch --help``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``streetwatch`` parser: one subcommand per command of every job module in `JOBS`."""
    parser = argparse.ArgumentParser(
        prog="streetwatch",
        description="Street-order violation detection: cameras and drone footage to reviewed cases.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for job in JOBS:
        job.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``streetwatch`` command (`argv` without the program name; None: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, 2 for an error the user can fix (printed as one line), 130 when interrupted.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from detector.errors import StreetwatchError

    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "conf", None) is not None and not 0.0 <= args.conf <= 1.0:
        _error(f"--conf must lie within [0, 1], got {args.conf}")
        return EXIT_USER_ERROR
    try:
        return func(args)
    except (StreetwatchError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # ValueError/FileNotFoundError here come from argument values the user gave (paths, KEY=VALUE).
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
