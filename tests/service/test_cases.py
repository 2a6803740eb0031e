"""Cases on a real SQLite file and on PostgreSQL (the `db_settings` fixture in conftest.py): dedupe, the status
machine, reviewer actions and their audit rows, listing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from detector.rules import Violation
from service.cases import (CaseError, CaseFilter, CaseNotFoundError, CaseOrigin, CaseSettings, CaseStore,
                           DedupeCandidate, InvalidTransitionError, TRANSITIONS, box_iou, build_case_payload,
                           case_dwell_s, check_transition, choose_dedupe_target, idempotency_key)
from service.config import CameraConfig, camera_origin
from service.db import make_engine, make_session_factory, upgrade_schema
from service.db.models import Evidence, OutboxMessage

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=timezone.utc)
STALL_BOX = (100.0, 200.0, 200.0, 300.0)


def make_violation(violation_id: str = "cam-1/stall_occupation/z1/1", event: str = "opened", *,
                   camera_id: str = "cam-1", zone_id: str = "z1", kind: str = "stall_occupation",
                   first_s: float = 0.0, last_s: float = 300.0, boxes=(STALL_BOX,), score: float = 0.8,
                   classes=None) -> Violation:
    """A violation event `first_s`..`last_s` seconds after T0."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Violation(
        violation_id=violation_id, kind=kind, event=event, status="closed" if event == "closed" else "open",
        camera_id=camera_id, zone_id=zone_id, track_ids=tuple(range(1, len(boxes) + 1)),
        first_seen=T0 + timedelta(seconds=first_s), last_seen=T0 + timedelta(seconds=last_s),
        dwell_s=last_s - first_s, xyxy=boxes, score=score,
        class_names=tuple(classes or ["stall"] * len(boxes)))


def make_camera(camera_id: str = "cam-1") -> CameraConfig:
    return CameraConfig(id=camera_id, name="Gate", source="rtsp://10.0.0.5/stream", timezone="Asia/Shanghai",
                        position={"lat_deg": 31.2304, "lon_deg": 121.4737}, address="88 Nanjing Rd",
                        grid_code="310101-001")


def make_origin(camera_id: str = "cam-1") -> CaseOrigin:
    """The case origin of `make_camera(camera_id)`, as the camera workers pass it."""
    return camera_origin(make_camera(camera_id))


class FakeClock:
    """Wall-clock time the test moves by hand."""

    def __init__(self, start: datetime = T0 + timedelta(hours=1)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def session_factory(db_settings):
    # db_settings (tests/service/conftest.py): an empty SQLite file, then an empty PostgreSQL schema.
    engine = make_engine(db_settings)
    upgrade_schema(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(session_factory, clock):
    return CaseStore(session_factory, CaseSettings(adapters=("open311",)), clock=clock)


# --- pure logic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, expected", [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
    ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),
])
def test_box_iou(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize("gap_s, other_box, expected", [
    (60, STALL_BOX, 7),                            # same stall, soon after: same case
    (1800, STALL_BOX, 7),                          # exactly the cooldown: still the same case
    (1801, STALL_BOX, None),                       # after the cooldown: new case
    (60, (110.0, 210.0, 210.0, 310.0), 7),         # moved a little (IoU 0.68)
    (60, (400.0, 200.0, 500.0, 300.0), None),      # elsewhere in the zone: new case
    (-30, STALL_BOX, 7),                           # overlapping in time
])
def test_choose_dedupe_target(gap_s, other_box, expected):
    candidate = DedupeCandidate(case_id=7, last_seen=T0, boxes=[list(STALL_BOX)])
    first_seen = T0 + timedelta(seconds=gap_s)
    assert choose_dedupe_target([candidate], first_seen, [other_box], cooldown_s=1800, iou_min=0.3) == expected


def test_choose_dedupe_target_prefers_best_overlap():
    far = DedupeCandidate(1, T0, [[0, 0, 100, 100]])
    near = DedupeCandidate(2, T0 - timedelta(seconds=60), [list(STALL_BOX)])
    assert choose_dedupe_target([far, near], T0, [STALL_BOX], 1800, 0.3) == 2


ALL_STATUSES = sorted(TRANSITIONS)


@pytest.mark.parametrize("current", ALL_STATUSES)
@pytest.mark.parametrize("target", ALL_STATUSES)
def test_status_machine(current, target):
    valid = {("pending", "confirmed"), ("pending", "rejected"), ("pending", "merged"), ("confirmed", "posted"),
             ("confirmed", "post_failed"), ("post_failed", "posted")}
    if (current, target) in valid:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransitionError, match=f"cannot go from '{current}' to '{target}'"):
            check_transition(current, target, case_id=3)


