"""Settings of the HTTP service (`service.app.create_app`): database, evidence folder, API keys, limits.

Validated like the configuration file: unknown keys are errors, every field is described and bounded.
API keys are kept as SHA-256 hashes only: give ``key_sha256`` (``streetwatch`` never needs the key itself),
or ``key`` for tests and throw-away setups, which is hashed at once and not kept.

Example:
    >>> settings = Settings(database_path="/tmp/sw/cases.db", evidence_dir="/tmp/sw/evidence",
    ...                     api_keys=[{"name": "alice", "role": "reviewer", "key": "s3cret-key-alice"}])
    >>> settings.api_keys[0].key_sha256 == hash_api_key("s3cret-key-alice")
    True
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.config import ID_PATTERN

__all__ = ["ApiKeyConfig", "FlightsSettings", "Open311Config", "OutboxSettings", "Role", "Settings", "WebhookConfig",
           "flights_dir", "hash_api_key"]

Role = Literal["admin", "reviewer", "camera", "pilot"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_api_key(key: str) -> str:
    """The hex SHA-256 under which an API key is stored and compared (keys are long random tokens, so a
    plain hash suffices; no salt or slow hash is needed as it would be for passwords)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyConfig(BaseModel):
    """One API key: who holds it (the name goes into audit trails) and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Holder of the key (reviewer name, camera, tool); "
                                                                 "written into the audit trail.")
    role: Role = Field(description="admin: cameras, config, outbox, flights; reviewer: cases, flight lists and "
                                   "reports; camera: push frames of its own camera only; pilot: upload drone "
                                   "flights and follow its own flights' status, nothing else.")
    camera_id: str | None = Field(None, pattern=ID_PATTERN,
                                  description="The camera a camera key is bound to (required for role camera, "
                                              "not allowed otherwise).")
    key_sha256: str = Field("", description="Hex SHA-256 of the key (see `hash_api_key`).")

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "key" in data:
            data = dict(data)
            key = data.pop("key")
            if not isinstance(key, str) or len(key) < 16:
                raise ValueError("key: must be a string of at least 16 characters")
            if data.get("key_sha256"):
                raise ValueError("give either key or key_sha256, not both")
            data["key_sha256"] = hash_api_key(key)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "ApiKeyConfig":
        if not _HEX64.match(self.key_sha256):
            raise ValueError("key_sha256: must be 64 lower-case hex digits (or give key)")
        if self.role == "camera" and self.camera_id is None:
            raise ValueError("camera_id: required for a camera key")
        if self.role != "camera" and self.camera_id is not None:
            raise ValueError("camera_id: only camera keys are bound to a camera")
        return self


_HTTP_URL = r"^https?://[^\s]+$"


class WebhookConfig(BaseModel):
    """The generic signed webhook (see `service.adapters.webhook`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=_HTTP_URL, max_length=2000, description="Where confirmed cases are POSTed (JSON).")
    secret: str = Field(min_length=16, max_length=500,
                        description="Shared HMAC-SHA256 secret; the signature goes in X-Streetwatch-Signature.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one delivery attempt.")


class Open311Config(BaseModel):
    """An Open311 GeoReport v2 endpoint (see `service.adapters.open311`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(pattern=_HTTP_URL, max_length=2000,
                          description="Base URL of the GeoReport v2 API; requests.json is appended.")
    api_key: str = Field(min_length=1, max_length=500, description="The city's API key.")
    service_codes: dict[str, str] = Field(default_factory=dict,
                                          description="Category code -> the city's service_code (missing: sent "
                                                      "as it is).")
    jurisdiction_id: str | None = Field(None, max_length=200, description="Sent when the endpoint serves several "
                                                                          "jurisdictions.")
    idempotency_attribute: str | None = Field("streetwatch_id", max_length=100,
                                              description="attribute[NAME] carrying the idempotency key (null: not "
                                                          "sent).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one delivery attempt.")


class OutboxSettings(BaseModel):
    """Delivery of confirmed cases to the city's case system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deliver: bool = Field(True, description="Deliver in this process (false: another process runs delivery).")
    webhook: WebhookConfig | None = Field(None, description="The webhook adapter (omit: not used).")
    open311: Open311Config | None = Field(None, description="The Open311 adapter (omit: not used).")
    max_attempts: int = Field(16, ge=1, le=1000, description="Attempts before a row is dead-lettered.")
    base_backoff_s: float = Field(5.0, ge=0, le=3600, description="Back-off cap after the first failure (doubles).")
    max_backoff_s: float = Field(3600.0, ge=0, le=86400, description="Largest back-off cap.")
    lease_s: float = Field(300.0, ge=1, le=86400,
                           description="A row left 'sending' this long by a crashed process is sent again.")
    poll_s: float = Field(1.0, gt=0, le=60, description="Sleep between polls when nothing is due.")

    @model_validator(mode="after")
    def _checks(self) -> "OutboxSettings":
        if self.max_backoff_s < self.base_backoff_s:
            raise ValueError("max_backoff_s: must be at least base_backoff_s")
        for name in ("webhook", "open311"):
            adapter = getattr(self, name)
            if adapter is not None and adapter.timeout_s >= self.lease_s:
                raise ValueError(f"lease_s: must exceed {name}.timeout_s, or a slow attempt is sent twice")
        return self

    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in ("webhook", "open311") if getattr(self, name) is not None)


