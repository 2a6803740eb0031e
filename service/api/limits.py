"""Request body limits per route, enforced before the body is read and before the key is checked (413).

A pure ASGI middleware, outside every route and dependency: a declared ``Content-Length`` over the route's limit
is answered 413 at once, without reading a byte of the body (and without looking at the key, so an anonymous
client cannot make the service buffer hundreds of megabytes before its 401). A body without a length (chunked)
is counted as the application reads it; the read that passes the limit raises `BodyTooLarge`, which this
middleware turns into the same 413 (the routes that stream, frame pushes and flight uploads, never hold more
than the limit). Limits are declared once per route group (`RouteLimit`) in `service.app`; every other route
gets the small default (JSON bodies).

Example:
    >>> limits = BodyLimits(default_bytes=1 << 20,
    ...                     routes=(RouteLimit("POST", r"^/api/v1/cameras/[^/]+/frames$", 5_000_000),))
    >>> limits.for_request("POST", "/api/v1/cameras/gate-3/frames"), limits.for_request("POST", "/api/v1/cases")
    (5000000, 1048576)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, MutableMapping

from fastapi import HTTPException

__all__ = ["BodyLimitMiddleware", "BodyLimits", "BodyTooLarge", "RouteLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """The body being read passed its route's limit: a 413 naming ``body``.

    An HTTPException, so that FastAPI's body parsing passes it on (it turns other errors into a 400) and the
    app's error handler answers it; the middleware answers it itself when it escapes the app.
    """

    def __init__(self, max_bytes: int, declared: int | None = None):
        self.max_bytes = max_bytes
        self.declared = declared
        what = f"{declared} bytes" if declared is not None else "body"
        self.message = f"{what} exceeds the limit of {max_bytes} bytes"
        super().__init__(413, detail=[{"field": "body", "msg": self.message, "type": "too_large", "loc": ["body"]}])

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RouteLimit:
    """The body limit of the routes whose method is `method` and whose path matches `path_pattern`."""

    method: str
    path_pattern: str
    max_bytes: int
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.path_pattern))

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self._regex.match(path) is not None


@dataclass(frozen=True)
class BodyLimits:
    """Limits of route groups (first match wins) and the default of every other route."""

    default_bytes: int
    routes: tuple[RouteLimit, ...] = ()

    def for_request(self, method: str, path: str) -> int:
        return next((r.max_bytes for r in self.routes if r.matches(method, path)), self.default_bytes)


def _problem(message: str) -> bytes:
    return json.dumps({"detail": [{"field": "body", "msg": message, "type": "too_large", "loc": ["body"]}]}).encode()


class BodyLimitMiddleware:
    """ASGI middleware enforcing `limits` (see the module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]], limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limits.for_request(scope["method"], scope["path"])
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isdigit():
                await self._answer(send, 400, json.dumps({"detail": [{
                    "field": "Content-Length", "msg": f"not a byte count: {text[:40]!r}", "type": "bad_header",
                    "loc": ["header", "content-length"]}]}).encode())
                return
            if int(text) > max_bytes:
                await self._answer(send, 413, _problem(str(BodyTooLarge(max_bytes, int(text)))))
                return
        received = 0
        started = False
        exceeded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if exceeded:
                    # The app answered the 413 itself (BodyTooLarge is an HTTPException): the connection must
                    # still close, or the server drains the rest of the oversized body to keep it alive.
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                    message = {**message, "headers": headers + [(b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:  # a response is under way; nothing better to do than drop the connection
                raise
            await self._answer(send, 413, _problem(str(exc)))

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        # Connection: close — the unread rest of the body must not be taken for the next request.
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