# --- ingest and dedupe ----------------------------------------------------------------------------------

@pytest.mark.parametrize("second, same_case", [
    (dict(first_s=900, last_s=1200), True),                                  # same stall back within cooldown
    (dict(first_s=300 + 1801, last_s=2500), False),                          # after the cooldown
    (dict(first_s=900, last_s=1200, zone_id="z2"), False),                   # other zone
    (dict(first_s=900, last_s=1200, boxes=((400, 200, 500, 300),)), False),  # not overlapping
    (dict(first_s=900, last_s=1200, kind="illegal_structure"), False),       # other kind
    (dict(first_s=900, last_s=1200, camera_id="cam-2"), False),              # other camera
])
def test_dedupe_of_opened_events(store, second, same_case):
    first = store.ingest(make_violation("v1"), origin=make_origin())
    again = store.ingest(make_violation("v2", **second), origin=make_origin(second.get("camera_id", "cam-1")))
    assert (again.id == first.id) is same_case
    cases = store.list_cases().items
    assert len(cases) == (1 if same_case else 2)
    if same_case:
        assert again.first_seen == first.first_seen and again.last_seen == T0 + timedelta(seconds=1200)
        assert again.dwell_s == 600  # observed: 300 s of each violation, not the 600 s between them
        assert [a.action for a in store.audit_trail(first.id)] == ["created", "dedupe_attach"]


@pytest.mark.parametrize("decision, status", [("reject", "rejected"), ("confirm", "confirmed"),
                                              ("merge", "merged")])
def test_decided_cases_absorb_the_same_thing_within_the_cooldown(store, decision, status):
    """A rejected case (an awning taken for a stall) is not put before the reviewer again while the thing
    stays; a confirmed or posted one is not reported twice; a merged case lives on in its target only."""
    first = store.ingest(make_violation("v1"))
    other = None
    if decision == "reject":
        store.reject(first.id, "alice", "not a stall")
    elif decision == "confirm":
        store.confirm(first.id, "alice")
    else:
        other = store.ingest(make_violation("v0", zone_id="z1", first_s=0, last_s=300,
                                            boxes=((600.0, 200.0, 700.0, 300.0),)))
        store.merge([first.id], other.id, "alice")
    again = store.ingest(make_violation("v2", first_s=400, last_s=600))
    assert store.get(first.id).status == status
    if decision == "merge":
        assert again.id not in (first.id,)
    else:
        assert again.id == first.id and store.get(first.id).last_seen == T0 + timedelta(seconds=600)
        assert len(store.list_cases().items) == 1


def test_a_rejected_case_stops_absorbing_after_the_cooldown(store):
    first = store.ingest(make_violation("v1"))
    store.reject(first.id, "alice", "not a stall")
    later_s = 300 + store.settings.cooldown_s + 60
    assert store.ingest(make_violation("v2", first_s=later_s, last_s=later_s + 300)).id != first.id


# --- dwell is observed time (issue 18: 24 min 54 s of dwell, 7 min of it with the demo stopped) ------------

def _seen(violation_id: str, first_s: float, last_s: float, dwell_s: float | None = None, gaps=(),
          event: str = "opened") -> Violation:
    """A violation event whose observed dwell leaves out `gaps` ((start_s, end_s) after T0)."""
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    return replace(make_violation(violation_id, event, first_s=first_s, last_s=last_s),
                   dwell_s=last_s - first_s if dwell_s is None else dwell_s,
                   gaps=tuple((at(a), at(b)) for a, b in gaps))


