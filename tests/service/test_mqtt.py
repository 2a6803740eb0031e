"""MQTT adapter: case events through the outbox to a real mosquitto broker, camera availability, last will."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as paho
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from service.adapters.base import (OutboundMessage, OutcomeUnknownError, PermanentSendError, SendResult,
                                   TransientSendError)
from service.adapters.mqtt import (CameraAvailability, MqttAdapter, MqttSettings, build_mqtt_body,
                                   camera_availability_topic, camera_online, case_event, case_topic,
                                   install_case_events, mqtt_settings, service_availability_topic)
from service.cases import CaseError, CaseSettings, CaseStore
from service.db.models import OutboxMessage
from service.outbox import OutboxWorker
from service.settings import MqttConfig, Settings
from tests.service.test_cases import FakeClock, make_origin, make_violation, session_factory  # noqa: F401

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "sw-test"


# --- a real broker and a subscriber ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on a loopback port, from a tiny conf file; stop and start again on the same port."""

    def __init__(self, folder: Path, extra_conf: str = ""):
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; scripts/install_system_deps.sh)")
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # `user root`: a broker started by root would otherwise drop to the user mosquitto, who cannot read
        # tmp_path; for any other user the option does nothing.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\npersistence false\nuser root\n"
                             f"{extra_conf or 'allow_anonymous true'}\n", encoding="utf-8")
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Broker":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto does not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any]:
        return json.loads(self.payload)


