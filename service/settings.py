"""Settings of the HTTP service (`service.app.create_app`): database, evidence folder, API keys, limits.

Validated like the configuration file: unknown keys are errors, every field is described and bounded.
API keys are kept as SHA-256 hashes only: give ``key_sha256`` (``streetwatch`` never needs the key itself),
or the key itself, which is hashed at once and not kept: ``key`` (tests and throw-away setups), ``key_file`` (a
file holding it, readable by the service's user only) or ``key_env`` (the name of an environment variable holding
it). The outbox secrets take the same three forms (``secret``/``secret_file``/``secret_env`` of the webhook,
``api_key``/``api_key_file``/``api_key_env`` of Open311). The keys printed in ``examples/settings.yaml`` are
refused (`EXAMPLE_KEYS`): everyone can read them.

Example:
    >>> settings = Settings(database_path="/tmp/sw/cases.db", evidence_dir="/tmp/sw/evidence",
    ...                     api_keys=[{"name": "alice", "role": "reviewer", "key": "s3cret-key-alice"}])
    >>> settings.api_keys[0].key_sha256 == hash_api_key("s3cret-key-alice")
    True
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.cluster.settings import EngineSettings
from service.config import ID_PATTERN

__all__ = ["EXAMPLE_KEYS", "load_settings_file", "ApiKeyConfig", "AuthLimitSettings", "FlightsSettings", "HttpSettings", "LogSettings", "MqttConfig", "PrivacySettings",
           "RetentionSettings", "ReviewSettings", "Open311Config", "OutboxSettings", "Role", "Settings",
           "WebhookConfig", "flights_dir", "hash_api_key"]

Role = Literal["admin", "reviewer", "camera", "pilot"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# The keys of examples/settings.yaml (published with the code, so they protect nothing).
EXAMPLE_KEYS = ("change-me-admin-key-0001", "change-me-reviewer-key-0001")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _secret_from_file_or_env(data: Any, name: str) -> Any:
    """`data` with ``NAME_file`` or ``NAME_env`` replaced by ``NAME`` read from that file or variable.

    Raises:
        ValueError: More than one form given, or the file or variable is missing or empty (the message names it).
    """
    if not isinstance(data, dict):
        return data
    forms = [k for k in (name, f"{name}_file", f"{name}_env") if k in data]
    if len(forms) > 1:
        raise ValueError(f"{name}: give one of {', '.join(forms)}, not several")
    if not forms or forms[0] == name:
        return data
    data = dict(data)
    source = data.pop(forms[0])
    if forms[0].endswith("_file"):
        path = Path(str(source)).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{name}_file: cannot read {path}: {exc.strerror or exc}") from None
        if not value:
            raise ValueError(f"{name}_file: {path} is empty")
    else:
        if not isinstance(source, str) or not _ENV_NAME.match(source):
            raise ValueError(f"{name}_env: must be an environment variable name, got {source!r}")
        value = os.environ.get(source, "").strip()
        if not value:
            raise ValueError(f"{name}_env: the environment variable {source} is not set or empty")
    data[name] = value
    return data


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
    key_sha256: str = Field("", description="Hex SHA-256 of the key (see `hash_api_key`); or give the key as "
                                            "`key`, `key_file` (a file holding it) or `key_env` (an environment "
                                            "variable holding it), hashed at once.")

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_key(cls, data: Any) -> Any:
        data = _secret_from_file_or_env(data, "key")
        if isinstance(data, dict) and "key" in data:
            data = dict(data)
            key = data.pop("key")
            if not isinstance(key, str) or len(key) < 16:
                raise ValueError("key: must be a string of at least 16 characters")
            if key in EXAMPLE_KEYS:
                raise ValueError("key: this is the example key of examples/settings.yaml, which everyone can read; "
                                 "make your own (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
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
                        description="Shared HMAC-SHA256 secret; the signature goes in X-Streetwatch-Signature. Or "
                                    "secret_file / secret_env: a file or environment variable holding it.")

    @model_validator(mode="before")
    @classmethod
    def _secret_sources(cls, data: Any) -> Any:
        return _secret_from_file_or_env(data, "secret")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one delivery attempt.")


class Open311Config(BaseModel):
    """An Open311 GeoReport v2 endpoint (see `service.adapters.open311`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(pattern=_HTTP_URL, max_length=2000,
                          description="Base URL of the GeoReport v2 API; requests.json is appended.")
    api_key: str = Field(min_length=1, max_length=500, description="The city's API key. Or api_key_file / "
                                                                   "api_key_env: a file or environment variable "
                                                                   "holding it.")
    service_codes: dict[str, str] = Field(default_factory=dict,
                                          description="Category code -> the city's service_code (missing: sent "
                                                      "as it is).")
    jurisdiction_id: str | None = Field(None, max_length=200, description="Sent when the endpoint serves several "
                                                                          "jurisdictions.")
    idempotency_attribute: str | None = Field("streetwatch_id", max_length=100,
                                              description="attribute[NAME] carrying the idempotency key (null: not "
                                                          "sent).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one delivery attempt.")

    @model_validator(mode="before")
    @classmethod
    def _api_key_sources(cls, data: Any) -> Any:
        return _secret_from_file_or_env(data, "api_key")


class MqttConfig(BaseModel):
    """The MQTT event stream (see `service.adapters.mqtt`): case events and camera availability to a broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, max_length=253, description="The broker's host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="The broker's port (1883 plain, 8883 TLS by convention).")
    topic_prefix: str = Field("streetwatch", max_length=200, pattern=r"^[^/#+\s]+(/[^/#+\s]+)*$",
                              description="First topic levels, e.g. streetwatch/site-a (no wildcards, no leading "
                                          "or trailing /).")
    client_id: str = Field("streetwatch", min_length=1, max_length=200,
                           description="MQTT client id, unique per broker (a second client with it disconnects the "
                                       "first).")
    username: str | None = Field(None, min_length=1, max_length=200, description="Broker user (omit: anonymous).")
    password: str | None = Field(None, min_length=1, max_length=500,
                                 description="Its password. Or password_file / password_env: a file or environment "
                                             "variable holding it.")
    tls: bool = Field(False, description="Connect with TLS (the broker's certificate and host name are checked).")
    ca_file: Path | None = Field(None, description="CA certificates (PEM) for the broker's certificate (omit: the "
                                                   "system's).")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), for brokers that require one.")
    key_file: Path | None = Field(None, description="The client certificate's private key (PEM).")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive; the broker publishes the service's "
                                                            "last will (offline) about 1.5 times this after its "
                                                            "connection went silent.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="How long one delivery waits for the broker's PUBACK "
                                                             "(and for a connection).")
    camera_interval_s: float = Field(5.0, ge=0.1, le=3600,
                                     description="How often camera availability is checked (published on change).")

    @model_validator(mode="before")
    @classmethod
    def _password_sources(cls, data: Any) -> Any:
        return _secret_from_file_or_env(data, "password")

    @model_validator(mode="after")
    def _checks(self) -> "MqttConfig":
        if self.password is not None and self.username is None:
            raise ValueError("password: given without username")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file, key_file: give both or neither")
        if not self.tls and any(f is not None for f in (self.ca_file, self.cert_file, self.key_file)):
            raise ValueError("tls: ca_file, cert_file and key_file need tls: true")
        return self


class OutboxSettings(BaseModel):
    """Delivery of confirmed cases to the city's case system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deliver: bool = Field(True, description="Deliver in this process (false: another process runs delivery).")
    webhook: WebhookConfig | None = Field(None, description="The webhook adapter (omit: not used).")
    open311: Open311Config | None = Field(None, description="The Open311 adapter (omit: not used).")
    mqtt: MqttConfig | None = Field(None, description="Case events and camera availability to an MQTT broker (omit: "
                                                      "none); an event stream, not a case system: never in adapters.")
    max_attempts: int = Field(16, ge=1, le=1000, description="Attempts before a row is dead-lettered.")
    base_backoff_s: float = Field(5.0, ge=0, le=3600, description="Back-off cap after the first failure (doubles).")
    max_backoff_s: float = Field(3600.0, ge=0, le=86400, description="Largest back-off cap.")
    lease_s: float = Field(300.0, ge=1, le=86400,
                           description="A row left 'sending' this long by a crashed process is sent again.")
    poll_s: float = Field(1.0, gt=0, le=60, description="Sleep between polls when nothing is due.")
    reconcile_after_s: float = Field(60.0, ge=1, le=86400,
                                     description="A post whose outcome is unknown (crash or timeout after sending) "
                                                 "is checked at the receiver no earlier than this after it started, "
                                                 "before any new post; must exceed the adapters' timeouts.")
    max_reconcile_attempts: int = Field(8, ge=1, le=1000,
                                        description="Failed queries of the receiver (GET requests.json) before the "
                                                    "row goes needs_check for a person to resolve.")

    @model_validator(mode="after")
    def _checks(self) -> "OutboxSettings":
        if self.max_backoff_s < self.base_backoff_s:
            raise ValueError("max_backoff_s: must be at least base_backoff_s")
        for name in ("webhook", "open311", "mqtt"):
            adapter = getattr(self, name)
            if adapter is not None and adapter.timeout_s >= self.lease_s:
                raise ValueError(f"lease_s: must exceed {name}.timeout_s, or a slow attempt is sent twice")
            if adapter is not None and adapter.timeout_s >= self.reconcile_after_s:
                raise ValueError(f"reconcile_after_s: must exceed {name}.timeout_s, or the receiver is asked about a "
                                 "post it may still be creating")
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


class AuthLimitSettings(BaseModel):
    """Failed-authentication limit per client address (a token bucket; `service.api.ratelimit`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    burst: int = Field(20, ge=1, le=10000, description="Failed attempts (missing or unknown key) an address may "
                                                       "make in a row; then 429 with Retry-After.")
    per_minute: float = Field(10.0, gt=0, le=60000, description="Failed attempts an address regains per minute.")
    max_clients: int = Field(10000, ge=10, le=1_000_000,
                             description="Addresses remembered at once (the oldest is forgotten first).")


class ReviewSettings(BaseModel):
    """The review page's safety net: undo of a reviewer's own decision (`service.undo`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    undo_window_s: float = Field(600.0, ge=0, le=3600,
                                 description="A reviewer may undo their own confirmation or rejection this long "
                                             "after it (0: no undo). A confirmed case's delivery to the case "
                                             "system waits this long, so that an undo in the window finds "
                                             "nothing sent; bounded at an hour so cases are not held back longer.")


class RetentionSettings(BaseModel):
    """How long evidence images of reviewed cases are kept (`service.retention`); the cases themselves stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rejected_days: float | None = Field(30.0, gt=0, le=36500,
                                        description="Delete the evidence of a rejected case this many days after "
                                                    "its last change (null: keep).")
    confirmed_days: float | None = Field(365.0, gt=0, le=36500,
                                         description="Delete the evidence of a confirmed, posted or merged case "
                                                     "this many days after its last change, once no delivery is "
                                                     "pending (null: keep).")
    sweep_interval_s: float = Field(3600.0, ge=10, le=7 * 86400, description="How often the sweep runs.")


class HttpSettings(BaseModel):
    """Connection limits of ``streetwatch serve`` (`service.serving`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_alive_s: float = Field(5.0, gt=0, le=300, description="An idle keep-alive connection is closed after this.")
    header_timeout_s: float = Field(10.0, gt=0, le=300,
                                    description="A connection that has not sent a whole request head (line and "
                                                "headers) this long after connecting, or after its previous "
                                                "response, is closed (slow or half-open clients).")
    max_header_bytes: int = Field(65536, ge=4096, le=1024 ** 2, description="Largest request head (h11 limit).")


class LogSettings(BaseModel):
    """What ``streetwatch serve`` logs (`service.logging_setup`); ``--log-level`` / ``--log-format`` override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Lowest level logged (the audit trail is info).")
    format: Literal["text", "json"] = Field("text", description="Text lines or JSON lines, each with an ISO-8601 "
                                                                "UTC timestamp.")


class PrivacySettings(BaseModel):
    """What is blurred in every evidence image that leaves the service (signed links, the reviewers' evidence
    route, exports; `service.privacy`). The unblurred original stays for admins (``?original=1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blur_people: bool = Field(True, description="Blur the stored boxes of person classes (person_classes).")
    blur_faces: bool = Field(True, description="Blur faces found by OpenCV's frontal-face Haar cascade.")
    blur_plates: bool = Field(True, description="Blur number plates found by OpenCV's plate Haar cascade.")
    method: Literal["gaussian", "pixelate"] = Field("gaussian", description="How regions are blurred.")
    margin_frac: float = Field(0.15, ge=0, le=1, description="Each region is grown by this fraction of its size on "
                                                             "every side before it is blurred.")
    person_classes: tuple[str, ...] = Field(("person",), max_length=20,
                                            description="Class names of stored evidence boxes that are people.")
    # 6, not OpenCV's 3: on 80 real street photos (bicycles-2000 test, scaled to 416 px) the face cascade marked
    # 24 at 3, 5 at 6 and 2 at 10, nearly all on wheel hubs, walls and text, and a false hit blurs the evidence a
    # reviewer needs; people themselves are blurred from the model's person boxes.
    cascade_min_neighbors: int = Field(6, ge=1, le=20,
                                       description="Raw hits a face or plate needs to count (OpenCV's minNeighbors, "
                                                   "whose default is 3). Higher: fewer false hits, which blur parts "
                                                   "of the evidence, and more faces missed.")


class Settings(BaseModel):
    """Everything `create_app` needs; nothing is read from the environment implicitly (keys and secrets only
    from the variables a ``*_env`` field names)."""

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
    max_push_future_s: float = Field(300.0, ge=0, le=86400,
                                     description="A pushed frame stamped more than this ahead of the server clock "
                                                 "is refused (422 naming ts) and does not hold up later frames.")
    max_json_bytes: int = Field(1024 ** 2, ge=1024, le=64 * 1024 ** 2,
                                description="Largest request body of every route but frame pushes (max_push_bytes) "
                                            "and flight uploads (flights.max_upload_bytes); larger: 413, refused "
                                            "before the body is read and before the key is checked.")
    auth_limit: AuthLimitSettings = Field(default_factory=AuthLimitSettings,
                                          description="Failed-authentication limit per client address (429).")
    allow_file_cameras: bool = Field(False, description="Let admins add or change cameras through the API with a "
                                                        "local file or folder as source (file://, a path); off: "
                                                        "only push and stream URLs (rtsp, rtsps, rtmp, http(s)). "
                                                        "The configuration file may name files either way.")
    evidence_min_free_bytes: int = Field(1024 ** 3, ge=0, le=1024 ** 4,
                                         description="Watermark: below this much free space on the evidence disk no "
                                                     "new evidence image is written (the case is still kept) and "
                                                     "health says degraded.")
    review: ReviewSettings = Field(default_factory=ReviewSettings, description="Undo of review decisions.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings,
                                         description="How long evidence of reviewed cases is kept.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="Connection limits of the server.")
    log: LogSettings = Field(default_factory=LogSettings, description="Log level and format of serve.")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings,
                                     description="Blurring of people, faces and plates in evidence that leaves "
                                                 "the service.")
    export_max_cases: int = Field(5000, ge=1, le=100_000,
                                  description="Most cases one bulk export (GET /api/v1/export) may hold; more: 422.")
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
                                   description="Replaced by public_base_url (links that needed a reviewer key); "
                                               "refused when set.")
    public_base_url: str = Field("", max_length=2000, pattern=r"^(https?://[^\s?#]+)?$",
                                 description="The service's address as case systems reach it (e.g. "
                                             "https://streetwatch.city.example), for the signed evidence links "
                                             "/evidence/{case}/{file}?exp=&sig= in Open311 media_url and webhook "
                                             "payloads; required by serve with an open311 or webhook outbox.")
    evidence_link_secret: str = Field("", max_length=500,
                                      description="HMAC key of the evidence links (at least 32 characters); empty: "
                                                  "made on first start into evidence-links.key beside the evidence "
                                                  "folder, owner-only.")
    evidence_link_ttl_s: float = Field(30 * 86400.0, ge=60, le=365 * 86400,
                                       description="How long an evidence link sent to a case system stays valid.")
    busy_timeout_s: float = Field(10.0, gt=0, le=600, description="SQLite writer lock wait.")
    file_camera_speed: float = Field(1.0, gt=0, le=100,
                                     description="A video file configured as a camera source loops, played this "
                                                 "many times faster than real time (demos; frame times follow the "
                                                 "file's clock).")
    engine: Literal["local"] | EngineSettings = Field(
        "local", description="Where the camera pipelines run: 'local' (threads in this process) or "
                             "{ray: {address: ...}} (one Ray actor per camera; needs a PostgreSQL database_url).")

    @model_validator(mode="after")
    def _checks(self) -> "Settings":
        if self.database_path is None and not self.database_url:
            raise ValueError("database_path: set database_path (SQLite file) or database_url")
        if self.engine != "local" and not self.database_url.startswith("postgresql"):
            raise ValueError("engine: the Ray engine needs a PostgreSQL database_url (postgresql+psycopg://...) "
                             "that every node reaches; SQLite is one machine's file")
        if "mqtt" in self.adapters:
            raise ValueError("adapters: 'mqtt' is an event stream, not a case system: configure outbox.mqtt and "
                             "leave it out of adapters (it gets every case's events)")
        if self.outbox.deliver:
            for name in self.adapters:
                if name not in self.outbox.configured():
                    raise ValueError(f"adapters: {name!r} has no outbox.{name} section (or set outbox.deliver: "
                                     f"false when another process delivers)")
        if self.evidence_base_url:
            raise ValueError("evidence_base_url: replaced by public_base_url, the service's public address without "
                             "/api/v1 (evidence links are now signed /evidence/... URLs a city opens without a key)")
        if self.evidence_link_secret and len(self.evidence_link_secret) < 32:
            raise ValueError("evidence_link_secret: must be at least 32 characters (or leave it empty)")
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


def evidence_link_secret_path(settings: Settings) -> Path:
    """Where the evidence link secret is kept when the settings give none: beside the evidence folder."""
    return Path(settings.evidence_dir).resolve().parent / "evidence-links.key"


def public_url_problem(settings: Settings) -> str | None:
    """Why `serve` must not start with these settings' outbox, or None: a case system given evidence needs
    links it can open, so delivering to Open311 or a webhook needs ``public_base_url``."""
    if not settings.outbox.deliver or settings.public_base_url:
        return None
    used = [name for name in effective_adapters(settings) if name in ("open311", "webhook")]
    if not used:
        return None
    return (f"public_base_url: required with the {' and '.join(f'outbox.{n}' for n in used)} adapter "
            "(evidence links for the case system, e.g. https://streetwatch.city.example); set it in the settings")


def effective_adapters(settings: Settings) -> tuple[str, ...]:
    """The adapters a confirmed case is queued for: ``adapters`` when given, else every configured one."""
    return settings.adapters or settings.outbox.configured()


def load_settings_file(path: Path | str) -> "Settings":
    """The settings in a YAML file, or one line naming the file (and field) and why not.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The YAML does not parse, or a field is invalid (the first one is named).
    """
    import yaml
    from pydantic import ValidationError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such settings file")
    try:
        return Settings.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "settings"
        raise ValueError(f"{path}: {field}: {first['msg'].removeprefix('Value error, ')}") from None