@pytest.mark.parametrize("case_s, event, expected_s", [
    # (first_s, last_s, dwell_s) of the case; the event; the case's dwell after it
    ((0, 600, 600), _seen("v2", 1020, 1500, 480), 1080),                    # found again after a 7 min restart
    ((0, 300, 300), _seen("v1", 0, 600), 600),                              # the next event of its violation
    ((0, 100, 100), _seen("v1", 0, 460, 160, gaps=[(100, 400)]), 160),      # the stream was down 5 min
    ((0, 600, 600), _seen("v0", 0, 500), 600),                              # an older violation's event adds nothing
    ((0, 600, 600), _seen("v3", 500, 900, 400), 900),                       # overlapping: only what is new
    ((0, 100, 250), _seen("v1", 0, 150), 150),                              # never longer than the span
])
def test_case_dwell_s(case_s, event, expected_s):
    first_s, last_s, dwell_s = case_s
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    assert case_dwell_s(dwell_s, at(first_s), at(last_s), event) == expected_s


def test_a_stall_found_again_after_a_restart_joins_its_case_without_the_stopped_time(store):
    case = store.ingest(_seen("run1", 0, 60), origin=make_origin())
    store.ingest(_seen("run1", 0, 600, event="updated"))
    # The service stops for 7 minutes; the new engine's violation of the same stall opens 60 s after the restart.
    again = store.ingest(_seen("run2", 1020, 1080), origin=make_origin())
    assert again.id == case.id and again.dwell_s == 660
    later = store.ingest(_seen("run2", 1020, 1500, event="updated"))
    assert (later.first_seen, later.last_seen, later.dwell_s) == (T0, T0 + timedelta(seconds=1500), 1080)
    assert [a.action for a in store.audit_trail(case.id)] == ["created", "dedupe_attach"]


def test_merged_cases_add_their_observed_dwell(store):
    first = store.ingest(make_violation("v1", first_s=0, last_s=300))
    other = store.ingest(make_violation("v2", first_s=1000, last_s=1300, boxes=((600.0, 200.0, 700.0, 300.0),)))
    merged = store.merge([first.id], other.id, "alice")
    assert (merged.first_seen, merged.last_seen, merged.dwell_s) == (T0, T0 + timedelta(seconds=1300), 600)


def test_updated_and_closed_events_update_the_case(store):
    case = store.ingest(make_violation("v1"), origin=make_origin())
    moved = ((105.0, 200.0, 205.0, 300.0),)
    store.ingest(make_violation("v1", "updated", last_s=600, boxes=moved, score=0.9))
    closed = store.ingest(make_violation("v1", "closed", last_s=700, boxes=moved, score=0.9))
    assert closed.id == case.id and closed.dwell_s == 700 and closed.score == pytest.approx(0.9)
    assert closed.boxes == [[105.0, 200.0, 205.0, 300.0]] and closed.ended_at == T0 + timedelta(seconds=700)
    assert (closed.lat_deg, closed.lon_deg, closed.address, closed.grid_code) == (
        31.2304, 121.4737, "88 Nanjing Rd", "310101-001")
    assert closed.category_code == "0504" and closed.class_name == "stall"


def test_events_of_a_deduplicated_violation_go_to_the_older_case(store):
    first = store.ingest(make_violation("v1"))
    store.ingest(make_violation("v2", first_s=900, last_s=1000))
    updated = store.ingest(make_violation("v2", "closed", first_s=900, last_s=1500))
    assert updated.id == first.id and updated.last_seen == T0 + timedelta(seconds=1500)


def test_evidence_is_stored_with_hashes(store, tmp_path):
    files = {}
    for kind in ("annotated", "original", "crop"):
        files[kind] = str(tmp_path / f"v1.{kind}.jpg")
        Path(files[kind]).write_bytes(kind.encode())
    case = store.ingest(make_violation("v1"), files)
    assert [(e.kind, e.path) for e in case.evidence] == list(files.items())
    import hashlib
    assert case.evidence[0].sha256 == hashlib.sha256(b"annotated").hexdigest()
    again = store.ingest(make_violation("v2", first_s=400, last_s=500), {"annotated": files["annotated"]})
    assert again.id == case.id and len(again.evidence) == 4
    with pytest.raises(CaseError, match="unknown evidence kind 'thumb'"):
        store.ingest(make_violation("v1", "updated"), {"thumb": files["crop"]})


