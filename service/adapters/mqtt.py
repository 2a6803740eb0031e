"""MQTT adapter: case events and camera availability to the operator's broker (Frigate-style), through the outbox.

Topics (``<prefix>`` is `MqttSettings.topic_prefix`, default ``streetwatch``; several sites sharing one broker
use ``streetwatch/<site>``):

- ``<prefix>/cases/<case_id>/<event>``: one message per case event, QoS 1, not retained. ``<event>`` is one of
  `CASE_EVENTS`: ``new`` (a case was created), ``updated`` (anything else changed: later sightings, more
  evidence, a class change, a merge, a rejection, an undo, a failed delivery; the body's ``status`` says which),
  ``confirmed`` (a reviewer confirmed it), ``posted`` (every case system has it). Subscribe to
  ``<prefix>/cases/+/confirmed`` for confirmations only, ``<prefix>/cases/#`` for everything.
- ``<prefix>/cameras/<camera_id>/availability``: ``online`` or ``offline``, QoS 1, **retained** (a new subscriber
  learns every camera's state at once).
- ``<prefix>/availability``: the service itself, ``online`` (retained, at every connect) or ``offline``: the
  broker publishes it as the service's last will when its connection is lost without a goodbye (crash, power
  cut, network), and the service publishes it at a clean stop.

The body of a case event is compact UTF-8 JSON: the adapter-neutral case payload that the webhook and Open311
adapters get (`service.cases.build_case_payload`, with signed evidence links when ``public_base_url`` is set),
plus ``event``, ``status`` (the case's status after the event), ``at`` (UTC ISO 8601 of the change) and
``event_id``.

Delivery: every case event is one outbox row (adapter ``mqtt``), delivered by `service.outbox.OutboxWorker` with
its bookkeeping (claims, leases, back-off, ``dead`` after ``max_attempts``, the manual retry): a row is ``sent``
only after the broker's PUBACK. **MQTT QoS 1 is at-least-once**: a post whose PUBACK never came is posted again
(`MqttAdapter.reconcile` says "post again", the broker cannot be asked), and paho resends an unacknowledged
message after a reconnect, so a consumer may see an event twice. ``event_id`` is the same on every attempt of an
event and different for every event: **exactly once at the consumer is per ``event_id``** (keep the ids of the
last day, say, and drop a repeat). Retried rows may overtake one another: order by ``at``, not by arrival.

Where the events come from (`install_case_events`): SQLAlchemy session hooks on the service's session factory
watch every transaction that creates or changes a case (ingest, review, undo, the outbox marking it posted) and
add the event's outbox row **in that same transaction** (a transactional outbox, like confirmation's delivery
rows): an event is queued if and only if its change is committed. Nothing in `service.cases` calls this module.
An ``updated`` event still waiting (never attempted) takes the newest state instead of queuing another, so a
broker that is down does not pile up one row per sighting. Event rows are not deliveries to a case system: they
never make a case ``posted`` or ``post_failed`` and do not stop an undo (`service.adapters.base.EVENT_ADAPTERS`).

Camera availability is a state, not an event: it goes straight to the broker, retained (`CameraAvailability`);
the broker keeps the last value and a repeat is harmless, so it needs no outbox row (an outbox row needs a case).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping

import paho.mqtt.client as mqtt
from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.adapters.base import (MQTT_ADAPTER, OutboundMessage, OutcomeUnknownError, SendResult,
                                   TransientSendError)
from service.cases import CasePublic, EvidencePublic, build_case_payload, utc_now
from service.db.models import Case, Evidence, OutboxMessage

if TYPE_CHECKING:
    from service.settings import MqttConfig

__all__ = ["CASE_EVENTS", "CameraAvailability", "CaseEvent", "CaseEventRecorder", "MqttAdapter", "MqttSettings",
           "build_mqtt_body", "camera_availability_topic", "camera_online", "case_event", "case_event_key",
           "case_topic", "install_case_events", "make_client", "mqtt_settings", "service_availability_topic"]

CaseEvent = Literal["new", "updated", "confirmed", "posted"]
CASE_EVENTS: tuple[CaseEvent, ...] = ("new", "updated", "confirmed", "posted")
ONLINE, OFFLINE = "online", "offline"
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class MqttSettings:
    """Attributes:
        host: The broker's host name or address.
        port: Its port (1883 plain, 8883 TLS by convention).
        topic_prefix: First topic levels (no wildcards, no leading or trailing ``/``).
        client_id: The MQTT client id (unique per broker: a second client with the same id disconnects the first).
        username: Broker user (None: anonymous).
        password: Its password.
        tls: Connect with TLS.
        ca_file: CA certificates (PEM) the broker's certificate is checked against (None: the system's).
        cert_file: Client certificate (PEM) for brokers that require one, with `key_file`.
        key_file: Its private key (PEM).
        keepalive_s: MQTT keep-alive; the broker publishes the last will about 1.5 times this after the
            service's connection went silent.
        timeout_s: How long one delivery waits for the broker's PUBACK (and for a connection).
        name: Adapter name used in outbox rows (`service.adapters.base.MQTT_ADAPTER`).
    """

    host: str
    port: int = 1883
    topic_prefix: str = "streetwatch"
    client_id: str = "streetwatch"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: int = 30
    timeout_s: float = 10.0
    name: str = MQTT_ADAPTER


def mqtt_settings(config: "MqttConfig") -> MqttSettings:
    """The adapter's settings from the validated ``outbox.mqtt`` section (password already read from its file or
    variable)."""
    def path(p: Any) -> str | None:
        return None if p is None else str(p)
    return MqttSettings(host=config.host, port=config.port, topic_prefix=config.topic_prefix,
                        client_id=config.client_id, username=config.username, password=config.password,
                        tls=config.tls, ca_file=path(config.ca_file), cert_file=path(config.cert_file),
                        key_file=path(config.key_file), keepalive_s=config.keepalive_s, timeout_s=config.timeout_s)


# --- pure logic -----------------------------------------------------------------------------------------

def case_topic(prefix: str, case_id: int, event: str) -> str:
    """Example:
        >>> case_topic("streetwatch/site-a", 12, "confirmed")
        'streetwatch/site-a/cases/12/confirmed'
    """
    return f"{prefix}/cases/{case_id}/{event}"


def camera_availability_topic(prefix: str, camera_id: str) -> str:
    """Example:
        >>> camera_availability_topic("streetwatch", "gate-1")
        'streetwatch/cameras/gate-1/availability'
    """
    return f"{prefix}/cameras/{camera_id}/availability"


def service_availability_topic(prefix: str) -> str:
    """The service's own availability (retained ``online``; ``offline`` is its last will)."""
    return f"{prefix}/availability"


