"""One logging set-up for ``serve``, ``run``, ``demo`` and ``drone``: every logger to one handler.

Before this, ``serve`` left logging to uvicorn, which configures only its own loggers: ``streetwatch.audit``
and the service's INFO lines went nowhere and warnings had no timestamp. `configure_logging` puts one
stderr handler on the root logger and lets uvicorn's loggers (``uvicorn``, ``uvicorn.error``,
``uvicorn.access``) propagate to it, so the access log, the audit trail and the workers' lines share one
format:

- ``text``: ``2026-06-01T08:00:00.123Z INFO streetwatch.audit: config update camera=cam-1 by=root ...``
- ``json``: one object per line, ``{"ts": "...Z", "level": "INFO", "logger": "...", "message": "..."}``
  (plus ``exc_info`` with the traceback when there is one), for log shippers.

Timestamps are ISO-8601 in UTC with milliseconds, whatever the machine's time zone. The handler carries
`service.serving.RedactSecretsFilter`: a filter on a *handler* sees the records of every logger that
propagates to it (a filter on a logger sees only records logged on that very logger), so no key in an address
reaches the log, whichever logger wrote it. Pass ``log_config=None`` to uvicorn (``service.serving.
uvicorn_config`` does) so that it does not install handlers of its own.

Example:
    >>> configure_logging("info", "json")  # doctest: +SKIP
    >>> logging.getLogger("streetwatch.audit").info("case 4 confirmed by alice")  # doctest: +SKIP
    {"ts": "2026-06-01T08:00:00.123Z", "level": "INFO", "logger": "streetwatch.audit", "message": "case 4 ..."}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Literal, TextIO

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonLinesFormatter", "UtcTextFormatter", "add_logging_arguments",
           "configure_logging", "utc_iso"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS: tuple[str, ...] = ("text", "json")
# uvicorn's loggers: their handlers (from uvicorn's own dictConfig, if one ran) are removed and they propagate.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def utc_iso(created_s: float) -> str:
    """A record's creation time (seconds since the epoch) as ISO-8601 UTC with milliseconds.

    Example:
        >>> utc_iso(0.25)
        '1970-01-01T00:00:00.250Z'
    """
    return datetime.fromtimestamp(created_s, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class UtcTextFormatter(logging.Formatter):
    """``<ISO-8601 UTC> <LEVEL> <logger>: <message>``, then the traceback if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (stdlib)
        return utc_iso(record.created)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": utc_iso(record.created), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # ensure_ascii=False: zh-CN messages stay readable; default=str: odd arguments never break a line.
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StreetwatchHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (a class of its own, so a second call replaces it).

    Without a stream of its own it writes to whatever ``sys.stderr`` is when a record comes, not the one of
    the moment it was made (a command run in-process, by a test, must not leave a handler on a closed stream).
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._follows_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follows_stderr:
            self.stream = sys.stderr  # emit runs under the handler's lock (Handler.handle)
        super().emit(record)


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records at or above `level` to one handler on `stream` (default: stderr).

    Idempotent: a second call replaces the handler of the first. Handlers others put on the root logger
    (pytest's, say) are left alone.

    Args:
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
        fmt: ``text`` or ``json`` (JSON lines).
        stream: Where lines go.

    Returns:
        The installed handler.

    Raises:
        ValueError: An unknown level or format (the message names it and the choices).
    """
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: choose one of {', '.join(LOG_LEVELS)}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(LOG_FORMATS)}")
    # Imported here: the command line builds its parsers with this module, and service.serving loads uvicorn.
    from service.serving import RedactSecretsFilter

    numeric = logging.getLevelName(level.upper())
    handler = _StreetwatchHandler(stream)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else UtcTextFormatter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StreetwatchHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the root's level decides
    for name in ("streetwatch", "service"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    # Seven INFO lines at every start about alembic's own plugins say nothing to an operator (its "Running
    # upgrade" lines stay).
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.NOTSET if numeric <= logging.DEBUG
                                                            else logging.WARNING)
    return handler


def add_logging_arguments(parser, default_level: str | None = None) -> None:
    """Add ``--log-level`` and ``--log-format`` to an argparse parser (None defaults: the command decides,
    e.g. ``serve`` from its settings)."""
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default_level,
                        help="lowest level logged to stderr" + (f" (default: {default_level})" if default_level
                                                                 else " (default: the settings' log.level, info)"))
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                        help="text lines (default) or JSON lines, each with an ISO-8601 UTC timestamp")