def test_evidence_rows_keep_the_boxes_of_their_frame(store, session_factory, tmp_path):
    # Each event's evidence rows store that event's boxes, classes and track ids; later events move the case's
    # boxes, never those of an earlier frame.
    files = {}
    for kind in ("annotated", "original", "crop"):
        files[kind] = str(tmp_path / f"v1.{kind}.jpg")
        Path(files[kind]).write_bytes(kind.encode())
    later = str(tmp_path / "v1-900.orig.jpg")
    Path(later).write_bytes(b"later")
    bikes = dict(kind="bike_misparked", violation_id="v1")
    case = store.ingest(make_violation(**bikes, boxes=[(10, 20, 30, 40.04), (50, 60, 70, 80)],
                                       classes=["bicycle", "ebike"]), files)
    store.ingest(make_violation(**bikes, event="updated", last_s=900, boxes=[(12, 20, 32, 40)], classes=["bicycle"]),
                 {"original": later})
    store.ingest(make_violation(**bikes, event="closed", last_s=1200, boxes=[(14, 20, 34, 40)], classes=["bicycle"]))
    with session_factory() as session:
        rows = session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.id)).all()
    first = [{"xyxy": [10.0, 20.0, 30.0, 40.0], "class_name": "bicycle", "track_id": 1},
             {"xyxy": [50.0, 60.0, 70.0, 80.0], "class_name": "ebike", "track_id": 2}]
    second = [{"xyxy": [12.0, 20.0, 32.0, 40.0], "class_name": "bicycle", "track_id": 1}]
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    assert [(e.kind, e.ts, e.boxes) for e in rows] == [
        ("annotated", at(300), first), ("original", at(300), first), ("crop", at(300), first),
        ("original", at(900), second)]
    assert store.get(case.id).boxes == [[14.0, 20.0, 34.0, 40.0]]


# --- reviewer actions -----------------------------------------------------------------------------------

def test_confirm_enqueues_outbox_row_in_the_same_transaction(store, session_factory, clock):
    case = store.ingest(make_violation("v1"), origin=make_origin())
    confirmed = store.confirm(case.id, "alice")
    assert confirmed.status == "confirmed"
    with session_factory() as s:
        row = s.scalars(select(OutboxMessage)).one()
    assert (row.case_id, row.adapter, row.status, row.attempts) == (case.id, "open311", "pending", 0)
    assert row.idempotency_key == idempotency_key(case.id, "open311") == f"streetwatch-{case.id}-open311"
    assert row.next_attempt_at == clock.now
    assert row.payload["category_code"] == "0504" and row.payload["location"]["lat_deg"] == 31.2304
    audit = store.audit_trail(case.id)[-1]
    assert (audit.actor, audit.action, audit.at) == ("alice", "confirm", clock.now)
    assert (audit.before, audit.after) == ({"status": "pending"}, {"status": "confirmed"})
    with pytest.raises(InvalidTransitionError, match="cannot go from 'confirmed' to 'confirmed'"):
        store.confirm(case.id, "bob")
    with session_factory() as s:  # the failed confirm left nothing behind
        assert len(s.scalars(select(OutboxMessage)).all()) == 1


def test_reject_keeps_reason_and_audit(store):
    case = store.ingest(make_violation("v1"))
    rejected = store.reject(case.id, "bob", "shop's own goods, allowed")
    assert (rejected.status, rejected.reject_reason) == ("rejected", "shop's own goods, allowed")
    audit = store.audit_trail(case.id)[-1]
    assert (audit.actor, audit.action) == ("bob", "reject")
    assert audit.after == {"status": "rejected", "reject_reason": "shop's own goods, allowed"}
    with pytest.raises(InvalidTransitionError):
        store.confirm(case.id, "alice")
    with pytest.raises(CaseError, match="needs a reason"):
        store.reject(store.ingest(make_violation("v9", zone_id="z9")).id, "bob", " ")


def test_change_class_recomputes_category_code(store):
    case = store.ingest(make_violation("v1"))
    changed = store.change_class(case.id, "carol", "bike_misparked")
    assert (changed.kind, changed.corrected_kind, changed.category_code) == (
        "stall_occupation", "bike_misparked", "0506")
    audit = store.audit_trail(case.id)[-1]
    assert audit.action == "change_class" and audit.before["category_code"] == "0504"
    assert audit.after["category_code"] == "0506"
    with pytest.raises(CaseError, match="unknown violation kind 'dragon'"):
        store.change_class(case.id, "carol", "dragon")
    assert build_case_payload(changed)["kind"] == "bike_misparked"


