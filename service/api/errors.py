"""Error responses: always JSON ``{"detail": ...}`` naming the field and the reason, never a stack trace.

``detail`` is a one-line message naming what it is about (401, 403, 404, 409; e.g.
``camera_id: no camera 'x' in the configuration``, ``Authorization: unknown API key``,
``case 3: cannot go from 'rejected' to 'confirmed' ...``) or a list of ``{field, msg, type, loc}`` problems
(422, 413, 415). Unexpected exceptions become a generic 500; their trace is logged server-side only.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.cases import CaseError, CaseNotFoundError, InvalidTransitionError

__all__ = ["field_name", "install_error_handlers", "problem", "case_error_to_http"]

log = logging.getLogger("service.api")
_SOURCES = ("body", "query", "header", "path", "cookie")


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "zones", 0, "polygon")`` → ``zones[0].polygon``."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "request"


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    return base + rel if rel.startswith("[") else f"{base}.{rel}"


def problem(status_code: int, field: str, msg: str, type_: str, loc: Sequence[str | int] = ()) -> HTTPException:
    """An HTTPException whose detail is one ``{field, msg, type, loc}`` problem."""
    return HTTPException(status_code, detail=[{"field": field, "msg": msg, "type": type_, "loc": list(loc)}])


def case_error_to_http(exc: CaseError, field: str = "request") -> HTTPException:
    """Case store errors: unknown case 404 (``case_id: no case 42``), invalid transition 409, any other refusal
    422 on `field`."""
    if isinstance(exc, CaseNotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case_id: {exc}")
    if isinstance(exc, InvalidTransitionError):
        return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))
    return problem(422, field, str(exc), "case_error")


def validation_items(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for error in errors:
        loc = [p if isinstance(p, (str, int)) else str(p) for p in error.get("loc", ())]
        path = field_name(loc)
        cause = (error.get("ctx") or {}).get("error")
        sub_problems = getattr(cause, "problems", None)  # service.config._Problems: several reasons at once
        if isinstance(sub_problems, list) and sub_problems:
            for rel, reason in sub_problems:
                items.append({"field": _join(path, rel), "msg": str(reason), "type": error.get("type", "value_error"),
                              "loc": loc})
            continue
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed here; check the spelling)"
        items.append({"field": path, "msg": msg, "type": str(error.get("type", "value_error")), "loc": loc})
    return items


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_exception(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_items(exc.errors())}, status_code=422)


async def _case_error(request: Request, exc: CaseError) -> JSONResponse:
    http = case_error_to_http(exc)
    return JSONResponse({"detail": http.detail}, status_code=http.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error (logged on the server)"},
                        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_exception)  # type: ignore[arg-type]
    app.add_exception_handler(CaseError, _case_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
