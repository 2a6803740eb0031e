"""How ``streetwatch serve`` (and ``demo``) run the app: uvicorn with connection limits, and logs without keys.

- **Timeouts.** uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that
  never sends a whole request head (a half-open socket, a slow-loris client) is kept forever: uvicorn has no
  header timeout. `HeaderTimeoutH11Protocol` adds one: a connection must send its request line and headers
  within ``settings.http.header_timeout_s`` of connecting (and of its previous response), or it is closed.
  The request head is also capped in size (h11's ``max_incomplete_event_size``).
- **Secrets never in logs.** `RedactSecretsFilter` replaces the value of ``key=`` (and ``api_key=``,
  ``token=``) query parameters and the token of shared report links in log records, so the access log never
  holds a reviewer's key, whatever a browser or script put in an address.

Example:
    >>> server = uvicorn.Server(uvicorn_config(create_app(settings), settings, "127.0.0.1", 8000))  # doctest: +SKIP
    >>> server.run()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings

__all__ = ["HeaderTimeoutH11Protocol", "RedactSecretsFilter", "install_log_redaction", "redact", "uvicorn_config"]

_SECRET_QUERY = re.compile(r"(?i)([?&#](?:key|api_key|apikey|token|access_token)=)[^&\s\"']*")
_SHARED_TOKEN = re.compile(r"(/shared/)[^/\s\"']+")
REDACTED = "[redacted]"
# The loggers whose records may carry request addresses (uvicorn's access and error logs, the service's own).
_LOGGERS = ("uvicorn.access", "uvicorn.error", "service", "streetwatch")


def redact(text: str) -> str:
    """`text` with key-like query values and shared-link tokens replaced.

    Example:
        >>> redact('GET /?key=s3cret-abc&case=4 HTTP/1.1')
        'GET /?key=[redacted]&case=4 HTTP/1.1'
        >>> redact('/api/v1/flights/f-1/shared/AbC123/report.html')
        '/api/v1/flights/f-1/shared/[redacted]/report.html'
    """
    return _SHARED_TOKEN.sub(rf"\1{REDACTED}", _SECRET_QUERY.sub(rf"\1{REDACTED}", text))


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message and string arguments with `redact` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        return True


def _redact_arg(value: Any) -> Any:
    """A log argument with secrets redacted. Not only strings: httpx logs each request with its ``httpx.URL``
    (an Open311 ``api_key=`` in the query); such an argument becomes its redacted text only when it holds a
    secret, so numbers stay numbers for ``%d``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float)) or value is None:
        return value
    text = str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


def install_log_redaction() -> None:
    """Attach one `RedactSecretsFilter` to each logger that may log request addresses (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time (see the module
    docstring). The timeout is read from ``config.header_timeout_s`` (set by `uvicorn_config`)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout_s: float = float(getattr(config, "header_timeout_s", 10.0))
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Only when no request is in progress: a request whose head arrived is the app's to finish.
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a request head arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head must come in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, **options: Any):
    """A ``uvicorn.Config`` for `app` with the settings' connection limits and redacted logs.

    Args:
        app: The ASGI app (`service.app.create_app`).
        settings: Its settings (``settings.http``).
        host: Address to bind.
        port: Port to bind (0: any free one).
        **options: Further ``uvicorn.Config`` options (``log_level``, ``lifespan``, ...); ``log_config``
            defaults to None (logging is set up by `service.logging_setup.configure_logging`).
    """
    import uvicorn

    install_log_redaction()
    # No dictConfig of uvicorn's own: its loggers propagate to the one handler of
    # `service.logging_setup.configure_logging` (timestamps, JSON, redaction for all loggers alike).
    options.setdefault("log_config", None)
    h = settings.http
    config = uvicorn.Config(app, host=host, port=port, http=HeaderTimeoutH11Protocol,
                            timeout_keep_alive=max(1, round(h.keep_alive_s)),
                            h11_max_incomplete_event_size=h.max_header_bytes, **options)
    config.header_timeout_s = h.header_timeout_s  # read by HeaderTimeoutH11Protocol
    return config
