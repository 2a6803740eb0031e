"""Open311 GeoReport v2 adapter: ``POST {endpoint}/requests.json``, form-encoded.

Fields: ``api_key``, ``service_code`` (the case's category code through `Open311Settings.service_codes`),
``lat``/``long``, ``address_string``, ``description``, ``media_url`` (the first evidence image), optionally
``jurisdiction_id``, and, when `idempotency_attribute` is set, ``attribute[<name>]`` carrying the
idempotency key (GeoReport v2 has no idempotency header; a city that dedupes needs it as an attribute).

The answer is a JSON array: ``[{"service_request_id": "..."}]``, or ``[{"token": "..."}]`` when the city
assigns ids later (either is kept as the remote id); errors are ``[{"code": 403, "description": "..."}]``,
whose code and description go to ``last_error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import httpx

from service.adapters.base import (OutboundMessage, PermanentSendError, SendResult, TransientSendError,
                                   classify_http_status)

__all__ = ["Open311Adapter", "Open311Settings", "build_open311_form", "parse_open311_response"]


@dataclass(frozen=True)
class Open311Settings:
    """Attributes:
        endpoint: Base URL of the GeoReport v2 API (``.../requests.json`` is appended).
        api_key: The city's API key.
        service_codes: Category code → the city's service_code (a code missing here is sent as it is).
        jurisdiction_id: Sent when the endpoint serves several jurisdictions.
        idempotency_attribute: Attribute name carrying the idempotency key (None: not sent).
        timeout_s: Timeout of one attempt.
        name: Adapter name used in outbox rows.
    """

    endpoint: str
    api_key: str
    service_codes: Mapping[str, str] = field(default_factory=dict)
    jurisdiction_id: str | None = None
    idempotency_attribute: str | None = "streetwatch_id"
    timeout_s: float = 10.0
    name: str = "open311"


def build_open311_form(message: OutboundMessage, settings: Open311Settings) -> dict[str, str]:
    """The form fields of a GeoReport v2 service request for one outbox message."""
    payload = message.payload
    category = payload.get("category_code") or ""
    location = payload.get("location") or {}
    form = {"api_key": settings.api_key, "service_code": settings.service_codes.get(category, category),
            "description": str(payload.get("description", ""))[:4000]}
    if location.get("lat_deg") is not None and location.get("lon_deg") is not None:
        form["lat"] = f"{location['lat_deg']:.7f}"
        form["long"] = f"{location['lon_deg']:.7f}"
    if location.get("address"):
        form["address_string"] = str(location["address"])
    images = [e["url"] for e in payload.get("evidence", []) if e.get("kind") == "annotated"] or \
        [e["url"] for e in payload.get("evidence", [])]
    if images:
        form["media_url"] = images[0]
    if settings.jurisdiction_id:
        form["jurisdiction_id"] = settings.jurisdiction_id
    if settings.idempotency_attribute:
        form[f"attribute[{settings.idempotency_attribute}]"] = message.idempotency_key
    return form


def parse_open311_response(status_code: int, data: Any) -> SendResult:
    """Interpret a GeoReport v2 answer; raises Permanent/TransientSendError for errors.

    Args:
        status_code: HTTP status.
        data: The decoded JSON body (None when it was not JSON).
    """
    outcome = classify_http_status(status_code)
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    if outcome == "ok":
        remote = first.get("service_request_id") or first.get("token")
        if remote is None:
            raise PermanentSendError(f"open311: HTTP {status_code} without service_request_id or token: "
                                     f"{str(data)[:300]}")
        return SendResult(remote_id=str(remote))
    if "description" in first:
        detail = f"{first.get('code', status_code)} {first['description']}"
    else:
        detail = str(data)[:300] if data is not None else "(no JSON body)"
    error = f"open311: HTTP {status_code}: {detail}"
    raise (TransientSendError if outcome == "transient" else PermanentSendError)(error)


class Open311Adapter:
    """Sends outbox rows as GeoReport v2 service requests. Call `close()` when done."""

    def __init__(self, settings: Open311Settings, client: httpx.Client | None = None):
        self.settings = settings
        self.name = settings.name
        self._client = client or httpx.Client(timeout=settings.timeout_s)

    @property
    def requests_url(self) -> str:
        return f"{self.settings.endpoint.rstrip('/')}/requests.json"

    def send(self, message: OutboundMessage) -> SendResult:
        form = build_open311_form(message, self.settings)
        try:
            response = self._client.post(self.requests_url, data=form)
        except httpx.TransportError as exc:
            raise TransientSendError(f"open311 {self.requests_url}: {type(exc).__name__}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        return parse_open311_response(response.status_code, data)

    def close(self) -> None:
        self._client.close()