def case_event(created: bool, status_before: str | None, status_after: str) -> CaseEvent:
    """The event a committed change of a case is published as.

    Example:
        >>> case_event(False, "pending", "confirmed"), case_event(False, "pending", "rejected")
        ('confirmed', 'updated')
    """
    if created:
        return "new"
    if status_before != status_after and status_after in ("confirmed", "posted"):
        return status_after  # type: ignore[return-value]  # narrowed by the membership test
    return "updated"


def case_event_key(case_id: int, adapter: str, event: str, unique: str) -> str:
    """The outbox row's idempotency key, sent as ``event_id``: one per event, the same on every attempt.

    It starts like a delivery row's key (`service.cases.idempotency_key`) so that the outbox lists both alike.
    """
    return f"streetwatch-{case_id}-{adapter}-{event}-{unique}"


def build_mqtt_body(message: OutboundMessage) -> bytes:
    """The exact bytes published: the row's payload plus ``event_id``, compact UTF-8 JSON."""
    body = {**message.payload, "event_id": message.idempotency_key}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def camera_online(state: str, connected: bool | None) -> bool:
    """Whether a camera worker counts as online: running, and its source connected (None: not reported)."""
    return state == "running" and connected is not False


# --- the adapter ----------------------------------------------------------------------------------------