def test_merge_folds_cases_and_routes_later_events(store):
    a = store.ingest(make_violation("va"))
    b = store.ingest(make_violation("vb", zone_id="z2", first_s=-100, last_s=200))
    merged = store.merge([b.id], into=a.id, actor="dave")
    assert merged.first_seen == T0 - timedelta(seconds=100)
    assert store.get(b.id).status == "merged" and store.get(b.id).merged_into == a.id
    assert store.ingest(make_violation("vb", "closed", zone_id="z2", first_s=-100, last_s=900)).id == a.id
    assert [x.action for x in store.audit_trail(b.id)] == ["created", "merge"]
    assert store.audit_trail(a.id)[-1].after["merged"] == [b.id]
    with pytest.raises(InvalidTransitionError):
        store.merge([a.id], into=b.id, actor="dave")


def test_unknown_case(store):
    with pytest.raises(CaseNotFoundError, match="no case 42"):
        store.confirm(42, "alice")


# --- listing --------------------------------------------------------------------------------------------

def test_list_filters_and_keyset_paging(store):
    ids = [store.ingest(make_violation(f"v{i}", zone_id=f"z{i}", first_s=i * 100, last_s=i * 100 + 50)).id
           for i in range(7)]
    store.reject(ids[0], "bob", "no")
    page1 = store.list_cases(limit=3)
    page2 = store.list_cases(limit=3, cursor=page1.next_cursor)
    page3 = store.list_cases(limit=3, cursor=page2.next_cursor)
    assert [c.id for c in page1.items + page2.items + page3.items] == ids[::-1]
    assert page3.next_cursor is None
    assert [c.id for c in store.list_cases(CaseFilter(status="rejected")).items] == [ids[0]]
    assert store.list_cases(CaseFilter(camera_id="cam-2")).items == []
    window = CaseFilter(seen_from=T0 + timedelta(seconds=220), seen_to=T0 + timedelta(seconds=400))
    assert [c.id for c in store.list_cases(window).items] == [ids[3], ids[2]]
    assert len(store.list_cases(CaseFilter(kind="stall_occupation")).items) == 7