class FlightsSettings(BaseModel):
    """Drone flight jobs of the service (``/api/v1/flights``, `service.flights.FlightWorker`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path | None = Field(None, description="Folder of the flight jobs: <dir>/<flight_id>/input (the upload) "
                                               "and <dir>/<flight_id>/out (findings, evidence, report); default: "
                                               "'flights' beside the evidence folder.")
    allowed_dirs: tuple[Path, ...] = Field((), max_length=100,
                                           description="Server folders an admin may name as a flight's input "
                                                       "(POST /flights with a path); none: server paths are "
                                                       "refused.")
    max_upload_bytes: int = Field(8 * 1024 ** 3, ge=1024, le=1024 ** 4,
                                  description="Largest accepted upload (the whole multipart body), bytes; larger: "
                                              "413, refused while it streams in.")
    intra_op_threads: int = Field(1, ge=1, le=64,
                                  description="onnxruntime threads of the flight detector (few: the camera "
                                              "workers keep their pace; one flight runs at a time).")
    progress_interval_s: float = Field(1.0, gt=0, le=60,
                                       description="A running flight writes its progress at most this often.")
    poll_s: float = Field(2.0, gt=0, le=60, description="Sleep between looks for a queued flight.")
    report_link_ttl_s: float = Field(3600.0, ge=10, le=7 * 86400,
                                     description="How long a report link made for a browser stays valid.")


class Settings(BaseModel):
    """Everything `create_app` needs; nothing is read from the environment implicitly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_path: Path | None = Field(None, description="SQLite database file (used when database_url is empty).")
    database_url: str = Field("", max_length=2000,
                              description="SQLAlchemy URL (e.g. postgresql+psycopg://...); overrides database_path.")
    evidence_dir: Path = Field(description="Folder of evidence images; only files under it are ever served.")
    config_path: Path | None = Field(None, description="Camera configuration file (YAML or JSON); none: no cameras.")
    api_keys: list[ApiKeyConfig] = Field(default_factory=list, max_length=10000, description="The API keys.")
    max_push_bytes: int = Field(5_000_000, ge=1024, le=100_000_000,
                                description="Largest accepted pushed frame, bytes (larger: 413).")
    max_push_pixels: int = Field(40_000_000, ge=1, le=400_000_000,
                                 description="Largest accepted pushed frame, pixels declared by the JPEG.")
    adapters: tuple[str, ...] = Field((), max_length=20,
                                      description="Outbox adapters a confirmed case is queued for (one row each); "
                                                  "default: those configured under outbox.")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="Delivery to the case system.")
    run_cameras: bool = Field(True, description="Run the camera pipelines in this process.")
    run_flights: bool = Field(True, description="Run queued drone flight jobs in this process (one at a time; one "
                                                "process per database: at start it re-queues every flight left "
                                                "running).")
    flights: FlightsSettings = Field(default_factory=FlightsSettings, description="Drone flight jobs.")
    inference_threads: int = Field(0, ge=0, le=64, description="onnxruntime intra-op threads (0: its default).")
    evidence_interval_s: float = Field(300.0, ge=1, le=86400,
                                       description="While a violation stays open, keep a new evidence frame at "
                                                   "most this often.")
    evidence_base_url: str = Field("", max_length=2000,
                                   description="Public base URL of the API, for evidence links sent to case systems.")
    busy_timeout_s: float = Field(10.0, gt=0, le=600, description="SQLite writer lock wait.")
    file_camera_speed: float = Field(1.0, gt=0, le=100,
                                     description="A video file configured as a camera source loops, played this "
                                                 "many times faster than real time (demos; frame times follow the "
                                                 "file's clock).")

    @model_validator(mode="after")
    def _checks(self) -> "Settings":
        if self.database_path is None and not self.database_url:
            raise ValueError("database_path: set database_path (SQLite file) or database_url")
        if self.outbox.deliver:
            for name in self.adapters:
                if name not in self.outbox.configured():
                    raise ValueError(f"adapters: {name!r} has no outbox.{name} section (or set outbox.deliver: "
                                     f"false when another process delivers)")
        hashes = [k.key_sha256 for k in self.api_keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: the same key is configured twice")
        return self


def flights_dir(settings: Settings) -> Path:
    """The folder of the flight jobs: ``flights.dir``, or ``flights`` beside the evidence folder (absolute)."""
    folder = settings.flights.dir
    if folder is None:
        folder = Path(settings.evidence_dir).parent / "flights"
    return Path(folder).resolve()


def effective_adapters(settings: Settings) -> tuple[str, ...]:
    """The adapters a confirmed case is queued for: ``adapters`` when given, else every configured one."""
    return settings.adapters or settings.outbox.configured()