class MqttAdapter:
    """Publishes outbox rows (case events) and availability to one broker over one paho client.

    The connection is made on first use (`start`), kept by paho's network thread, which reconnects with
    back-off after a loss. Call `close()` at shutdown: it publishes the service ``offline`` and disconnects.

    Args:
        settings: Broker, credentials, topics.
        client: A paho client to use instead of a new one (tests).
    """

    def __init__(self, settings: MqttSettings, client: mqtt.Client | None = None):
        self.settings = settings
        self.name = settings.name
        self._client = client or make_client(settings)
        self._connected = threading.Event()
        self._problem = "not connected yet"
        self._lock = threading.Lock()
        self._started = False
        self._started_at = 0.0
        self.connections = 0  # successful connects so far (a retained value is published again after each)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    def start(self) -> "MqttAdapter":
        """Connect in the background (idempotent); `send` waits up to ``timeout_s`` for the connection."""
        with self._lock:
            if not self._started:
                self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
                self._client.loop_start()
                self._started = True
                self._started_at = time.monotonic()
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def send(self, message: OutboundMessage) -> SendResult:
        """Publish one case event with QoS 1 and return once the broker acknowledged it (PUBACK).

        Raises:
            TransientSendError: Not connected (nothing was published; the row is retried with back-off). Right
                after `start` it waits up to ``timeout_s`` for the connection, later it fails at once.
            OutcomeUnknownError: Published, but no PUBACK within ``timeout_s`` (the broker may have it; the
                outbox posts again and the consumer deduplicates by ``event_id``).
        """
        event = str(message.payload.get("event") or "updated")
        topic = case_topic(self.settings.topic_prefix, message.case_id, event)
        self._publish(topic, build_mqtt_body(message), retain=False)
        return SendResult(remote_id=message.idempotency_key)

    def reconcile(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Always "post again": a broker cannot be asked what it received, and consumers deduplicate by
        ``event_id`` (see the module doc)."""
        return None

    def publish_availability(self, camera_id: str, online: bool) -> None:
        """Publish a camera's ``online``/``offline``, retained, QoS 1, waiting for the PUBACK.

        Raises:
            TransientSendError, OutcomeUnknownError: As `send` (the caller publishes again later).
        """
        topic = camera_availability_topic(self.settings.topic_prefix, camera_id)
        self._publish(topic, (ONLINE if online else OFFLINE).encode("ascii"), retain=True)

    def close(self, timeout_s: float = 2.0) -> None:
        """Publish the service ``offline`` (when connected) and disconnect; the last will is not sent then."""
        with self._lock:
            started, self._started = self._started, False
        if not started:
            return
        if self._connected.is_set():
            info = self._client.publish(service_availability_topic(self.settings.topic_prefix), OFFLINE, qos=1,
                                        retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):  # lost meanwhile: the broker sends the last will instead
                pass
        self._client.disconnect()
        self._client.loop_stop()

    # internals

    def _publish(self, topic: str, body: bytes, retain: bool) -> None:
        where = f"mqtt {self.settings.host}:{self.settings.port}"
        self.start()
        # Wait for the connection only in the first timeout_s after start: later, a broker that is down fails each
        # row at once, so that one outbox round does not wait timeout_s per event row (and the webhook's rows
        # behind them).
        grace_s = self.settings.timeout_s - (time.monotonic() - self._started_at)
        if not self._connected.wait(max(0.0, grace_s)):
            raise TransientSendError(f"{where}: {self._problem}")
        info = self._client.publish(topic, body, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise TransientSendError(f"{where}: {topic}: paho's outgoing queue is full")
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise TransientSendError(f"{where}: {topic}: {mqtt.error_string(info.rc)}")
        # MQTT_ERR_NO_CONN: the connection dropped just now; paho keeps the message and sends it after the
        # reconnect, so it may still arrive: its outcome is unknown, not failed.
        try:
            info.wait_for_publish(self.settings.timeout_s)
        except RuntimeError:
            pass  # rc says NO_CONN; is_published() below is False
        if not info.is_published():
            raise OutcomeUnknownError(f"{where}: {topic}: no PUBACK within {self.settings.timeout_s:g} s "
                                      f"({self._problem if not self.connected else 'connected'})")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        if getattr(reason_code, "is_failure", False):
            # Refused (bad credentials, not authorised): kept as the rows' error; paho tries again later, and a
            # fixed password file or ACL on the broker takes effect without a restart of the service.
            self._problem = f"broker refused the connection: {reason_code}"
            self._connected.clear()
            return
        self._problem = "connected"
        self.connections += 1
        self._connected.set()
        # Retained: whoever subscribes later sees the service online (the last will replaces it when lost).
        client.publish(service_availability_topic(self.settings.topic_prefix), ONLINE, qos=1, retain=True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any = None) -> None:
        self._connected.clear()
        if not self._problem.startswith("broker refused"):  # the refusal is the reason worth keeping
            self._problem = f"disconnected: {reason_code}"


def make_client(settings: MqttSettings) -> mqtt.Client:
    """A paho client (MQTT 3.1.1, clean session) with the settings' credentials, TLS and last will."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                         protocol=mqtt.MQTTv311, clean_session=True)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        # paho's defaults: the newest TLS, the certificate and the host name checked.
        client.tls_set(ca_certs=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file)
    client.will_set(service_availability_topic(settings.topic_prefix), OFFLINE, qos=1, retain=True)
    # Short first retries after a broker restart, capped so a long outage is not hammered.
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


# --- case events: outbox rows written in the transaction of the change ----------------------------------

_RECORDED = "streetwatch_mqtt_case_events"  # session.info key: case id -> events seen in this transaction


class CaseEventRecorder:
    """Adds a case event's outbox row to the transaction that made the change (see `install_case_events`).

    Args:
        adapter: The event rows' adapter name.
        clock: Time of the event (``at``) and the row's first due time.
    """

    def __init__(self, adapter: str = MQTT_ADAPTER, clock: Clock = utc_now):
        self.adapter = adapter
        self._clock = clock

    def after_flush(self, session: Session, flush_context: Any) -> None:
        """Note which cases this flush created or changed (the instances still show their pre-flush history)."""
        recorded: dict[int, list[CaseEvent]] = session.info.setdefault(_RECORDED, {})
        for obj in session.new:
            if isinstance(obj, Case):
                _note(recorded, obj.id, "new")
        for obj in session.dirty:
            if isinstance(obj, Case) and session.is_modified(obj, include_collections=False):
                history = inspect(obj).attrs.status.history
                before = history.deleted[0] if history.deleted else obj.status
                _note(recorded, obj.id, case_event(False, before, obj.status))
        for obj in session.new:
            if isinstance(obj, Evidence):  # evidence added to a case flushed earlier in this transaction
                recorded.setdefault(obj.case_id, [])

    def before_commit(self, session: Session) -> None:
        """Queue one outbox row per recorded event, in the committing transaction."""
        session.flush()  # the transaction's unflushed changes (a status set just before commit) are noted first
        recorded: dict[int, list[CaseEvent]] = session.info.pop(_RECORDED, {})
        now = self._clock()
        for case_id, events in sorted(recorded.items()):
            case = session.get(Case, case_id)
            if case is None:
                continue
            for event in _publishable(events):
                self._queue(session, case, event, now)

    def forget(self, session: Session, *args: Any) -> None:
        """Drop the events of a transaction that rolled back (nothing of it happened)."""
        session.info.pop(_RECORDED, None)

    def _queue(self, session: Session, case: Case, event: CaseEvent, now: datetime) -> None:
        payload = {**build_case_payload(_case_public(session, case)), "event": event, "status": case.status,
                   "at": now.isoformat()}
        if event == "updated":
            waiting = session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.case_id == case.id, OutboxMessage.adapter == self.adapter,
                OutboxMessage.status == "pending", OutboxMessage.attempts == 0,
                OutboxMessage.idempotency_key.like(case_event_key(case.id, self.adapter, "updated", "%")))
                .order_by(OutboxMessage.id.desc()).limit(1))
            if waiting is not None:
                # Re-checked by the UPDATE: a worker that claimed the row meanwhile has made it `sending`,
                # then a new row is queued instead (the claimed one keeps the state it was sent with).
                done = session.execute(update(OutboxMessage).where(
                    OutboxMessage.id == waiting, OutboxMessage.status == "pending", OutboxMessage.attempts == 0)
                    .values(payload=payload, updated_at=now).execution_options(synchronize_session=False))
                if done.rowcount == 1:
                    return
        session.add(OutboxMessage(
            case_id=case.id, adapter=self.adapter,
            idempotency_key=case_event_key(case.id, self.adapter, event, uuid.uuid4().hex),
            payload=payload, status="pending", attempts=0, next_attempt_at=now, created_at=now, updated_at=now))