def test_concurrent_ingest_from_camera_threads(store):
    # Camera workers write from their own threads; SQLite must queue them (BEGIN IMMEDIATE + busy timeout)
    # instead of failing with "database is locked".
    import threading

    errors: list[BaseException] = []

    def camera_worker(camera_id: str) -> None:
        try:
            for i in range(15):
                v = make_violation(f"{camera_id}/v{i}", camera_id=camera_id, zone_id=f"z{i}")
                store.ingest(v, origin=make_origin(camera_id))
                store.ingest(make_violation(f"{camera_id}/v{i}", "updated", camera_id=camera_id, zone_id=f"z{i}",
                                            last_s=400))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=camera_worker, args=(f"cam-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    page = store.list_cases(limit=100)
    assert len(page.items) == 30 and {c.last_seen for c in page.items} == {T0 + timedelta(seconds=400)}
    assert {c.version for c in page.items} == {2}


# --- origins: camera or drone flight --------------------------------------------------------------------

FLIGHT_ID = "f-20260601-01"
# A rooftop structure found by a drone: its own ground position and grid cell, not the flight's.
ROOF_LAT_DEG, ROOF_LON_DEG, ROOF_GRID = 31.19502, 121.43671, "310104-017"


def make_flight(flight_id: str = FLIGHT_ID, address: str = "Xuhui rooftops") -> CaseOrigin:
    return CaseOrigin.flight(flight_id, name="Patrol 1", source="/data/flights/DJI_0001.MP4", lat_deg=31.19,
                             lon_deg=121.43, address=address, grid_code="310104-001", timezone="Asia/Shanghai")


def flight_violation(violation_id: str, flight_id: str = FLIGHT_ID, **kw) -> Violation:
    kw = dict(kind="illegal_structure", zone_id="roofs", classes=["illegal_structure"]) | kw
    return make_violation(violation_id, camera_id=flight_id, **kw)


def test_a_flight_case_round_trip(store, session_factory, clock):
    from urllib.parse import parse_qsl

    import httpx

    from service.adapters import Open311Adapter, Open311Settings
    from service.db.models import Flight
    from service.outbox import OutboxWorker

    camera_case = store.ingest(make_violation("cam-v1"), origin=make_origin())
    origin = make_flight().at(ROOF_LAT_DEG, ROOF_LON_DEG, grid_code=ROOF_GRID)
    case = store.ingest(flight_violation("f/v1"), origin=origin)
    assert (case.flight_id, case.camera_id, case.kind, case.category_code) == (
        FLIGHT_ID, None, "illegal_structure", "0101")
    assert (case.lat_deg, case.lon_deg, case.grid_code, case.address) == (
        ROOF_LAT_DEG, ROOF_LON_DEG, ROOF_GRID, "Xuhui rooftops")
    assert case.dedupe_key == f"flight:{FLIGHT_ID}|roofs|illegal_structure"
    with session_factory() as s:
        flight = s.get(Flight, FLIGHT_ID)
        assert (flight.name, flight.source, flight.status, flight.timezone, flight.lat_deg) == (
            "Patrol 1", "/data/flights/DJI_0001.MP4", "done", "Asia/Shanghai", 31.19)

    assert [c.id for c in store.list_cases(CaseFilter(flight_id=FLIGHT_ID)).items] == [case.id]
    assert [c.id for c in store.list_cases(CaseFilter(camera_id="cam-1")).items] == [camera_case.id]
    assert store.list_cases(CaseFilter(flight_id="f-other")).items == []

    store.confirm(case.id, "alice")
    with session_factory() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id)).one()
    payload = row.payload
    assert (payload["flight_id"], payload["camera_id"]) == (FLIGHT_ID, None)
    assert payload["location"] == {"lat_deg": ROOF_LAT_DEG, "lon_deg": ROOF_LON_DEG, "address": "Xuhui rooftops",
                                   "grid_code": ROOF_GRID}
    assert f"flight {FLIGHT_ID}" in payload["description"] and "camera" not in payload["description"]

    # the outbox worker posts it to a GeoReport v2 endpoint with the finding's lat/long
    posted: list[dict[str, str]] = []

    def city(request: httpx.Request) -> httpx.Response:
        posted.append(dict(parse_qsl(request.content.decode())))
        return httpx.Response(201, json=[{"service_request_id": "SR-1"}])

    adapter = Open311Adapter(Open311Settings(endpoint="https://city.example/open311", api_key="k"),
                             client=httpx.Client(transport=httpx.MockTransport(city)))
    assert OutboxWorker(session_factory, [adapter], clock=clock).run_once() == 1
    assert (posted[0]["lat"], posted[0]["long"], posted[0]["service_code"]) == ("31.1950200", "121.4367100", "0101")
    assert f"flight {FLIGHT_ID}" in posted[0]["description"] and store.get(case.id).status == "posted"


@pytest.mark.parametrize("camera_id, flight_id, address, expected", [
    ("cam-1", None, "88 Nanjing Rd", "at 88 Nanjing Rd (zone z1)"),
    ("cam-1", None, "", "at camera cam-1 (zone z1)"),
    (None, "f-1", "Xuhui rooftops", "at Xuhui rooftops (flight f-1, zone z1)"),
    (None, "f-1", "", "at flight f-1 (zone z1)"),
])
def test_payload_names_the_origin(store, camera_id, flight_id, address, expected):
    case = store.ingest(make_violation("v1"), origin=make_origin())
    case = case.model_copy(update=dict(camera_id=camera_id, flight_id=flight_id, address=address))
    description = build_case_payload(case)["description"]
    assert description.startswith(f"Stall occupying the street {expected}, observed "), description


def test_flight_findings_are_not_deduplicated_by_pixel_boxes(store, session_factory):
    # Two findings of one flight in the same zone with the same pixel box are different objects (the boxes
    # come from different frames of a moving camera), so each is a case; camera cases dedupe as before.
    first = store.ingest(flight_violation("f/v1"), origin=make_flight().at(31.195, 121.436))
    second = store.ingest(flight_violation("f/v2", first_s=60, last_s=90), origin=make_flight().at(31.196, 121.437))
    assert first.id != second.id and first.dedupe_key == second.dedupe_key
    cam = store.ingest(make_violation("cam-v1"), origin=make_origin())
    assert cam.dedupe_key == "cam-1|z1|stall_occupation" and cam.flight_id is None
    # a later event of a flight's violation, even without its origin, goes to its case and makes no camera
    updated = store.ingest(flight_violation("f/v1", event="closed", last_s=400, boxes=((1, 2, 3, 4),)))
    assert updated.id == first.id and updated.ended_at == T0 + timedelta(seconds=400)
    assert (updated.flight_id, updated.camera_id) == (FLIGHT_ID, None)
    from service.db.models import Camera

    with session_factory() as s:
        assert s.scalars(select(Camera.id)).all() == ["cam-1"]


