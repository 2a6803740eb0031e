"""Open311 GeoReport v2 adapter: ``POST {endpoint}/requests.json``, form-encoded.

Fields: ``api_key``, ``service_code`` (the case's category code through `Open311Settings.service_codes`),
``lat``/``long``, ``address_string``, ``description``, ``media_url`` (the first evidence image), optionally
``jurisdiction_id``, and, when `idempotency_attribute` is set, ``attribute[<name>]`` carrying the
idempotency key (GeoReport v2 has no idempotency header; a city that dedupes needs it as an attribute).

The answer is a JSON array: ``[{"service_request_id": "..."}]``, or ``[{"token": "..."}]`` when the city
assigns ids later (either is kept as the remote id); errors are ``[{"code": 403, "description": "..."}]``,
whose code and description go to ``last_error``.

GeoReport v2 has no idempotency key, and a city's system creates a second request when a post is repeated. So
every post carries its streetwatch id (the outbox row's idempotency key) where a GeoReport v2 receiver keeps it
and shows it again: at the end of ``description`` as ``[streetwatch_id: <id>]`` (and as the attribute, which
receivers store but ``GET requests.json`` does not return). `Open311Adapter.reconcile` asks the receiver
whether a post whose outcome is unknown arrived: ``GET requests.json?service_code=…&start_date=…&end_date=…``
(the spec's filters; the range may not span more than 90 days) and looks for that marker in the descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import re
from datetime import datetime, timedelta, timezone

import httpx

from service.adapters.base import (OutboundMessage, OutcomeUnknownError, PermanentSendError, ReconcileError,
                                   SendResult, TransientSendError, classify_http_status)

__all__ = ["Open311Adapter", "Open311Settings", "build_open311_form", "find_posted_request", "parse_open311_response",
           "streetwatch_marker"]

MAX_DESCRIPTION_CHARS = 4000
# The GeoReport v2 GET requests.json date range "may not span more than 90 days" (the spec's start_date).
MAX_QUERY_SPAN = timedelta(days=90)
# Receivers stamp requested_datetime with their own clock: the query window is widened by this on both sides.
CLOCK_SKEW = timedelta(minutes=10)


def streetwatch_marker(streetwatch_id: str) -> str:
    """The text that ends the ``description`` of every post: ``[streetwatch_id: <id>]``."""
    return f"[streetwatch_id: {streetwatch_id}]"


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
    location = payload.get("location") or {}
    marker = " " + streetwatch_marker(message.idempotency_key)
    # The marker goes last and survives the length limit: reconciliation finds the post by it.
    text = str(payload.get("description", ""))[:MAX_DESCRIPTION_CHARS - len(marker)]
    form = {"api_key": settings.api_key, "service_code": service_code(message, settings),
            "description": text + marker}
    if location.get("lat_deg") is not None and location.get("lon_deg") is not None:
        form["lat"] = f"{location['lat_deg']:.7f}"
        form["long"] = f"{location['lon_deg']:.7f}"
    if location.get("address"):
        form["address_string"] = str(location["address"])
    # Only public links (signed URLs added at send time, `service.evidence_links`): never a server path.
    linked = [e for e in payload.get("evidence", []) if str(e.get("url") or "").startswith(("http://", "https://"))]
    images = [e["url"] for e in linked if e.get("kind") == "annotated"] or [e["url"] for e in linked]
    if images:
        form["media_url"] = images[0]
    if settings.jurisdiction_id:
        form["jurisdiction_id"] = settings.jurisdiction_id
    if settings.idempotency_attribute:
        form[f"attribute[{settings.idempotency_attribute}]"] = message.idempotency_key
    return form


def service_code(message: OutboundMessage, settings: Open311Settings) -> str:
    """The city's service_code for the message's category code (the code itself when it is not mapped)."""
    category = message.payload.get("category_code") or ""
    return settings.service_codes.get(category, category)


def find_posted_request(data: Any, streetwatch_id: str) -> SendResult | None:
    """The receiver's request carrying `streetwatch_id` in a ``GET requests.json`` answer (None: not there).

    Raises:
        ReconcileError: The answer is not a GeoReport v2 list of requests.
    """
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise ReconcileError(f"open311: GET requests.json answered {str(data)[:200]!r}, not a list of requests")
    # The id must be followed by "]": streetwatch-1-open311 must not match streetwatch-12-open311's marker.
    pattern = re.compile(re.escape(streetwatch_marker(streetwatch_id)))
    found = [item for item in data if pattern.search(str(item.get("description") or ""))]
    if not found:
        return None
    remote = found[0].get("service_request_id") or found[0].get("token")
    return SendResult(remote_id=None if remote is None else str(remote))


def _w3c(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # nothing was sent
            raise TransientSendError(f"open311 {self.requests_url}: {type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:  # sent, perhaps received: the outbox reconciles before posting again
            raise OutcomeUnknownError(f"open311 {self.requests_url}: {type(exc).__name__}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        return parse_open311_response(response.status_code, data)

    def reconcile(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Whether the receiver holds a request posted for `message` at or after `since` (see the module doc).

        Raises:
            ReconcileError: The query failed (transport error, non-2xx answer, not a list of requests).
        """
        now = datetime.now(timezone.utc)
        start = max(since - CLOCK_SKEW, now + CLOCK_SKEW - MAX_QUERY_SPAN)
        params = {"service_code": service_code(message, self.settings), "start_date": _w3c(start),
                  "end_date": _w3c(now + CLOCK_SKEW)}
        if self.settings.jurisdiction_id:
            params["jurisdiction_id"] = self.settings.jurisdiction_id
        try:
            response = self._client.get(self.requests_url, params=params)
        except httpx.TransportError as exc:
            raise ReconcileError(f"open311 GET {self.requests_url}: {type(exc).__name__}: {exc}") from exc
        if classify_http_status(response.status_code) != "ok":
            raise ReconcileError(f"open311 GET {self.requests_url}: HTTP {response.status_code}: "
                                 f"{response.text[:200]}")
        try:
            data = response.json()
        except ValueError:
            raise ReconcileError(f"open311 GET {self.requests_url}: the answer is not JSON") from None
        return find_posted_request(data, message.idempotency_key)

    def close(self) -> None:
        self._client.close()