def _note(recorded: dict[int, list[CaseEvent]], case_id: int, event: CaseEvent) -> None:
    events = recorded.setdefault(case_id, [])
    if event not in events:
        events.append(event)


def _publishable(events: Iterable[CaseEvent]) -> list[CaseEvent]:
    """One transaction's events of a case: ``updated`` only when nothing more telling happened (a new case's
    evidence, flushed after it, is part of ``new``); an evidence-only change is ``updated``."""
    events = list(events)
    telling = [e for e in events if e != "updated"]
    return telling or ["updated"]


def _case_public(session: Session, case: Case) -> CasePublic:
    evidence = session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.id))
    data = CasePublic.model_validate(case, from_attributes=True).model_dump(exclude={"evidence"})
    return CasePublic(**data, evidence=[EvidencePublic.model_validate(e) for e in evidence])


def install_case_events(session_factory: sessionmaker[Session], adapter: str = MQTT_ADAPTER,
                        clock: Clock = utc_now) -> CaseEventRecorder:
    """Make every transaction of `session_factory`'s sessions that creates or changes a case queue its event.

    Only sessions of this factory are watched: a process that writes cases through another factory (``streetwatch
    run`` writes no cases; ``serve`` builds one factory) must install it too.
    """
    recorder = CaseEventRecorder(adapter, clock)
    sa_event.listen(session_factory, "after_flush", recorder.after_flush)
    sa_event.listen(session_factory, "before_commit", recorder.before_commit)
    sa_event.listen(session_factory, "after_rollback", recorder.forget)
    return recorder