def test_a_later_flight_updates_the_case_it_is_attached_to(store):
    first = store.ingest(flight_violation("f1/v1"), origin=make_flight().at(ROOF_LAT_DEG, ROOF_LON_DEG,
                                                                           grid_code=ROOF_GRID))
    later = make_flight("f-20260608-01").at(ROOF_LAT_DEG + 1e-6, ROOF_LON_DEG, grid_code=ROOF_GRID)
    again = store.ingest(flight_violation("f2/v1", "f-20260608-01", first_s=7 * 86400, last_s=7 * 86400 + 30),
                         origin=later, attach_to_case_id=first.id)
    assert again.id == first.id and again.last_seen == T0 + timedelta(days=7, seconds=30)
    assert (again.flight_id, again.lat_deg) == (FLIGHT_ID, ROOF_LAT_DEG)  # origin and location stay the first
    attach = store.audit_trail(first.id)[-1]
    assert (attach.action, attach.after["violation_id"], attach.after["origin"]) == (
        "dedupe_attach", "f2/v1", "flight f-20260608-01")
    assert [c.id for c in store.list_cases(CaseFilter(flight_id="f-20260608-01")).items] == []

    # a merged case hands the violation on to its target; an unknown case is an error
    other = store.ingest(flight_violation("f1/v2"), origin=make_flight().at(31.2, 121.4))
    store.merge([other.id], into=first.id, actor="dave")
    third = store.ingest(flight_violation("f3/v1", "f-3", first_s=9e5, last_s=9e5 + 10),
                         origin=make_flight("f-3").at(31.2, 121.4), attach_to_case_id=other.id)
    assert third.id == first.id
    with pytest.raises(CaseNotFoundError, match="no case 4242"):
        store.ingest(flight_violation("f3/v2", "f-3"), origin=make_flight("f-3").at(31.2, 121.4),
                     attach_to_case_id=4242)


def test_a_dedupe_key_given_by_the_caller_is_stored_and_searched(store):
    first = store.ingest(flight_violation("f/v1"), origin=make_flight().at(31.2, 121.4),
                         dedupe_key="area|310104-017|illegal_structure")
    assert first.dedupe_key == "area|310104-017|illegal_structure"
    # cameras search among the key they are given: two zones that are one place for the city
    a = store.ingest(make_violation("v1", zone_id="z1"), origin=make_origin(), dedupe_key="cam-1|gate|stall")
    b = store.ingest(make_violation("v2", zone_id="z2", first_s=400, last_s=500), origin=make_origin(),
                     dedupe_key="cam-1|gate|stall")
    assert a.id == b.id


def test_the_origin_must_match_the_violation(store):
    with pytest.raises(CaseError, match=r"violation v1: comes from 'cam-1' but its origin is flight f-9"):
        store.ingest(make_violation("v1"), origin=CaseOrigin.flight("f-9"))
    with pytest.raises(TypeError, match="origin: expected a CaseOrigin .* got CameraConfig"):
        store.ingest(make_violation("v1"), None, make_camera())
    assert store.list_cases().items == []


@pytest.mark.parametrize("camera_id, flight_id", [("cam-1", FLIGHT_ID), (None, None)])
def test_a_case_has_exactly_one_origin(store, session_factory, camera_id, flight_id):
    # The CHECK constraint of migration 0003 (on each backend): never both, never neither.
    from sqlalchemy.exc import IntegrityError

    from service.db.models import Case

    store.ingest(make_violation("v1"), origin=make_origin())
    store.ingest(flight_violation("f/v1"), origin=make_flight().at(31.2, 121.4))
    with pytest.raises(IntegrityError, match="ck_cases_one_origin|CHECK constraint failed"):
        with session_factory.begin() as s:
            s.add(Case(violation_id="bad", dedupe_key="k", kind="stall_occupation", camera_id=camera_id,
                       flight_id=flight_id, zone_id="z1", status="pending", first_seen=T0, last_seen=T0,
                       dwell_s=0.0, score=0.5, boxes=[], track_ids=[], address="", grid_code="", created_at=T0,
                       updated_at=T0))
    assert len(store.list_cases().items) == 2