class Subscriber:
    """A paho client subscribed to ``PREFIX/#`` (again after every reconnect), collecting what arrives."""

    def __init__(self, port: int, topic: str = f"{PREFIX}/#"):
        self.messages: list[Received] = []
        self.subscribed = threading.Event()
        self._cond = threading.Condition()
        self._topic = topic
        self.client = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-sub-{random.randrange(10**9)}")
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self._topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscriber did not connect"

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, match: Callable[[Received], bool], n: int, timeout_s: float = 10.0) -> list[Received]:
        """The matching messages once there are `n`, and after a short quiet period (a duplicate would show)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len([m for m in self.messages if match(m)]) < n and time.monotonic() < deadline:
                self._cond.wait(0.1)
        time.sleep(0.3)
        with self._cond:
            return [m for m in self.messages if match(m)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker):
    s = Subscriber(broker.port)
    yield s
    s.close()


def adapter_for(port: int, **overrides: Any) -> MqttAdapter:
    values: dict[str, Any] = dict(host="127.0.0.1", port=port, topic_prefix=PREFIX,
                                  client_id=f"sw-{random.randrange(10**9)}", timeout_s=5.0)
    return MqttAdapter(MqttSettings(**{**values, **overrides}))


@pytest.fixture
def adapters():
    made: list[MqttAdapter] = []

    def make(port: int, **overrides: Any) -> MqttAdapter:
        made.append(adapter_for(port, **overrides))
        return made[-1]
    yield make
    for a in made:
        a.close()


class CaseSystem:
    """The case system (open311 here) in process: accepts or refuses deliveries."""

    name = "open311"

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with

    def send(self, message: OutboundMessage) -> SendResult:
        if self.fail_with is not None:
            raise self.fail_with
        return SendResult(remote_id=f"R-{message.case_id}")


def rows(session_factory, adapter: str | None = None) -> list[OutboxMessage]:  # noqa: F811
    with session_factory() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if adapter is not None:
            query = query.where(OutboxMessage.adapter == adapter)
        return list(s.scalars(query))


def drain(worker: OutboxWorker, rounds: int = 5) -> None:
    for _ in range(rounds):
        if worker.run_once() == 0:
            return


def is_case_event(m: Received) -> bool:
    return "/cases/" in m.topic


# --- pure logic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("created, before, after, event", [
    (True, None, "pending", "new"),
    (False, "pending", "pending", "updated"),
    (False, "pending", "confirmed", "confirmed"),
    (False, "confirmed", "posted", "posted"),
    (False, "post_failed", "posted", "posted"),
    (False, "pending", "rejected", "updated"),
    (False, "confirmed", "pending", "updated"),  # an undo
    (False, "confirmed", "post_failed", "updated"),
    (False, "pending", "merged", "updated"),
    (False, "confirmed", "confirmed", "updated"),  # a merge into a confirmed case
])
def test_case_event(created, before, after, event):
    assert case_event(created, before, after) == event


@pytest.mark.parametrize("state, connected, online", [
    ("running", True, True), ("running", None, True), ("running", False, False), ("restarting", True, False),
    ("starting", None, False), ("disabled", None, False), ("stopped", False, False),
])
def test_camera_online(state, connected, online):
    assert camera_online(state, connected) is online


def test_topics_and_body():
    assert case_topic("streetwatch/site-a", 7, "posted") == "streetwatch/site-a/cases/7/posted"
    assert camera_availability_topic("sw", "gate-1") == "sw/cameras/gate-1/availability"
    assert service_availability_topic("sw") == "sw/availability"
    message = OutboundMessage(outbox_id=1, case_id=7, idempotency_key="streetwatch-7-mqtt-new-ab",
                              payload={"case_id": 7, "event": "new", "description": "占道经营"}, attempt=1)
    body = build_mqtt_body(message)
    assert json.loads(body) == {"case_id": 7, "event": "new", "description": "占道经营",
                                "event_id": "streetwatch-7-mqtt-new-ab"}
    assert "占道经营".encode("utf-8") in body  # UTF-8, not \\u escapes


# --- settings --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("section, error", [
    ({"host": "b", "password": "secret"}, "password: given without username"),
    ({"host": "b", "tls": True, "cert_file": "/c.pem"}, "cert_file, key_file: give both or neither"),
    ({"host": "b", "ca_file": "/ca.pem"}, "need tls: true"),
    ({"host": "b", "topic_prefix": "sw/#"}, "topic_prefix"),
    ({"host": "b", "topic_prefix": "/sw"}, "topic_prefix"),
    ({"host": "b", "username": "u", "password_env": "SW_TEST_MQTT_UNSET"}, "SW_TEST_MQTT_UNSET is not set"),
    ({"host": "b", "password": "x", "password_env": "X"}, "give one of password, password_env"),
    ({"host": "b", "timeout_s": 400}, "timeout_s"),
    ({"host": ""}, "host"),
])
def test_mqtt_config_refuses(section, error):
    with pytest.raises(ValidationError, match=error.replace("(", r"\(")):
        MqttConfig.model_validate(section)


def test_mqtt_config_reads_the_password_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SW_TEST_MQTT_PASSWORD", "from-env")
    assert MqttConfig(host="b", username="u", password_env="SW_TEST_MQTT_PASSWORD").password == "from-env"
    (tmp_path / "pw").write_text("from-file\n", encoding="utf-8")
    config = MqttConfig(host="b", username="u", password_file=str(tmp_path / "pw"))
    assert mqtt_settings(config).password == "from-file"


@pytest.mark.parametrize("outbox, adapters, error", [
    ({"mqtt": {"host": "b"}}, ["mqtt"], "'mqtt' is an event stream"),
    ({"mqtt": {"host": "b", "timeout_s": 100}}, [], "reconcile_after_s: must exceed mqtt.timeout_s"),
])
def test_settings_refuse(tmp_path, outbox, adapters, error):
    with pytest.raises(ValidationError, match=error):
        Settings(database_path=tmp_path / "c.db", evidence_dir=tmp_path / "e", outbox=outbox, adapters=adapters)


# --- the adapter without a broker: what a missing PUBACK or connection means -----------------------------

class FakeInfo:
    def __init__(self, rc: int, published: bool):
        self.rc, self._published = rc, published

    def wait_for_publish(self, timeout: float | None = None) -> None:
        if self.rc > 0:
            raise RuntimeError("not connected")

    def is_published(self) -> bool:
        return self._published


class FakeClient:
    """Just what MqttAdapter calls on a paho client; connects at once unless told not to."""

    def __init__(self, connects: bool = True, rc: int = paho.MQTT_ERR_SUCCESS, acks: bool = True):
        self.connects, self.rc, self.acks = connects, rc, acks
        self.published: list[tuple[str, bytes, int, bool]] = []
        self.on_connect = self.on_disconnect = None

    def connect_async(self, host: str, port: int, keepalive: int) -> None:
        pass

    def loop_start(self) -> None:
        if self.connects:
            self.on_connect(self, None, None, paho.ReasonCode(paho.PacketTypes.CONNACK, identifier=0), None)

    def publish(self, topic: str, payload: Any, qos: int, retain: bool) -> FakeInfo:
        self.published.append((topic, payload, qos, retain))
        return FakeInfo(self.rc, self.acks and self.rc == paho.MQTT_ERR_SUCCESS)

    def disconnect(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass


def message(case_id: int = 3, event: str = "confirmed") -> OutboundMessage:
    return OutboundMessage(outbox_id=1, case_id=case_id, idempotency_key=f"streetwatch-{case_id}-mqtt-{event}-x",
                           payload={"case_id": case_id, "event": event}, attempt=1)


@pytest.mark.parametrize("client, error", [
    (FakeClient(connects=False), TransientSendError),  # nothing published
    (FakeClient(acks=False), OutcomeUnknownError),  # published, no PUBACK: the broker may have it
    (FakeClient(rc=paho.MQTT_ERR_NO_CONN, acks=False), OutcomeUnknownError),  # dropped: paho resends it
    (FakeClient(rc=paho.MQTT_ERR_QUEUE_SIZE), TransientSendError),  # refused by paho: nothing will leave
])
def test_send_is_sent_only_on_puback(client, error):
    adapter = MqttAdapter(MqttSettings(host="b", topic_prefix="sw", timeout_s=0.05), client=client)
    with pytest.raises(error) as exc:
        adapter.send(message())
    assert "mqtt b:1883" in str(exc.value)
    assert not isinstance(exc.value, PermanentSendError)
    assert adapter.reconcile(message(), since=None) is None  # "post again": consumers dedupe by event_id


def test_send_publishes_qos1_on_the_case_topic():
    client = FakeClient()
    adapter = MqttAdapter(MqttSettings(host="b", topic_prefix="sw"), client=client)
    result = adapter.send(message(9, "posted"))
    assert result.remote_id == "streetwatch-9-mqtt-posted-x"
    # The retained "online" of the service at connect, then the event: QoS 1, not retained.
    assert [(t, q, r) for t, _, q, r in client.published] == [("sw/availability", 1, True),
                                                              ("sw/cases/9/posted", 1, False)]


# --- event rows: written with the change, never a delivery ---------------------------------------------

def test_event_rows_follow_the_transaction(session_factory):  # noqa: F811
    clock = FakeClock()
    install_case_events(session_factory, clock=clock)
    store = CaseStore(session_factory, CaseSettings(adapters=("open311",)), clock=clock)
    case = store.ingest(make_violation("v1"), origin=make_origin())
    for last_s in (400, 500, 600):  # three sightings while nothing is sent: one waiting "updated" row
        store.ingest(make_violation("v1", event="updated", last_s=last_s), origin=make_origin())
    events = rows(session_factory, "mqtt")
    assert [r.payload["event"] for r in events] == ["new", "updated"]
    assert events[1].payload["dwell_s"] == 600.0 and events[1].payload["status"] == "pending"
    # A row a worker has claimed keeps what it is sending; the next change queues a new row.
    with session_factory.begin() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.id == events[1].id).values(status="sending", attempts=1))
    store.ingest(make_violation("v1", event="updated", last_s=700), origin=make_origin())
    events = rows(session_factory, "mqtt")
    assert [(r.payload["event"], r.payload["dwell_s"]) for r in events] == [("new", 300.0), ("updated", 600.0),
                                                                             ("updated", 700.0)]
    # A transaction that fails writes no event.
    with pytest.raises(CaseError):
        store.ingest(make_violation("v2", zone_id="z2"), evidence_paths={"bogus": "x.jpg"}, origin=make_origin())
    assert len(rows(session_factory, "mqtt")) == 3
    # Keys are unique per event and start like the case's delivery keys.
    assert all(r.idempotency_key.startswith(f"streetwatch-{case.id}-mqtt-") for r in events)
    assert len({r.idempotency_key for r in events}) == 3


class EventSink:
    """Stands in for the broker: accepts or refuses event rows."""

    name = "mqtt"

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with
        self.events: list[str] = []

    def send(self, message: OutboundMessage) -> SendResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(message.payload["event"])
        return SendResult(remote_id=None)


def test_event_rows_neither_block_undo_nor_posting(session_factory):  # noqa: F811
    clock = FakeClock()
    install_case_events(session_factory, clock=clock)
    store = CaseStore(session_factory, CaseSettings(adapters=("open311",), undo_window_s=600), clock=clock)
    sink = EventSink()
    worker = OutboxWorker(session_factory, {"open311": CaseSystem(), "mqtt": sink}, clock=clock,
                          rng=random.Random(0))
    case = store.ingest(make_violation("v1"), origin=make_origin())
    store.confirm(case.id, "alice")
    drain(worker)  # new and confirmed are sent; the delivery waits for the undo window
    assert sink.events == ["new", "confirmed"]
    assert store.undo(case.id, "alice").status == "pending"  # sent events do not count as a delivery
    drain(worker)
    assert sink.events == ["new", "confirmed", "updated"]
    # Events that fail for good do not fail the case, and the case is posted once the case system has it.
    sink.fail_with = PermanentSendError("broker says no")
    store.confirm(case.id, "alice")
    clock.advance(601)
    drain(worker)
    assert store.get(case.id).status == "posted"
    assert [(r.payload["event"], r.status) for r in rows(session_factory, "mqtt")] == [
        ("new", "sent"), ("confirmed", "sent"), ("updated", "sent"), ("confirmed", "dead"), ("posted", "dead")]
    assert [r.status for r in rows(session_factory, "open311")] == ["sent"]


# --- against a real broker ------------------------------------------------------------------------------

def test_case_events_arrive_once_with_their_json(session_factory, broker, subscriber, adapters):  # noqa: F811
    clock = FakeClock()
    install_case_events(session_factory, clock=clock)
    store = CaseStore(session_factory, CaseSettings(adapters=("open311",)), clock=clock)
    mqtt = adapters(broker.port).start()
    worker = OutboxWorker(session_factory, {"open311": CaseSystem(), "mqtt": mqtt}, clock=clock,
                          rng=random.Random(0))
    case = store.ingest(make_violation("v1"), origin=make_origin())
    store.ingest(make_violation("v1", event="updated", last_s=420), origin=make_origin())
    store.confirm(case.id, "alice")
    drain(worker)  # new, updated, confirmed, the case system's row; then posted
    got = subscriber.wait_for(is_case_event, 4)
    assert [m.topic for m in got] == [f"{PREFIX}/cases/{case.id}/{e}" for e in ("new", "updated", "confirmed",
                                                                                "posted")]
    bodies = [m.json() for m in got]
    assert [(b["event"], b["status"]) for b in bodies] == [("new", "pending"), ("updated", "pending"),
                                                          ("confirmed", "confirmed"), ("posted", "posted")]
    assert [b["dwell_s"] for b in bodies] == [300.0, 420.0, 420.0, 420.0]
    assert all(b["case_id"] == case.id and b["kind"] == "stall_occupation" and b["at"] for b in bodies)
    assert not any(m.retain for m in got)
    sent = rows(session_factory, "mqtt")
    assert [b["event_id"] for b in bodies] == [r.idempotency_key for r in sent]
    assert {r.status for r in sent} == {"sent"} and store.get(case.id).status == "posted"
    # The service announced itself, retained.
    online = [m for m in subscriber.messages if m.topic == f"{PREFIX}/availability"]
    assert online and online[-1].payload == b"online"


def test_broker_down_the_row_waits_and_arrives_once_when_it_is_back(session_factory, broker, subscriber,  # noqa: F811
                                                                   adapters):
    clock = FakeClock()
    install_case_events(session_factory, clock=clock)
    store = CaseStore(session_factory, CaseSettings(), clock=clock)
    mqtt = adapters(broker.port, timeout_s=1.0).start()
    worker = OutboxWorker(session_factory, {"mqtt": mqtt}, clock=clock, rng=random.Random(0))
    assert subscriber.subscribed.wait(5)
    broker.stop()
    deadline = time.monotonic() + 10
    while mqtt.connected and time.monotonic() < deadline:  # paho has seen the loss: nothing is half-sent
        time.sleep(0.02)
    case = store.ingest(make_violation("v1"), origin=make_origin())
    worker.run_once()
    [row] = rows(session_factory, "mqtt")
    assert (row.status, row.attempts) == ("pending", 1)
    assert f"mqtt 127.0.0.1:{broker.port}" in row.last_error
    broker.start()  # the same port; paho reconnects both clients (1 s back-off)
    deadline = time.monotonic() + 15
    while not (mqtt.connected and subscriber.subscribed.is_set()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mqtt.connected and subscriber.subscribed.is_set()
    clock.advance(3600)  # past the back-off
    drain(worker)
    [row] = rows(session_factory, "mqtt")
    assert (row.status, row.attempts) == ("sent", 2)
    got = subscriber.wait_for(is_case_event, 1)
    assert [m.topic for m in got] == [f"{PREFIX}/cases/{case.id}/new"]
    assert got[0].json()["event_id"] == row.idempotency_key


def test_camera_availability_is_retained(broker, adapters):
    mqtt = adapters(broker.port).start()
    states = {"gate-1": True, "gate-2": False}
    cameras = CameraAvailability(mqtt, lambda: states)
    assert cameras.publish_changes() == 2
    assert cameras.publish_changes() == 0  # nothing changed: nothing published
    states["gate-1"] = False
    del states["gate-2"]
    states["gate-3"] = True
    assert cameras.publish_changes() == 2  # gate-1 offline, gate-3 online; gate-2 stays offline
    late = Subscriber(broker.port, f"{PREFIX}/cameras/+/availability")  # subscribes afterwards: retained values
    try:
        got = late.wait_for(lambda m: True, 3)
    finally:
        late.close()
    assert sorted((m.topic.split("/")[2], m.payload, m.retain) for m in got) == [
        ("gate-1", b"offline", True), ("gate-2", b"offline", True), ("gate-3", b"online", True)]


LAST_WILL_CLIENT = """
import sys, time
from service.adapters.mqtt import MqttAdapter, MqttSettings
adapter = MqttAdapter(MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), topic_prefix=sys.argv[2],
                                   client_id="sw-will")).start()