# --- camera availability --------------------------------------------------------------------------------

class CameraAvailability:
    """A thread that publishes each camera's availability (retained) when it changes, and again after every
    reconnect of the broker connection (a restarted broker without persistence has forgotten retained values).

    Args:
        adapter: The connection.
        cameras: Returns the current ``camera id -> online`` (see `camera_online`).
        interval_s: How often `cameras` is read.
    """

    def __init__(self, adapter: MqttAdapter, cameras: Callable[[], Mapping[str, bool]], interval_s: float = 5.0):
        self.adapter = adapter
        self._cameras = cameras
        self.interval_s = interval_s
        self._published: dict[str, bool] = {}
        self._connection: int | None = None  # the adapter's connection the values were published over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # publications that failed (tried again on the next round)

    def start(self) -> "CameraAvailability":
        self._thread = threading.Thread(target=self._run, name="mqtt-cameras", daemon=True)
        self._thread.start()
        return self

    def publish_changes(self) -> int:
        """Publish what changed since the last call (everything after a reconnect); returns how many were."""
        if self.adapter.connections != self._connection:
            self._published.clear()
        current = dict(self._cameras())
        # A camera removed from the configuration is offline, not silently kept online by the retained value.
        current.update({camera_id: False for camera_id in self._published if camera_id not in current})
        n = 0
        for camera_id, online in sorted(current.items()):
            if self._published.get(camera_id) == online:
                continue
            try:
                self.adapter.publish_availability(camera_id, online)
            except TransientSendError:  # OutcomeUnknownError too: published again next round
                self.failures += 1
                continue
            self._published[camera_id] = online
            n += 1
        self._connection = self.adapter.connections
        return n

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.publish_changes()
            self._stop.wait(self.interval_s)
