"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; roles admin, reviewer, camera and pilot.

A pilot key may upload drone flights and read the status of the flights it uploaded (owned by the key's holder
name), nothing else; the flight routes check the ownership (`service.api.routers.flights`).

Keys are held as SHA-256 hashes only. A presented key is hashed and compared with every configured hash with
`hmac.compare_digest` (no early exit), so neither the comparison nor the lookup leaks how much of a key
matched. No key or an unknown key: 401; a known key of the wrong role (or another camera's key): 403. Failed
attempts are limited per client address (`service.api.ratelimit`): past the limit, 429 with ``Retry-After``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Callable, Iterable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.settings import ApiKeyConfig, hash_api_key

__all__ = ["KeyRing", "Principal", "require_roles"]

_bearer = HTTPBearer(auto_error=False, description="An API key as bearer token.")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's holder name (audit actor), role, and bound camera for camera keys."""

    name: str
    role: str
    camera_id: str | None = None


class KeyRing:
    """The configured keys, by hash."""

    def __init__(self, keys: Iterable[ApiKeyConfig]):
        self._keys = [(k.key_sha256.encode("ascii"), k) for k in keys]

    def lookup(self, presented: str) -> Principal | None:
        digest = hash_api_key(presented).encode("ascii")
        found: ApiKeyConfig | None = None
        for stored, key in self._keys:
            if hmac.compare_digest(stored, digest):
                found = key
        return None if found is None else Principal(found.name, found.role, found.camera_id)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request,
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                 api_key: Annotated[str | None, Depends(_api_key_header)]) -> Principal:
    """The caller's principal; 401 without a key or with an unknown one, 429 after too many of those."""
    services = request.app.state.services
    limiter = services.auth_limiter
    address = request.client.host if request.client is not None else "unknown"
    wait_s = limiter.retry_after_s(address) if limiter is not None else None
    if wait_s is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail=f"Authorization: too many failed attempts from {address}; try again in "
                                   f"{wait_s:.0f} s", headers={"Retry-After": f"{wait_s:.0f}"})
    presented = bearer.credentials if bearer is not None else api_key
    principal = services.keys.lookup(presented) if presented else None
    if principal is None:
        if limiter is not None:
            limiter.failed(address)
        if not presented:
            raise _unauthorized("Authorization: missing API key (send 'Authorization: Bearer <key>' or "
                                "'X-API-Key')")
        raise _unauthorized("Authorization: unknown API key")
    return principal


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only keys of `roles`; others get 403."""

    def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"Authorization: role {principal.role!r} may not do this "
                                       f"(needs {' or '.join(roles)})")
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return dependency