while not adapter.connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(60)
"""


def test_last_will_says_offline_when_the_service_dies(broker, subscriber):
    process = subprocess.Popen([sys.executable, "-c", LAST_WILL_CLIENT, str(broker.port), PREFIX], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert process.stdout.readline().strip() == "connected"
        subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/availability" and m.payload == b"online", 1)
        process.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker publishes the will
        got = subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/availability" and m.payload == b"offline", 1)
    finally:
        process.kill()
        process.wait(10)
    assert [m.payload for m in got] == [b"offline"]


def test_clean_stop_says_offline(broker, subscriber, adapters):
    mqtt = adapters(broker.port).start()
    subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/availability" and m.payload == b"online", 1)
    mqtt.close()
    got = subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/availability" and m.payload == b"offline", 1)
    assert len(got) == 1


# --- credentials and TLS --------------------------------------------------------------------------------

def test_username_and_password(tmp_path, adapters):
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (package mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "streetwatch", "right-password"], check=True,
                   capture_output=True)
    b = Broker(tmp_path, f"allow_anonymous false\npassword_file {passwd}").start()
    try:
        config = MqttConfig(host="127.0.0.1", port=b.port, topic_prefix=PREFIX, username="streetwatch",
                            password="right-password", timeout_s=5)
        good = adapters(b.port, username=config.username, password=mqtt_settings(config).password)
        assert good.send(message()).remote_id == message().idempotency_key
        bad = adapters(b.port, username="streetwatch", password="wrong", timeout_s=1.0)
        with pytest.raises(TransientSendError, match="refused"):
            bad.send(message())
    finally:
        b.stop()


def test_tls_checks_the_broker_certificate(tmp_path, adapters):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key, other = tmp_path / "broker.pem", tmp_path / "broker.key", tmp_path / "other.pem"
    for out, keyout in ((cert, key), (other, tmp_path / "other.key")):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
                        str(keyout), "-out", str(out)], check=True, capture_output=True)
    b = Broker(tmp_path, f"allow_anonymous true\ncertfile {cert}\nkeyfile {key}").start()
    try:
        good = adapters(b.port, host="localhost", tls=True, ca_file=str(cert))
        assert good.send(message()).remote_id
        stranger = adapters(b.port, host="localhost", tls=True, ca_file=str(other), timeout_s=1.0)
        with pytest.raises(TransientSendError):
            stranger.send(message())
    finally:
        b.stop()


# --- the service wires it -------------------------------------------------------------------------------

def test_the_service_publishes_through_its_outbox_thread(tmp_path, broker, subscriber):
    """create_app with outbox.mqtt: events queued by the store, delivered by the app's own outbox thread; camera
    availability from the workers' runtimes; the service offline at a clean stop."""
    from fastapi.testclient import TestClient

    from service.app import build_adapters, create_app
    from service.workers import CameraRuntime

    reviewer_key = "reviewer-key-0123456789abcdef"
    settings = Settings(
        database_path=tmp_path / "c.db", evidence_dir=tmp_path / "e", run_flights=False,
        api_keys=[{"name": "li", "role": "reviewer", "key": reviewer_key}], review={"undo_window_s": 0},
        outbox={"poll_s": 0.1, "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX,
                                          "client_id": "sw-app", "camera_interval_s": 0.1}})
    assert isinstance(build_adapters(settings)["mqtt"], MqttAdapter)
    app = create_app(settings)
    services = app.state.services
    with TestClient(app) as client:
        case = services.cases.ingest(make_violation("v1"), origin=make_origin())
        answer = client.post(f"/api/v1/cases/{case.id}/confirm", headers={"X-API-Key": reviewer_key})
        assert answer.status_code == 200, answer.text
        services.runtimes["gate-1"] = CameraRuntime("gate-1", state="running")
        got = subscriber.wait_for(is_case_event, 2)
        cameras = subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/cameras/gate-1/availability", 1)
    assert [(m.topic, m.json()["status"]) for m in got] == [(f"{PREFIX}/cases/{case.id}/new", "pending"),
                                                             (f"{PREFIX}/cases/{case.id}/confirmed", "confirmed")]
    assert [m.payload for m in cameras] == [b"online"]  # live: the retain flag shows only to late subscribers
    assert [r.status for r in rows(services.session_factory, "mqtt")] == ["sent", "sent"]
    offline = subscriber.wait_for(lambda m: m.topic == f"{PREFIX}/availability" and m.payload == b"offline", 1)
    assert len(offline) == 1
