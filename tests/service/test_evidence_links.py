"""Evidence links a city can open: signed, expiring ``/evidence/{case}/{file}`` URLs, no server paths in API
output or payloads, and `serve` refusing an Open311/webhook outbox without a public base URL."""

from __future__ import annotations

import re
import stat
import time

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import update

from service.app import create_app
from service.cli import main
from service.db.models import OutboxMessage
from service.evidence_links import EvidenceLinks, load_or_create_secret, with_evidence_urls
from service.settings import Settings, public_url_problem
from tests.service.test_api import ADMIN, ALICE, KEYS, jpeg, make_config
from tests.service.test_cases import make_origin, make_violation
from tests.service.test_outbox import API_KEY, georeport  # noqa: F401

SECRET = b"0123456789abcdef0123456789abcdef"


def links(now_s: float = 1000.0, secret: bytes = SECRET) -> EvidenceLinks:
    return EvidenceLinks(secret=secret, base_url="https://sw.example/", ttl_s=600, clock=lambda: now_s)


def parts(url: str) -> tuple[int, str, int, str]:
    m = re.fullmatch(r"https://sw\.example/evidence/(\d+)/([^?]+)\?exp=(\d+)&sig=([0-9a-f]{64})", url)
    assert m, url
    return int(m[1]), m[2], int(m[3]), m[4]


@pytest.mark.parametrize("case_id, file, exp_shift, sig_change, verifier, valid", [
    (7, "a.jpg", 0, None, links(), True),
    (7, "a.jpg", 0, None, links(now_s=1600.0), True),        # the last second
    (7, "a.jpg", 0, None, links(now_s=1601.0), False),       # expired
    (8, "a.jpg", 0, None, links(), False),                   # another case
    (7, "b.jpg", 0, None, links(), False),                   # another file
    (7, "a.jpg", 60, None, links(), False),                  # a later expiry written in
    (7, "a.jpg", 0, "0" * 64, links(), False),               # a made-up signature
    (7, "a.jpg", 0, None, links(secret=b"x" * 32), False),   # another service's secret
])
def test_link_signatures(case_id, file, exp_shift, sig_change, verifier, valid):
    _, _, exp, sig = parts(links().url(7, "a.jpg"))
    assert exp == 1600
    assert verifier.verify(case_id, file, exp + exp_shift, sig_change or sig) is valid


def test_links_refuse_bad_settings_and_file_names():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        EvidenceLinks(secret=b"short", base_url="https://x", ttl_s=1)
    with pytest.raises(ValueError, match="absolute http"):
        EvidenceLinks(secret=SECRET, base_url="/srv/data", ttl_s=1)
    with pytest.raises(ValueError, match="plain file name"):
        links().url(1, "../etc/passwd")


def test_payload_evidence_gets_fresh_links_and_never_a_path():
    payload = {"case_id": 3, "evidence": [{"kind": "annotated", "file": "v1.jpg", "sha256": None},
                                          # a row queued before file names replaced paths
                                          {"kind": "original", "url": "/srv/streetwatch/evidence/v1.orig.jpg"}]}
    signed = with_evidence_urls(payload, links())
    assert [e["file"] for e in signed["evidence"]] == ["v1.jpg", "v1.orig.jpg"]
    assert [parts(e["url"])[:2] for e in signed["evidence"]] == [(3, "v1.jpg"), (3, "v1.orig.jpg")]
    unsigned = with_evidence_urls(payload, None)
    assert all("url" not in e for e in unsigned["evidence"]) and "/srv" not in str(unsigned)
    assert payload["evidence"][1]["url"].startswith("/srv")  # the stored payload is left as it was


def test_secret_file_is_made_once_owner_only(tmp_path):
    path = tmp_path / "data" / "evidence-links.key"
    first = load_or_create_secret(path)
    assert len(first) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    path.write_text("short")
    with pytest.raises(ValueError, match="at least 32 characters"):
        load_or_create_secret(path)


# --- settings and serve ---------------------------------------------------------------------------------

def base_settings(tmp_path, **extra) -> dict:
    return {"database_path": str(tmp_path / "cases.db"), "evidence_dir": str(tmp_path / "evidence"),
            "run_cameras": False, "run_flights": False, "review": {"undo_window_s": 0},
            "api_keys": [{"name": "root", "role": "admin", "key": KEYS["admin"]},
                         {"name": "alice", "role": "reviewer", "key": KEYS["alice"]}], **extra}


@pytest.mark.parametrize("outbox, problem", [
    ({"open311": {"endpoint": "http://city.example", "api_key": "k"}}, "outbox.open311"),
    ({"webhook": {"url": "http://city.example/hook", "secret": "0123456789abcdef"}}, "outbox.webhook"),
    ({"open311": {"endpoint": "http://city.example", "api_key": "k"}, "deliver": False}, None),
    ({}, None),
])
def test_serve_refuses_an_outbox_without_public_base_url(tmp_path, capsys, outbox, problem):
    settings = Settings.model_validate(base_settings(tmp_path, outbox=outbox))
    found = public_url_problem(settings)
    assert (found is None) == (problem is None)
    if problem is None:
        return
    assert found.startswith("public_base_url: required") and problem in found
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(base_settings(tmp_path, outbox=outbox)))
    assert main(["serve", "--settings", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "public_base_url: required" in err[0] and str(path) in err[0]
    assert Settings.model_validate(base_settings(tmp_path, outbox=outbox, public_base_url="https://sw.example"))


def test_the_old_evidence_base_url_is_refused_with_its_replacement(tmp_path):
    with pytest.raises(ValidationError, match="replaced by public_base_url"):
        Settings.model_validate(base_settings(tmp_path, evidence_base_url="http://x/api/v1"))


# --- the service: links served without a key, no server paths anywhere ---------------------------------

@pytest.fixture
def city(tmp_path, georeport):  # noqa: F811
    """The service with an Open311 outbox to a real receiver process (which checks media_url)."""
    server = georeport()
    settings = Settings.model_validate(base_settings(
        tmp_path, public_base_url="http://testserver", evidence_link_ttl_s=600,
        outbox={"open311": {"endpoint": server.endpoint, "api_key": API_KEY, "timeout_s": 5}, "poll_s": 0.05}))
    app = create_app(settings, config=make_config())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app.state.services, server, settings


def confirmed_case_with_evidence(client, services, settings, name: str = "v1") -> int:
    settings.evidence_dir.mkdir(parents=True, exist_ok=True)
    files = {"annotated": settings.evidence_dir / f"{name}.jpg", "original": settings.evidence_dir / f"{name}.orig.jpg"}
    for i, path in enumerate(files.values()):
        path.write_bytes(jpeg(i))
    case = services.cases.ingest(make_violation(name), {k: str(v) for k, v in files.items()}, origin=make_origin())
    assert client.post(f"/api/v1/cases/{case.id}/confirm", headers=ALICE).status_code == 200
    return case.id


def wait_sent(services, timeout_s: float = 20) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with services.session_factory() as s:
            if {r.status for r in s.query(OutboxMessage)} == {"sent"}:
                return
        time.sleep(0.05)
    with services.session_factory() as s:
        rows = [(r.status, r.last_error) for r in s.query(OutboxMessage)]
    pytest.fail(f"the outbox did not deliver: {rows}")


def test_open311_media_url_is_a_signed_link_the_city_opens_without_a_key(city):
    client, services, server, settings = city
    case_id = confirmed_case_with_evidence(client, services, settings)
    wait_sent(services)
    [record] = server.records().values()
    media_url = record["fields"]["media_url"]
    assert media_url.startswith(f"http://testserver/evidence/{case_id}/v1.jpg?exp=")
    path = media_url.removeprefix("http://testserver")
    opened = client.get(path)  # no Authorization header
    assert opened.status_code == 200 and opened.content == (settings.evidence_dir / "v1.jpg").read_bytes()
    assert opened.headers["content-type"] == "image/jpeg"
    _, file, exp, sig = parts(media_url.replace("http://testserver", "https://sw.example"))
    for bad in (f"/evidence/{case_id}/{file}?exp={exp}&sig={'0' * 64}",           # forged
                f"/evidence/{case_id}/{file}?exp={exp + 1}&sig={sig}",             # expiry changed
                f"/evidence/{case_id + 1}/{file}?exp={exp}&sig={sig}"):            # another case
        assert client.get(bad).status_code == 403, bad
    expired = services.evidence_links.__class__(secret=services.evidence_links.secret, base_url="http://testserver",
                                                ttl_s=600, clock=lambda: time.time() - 700)
    assert client.get(expired.url(case_id, "v1.jpg").removeprefix("http://testserver")).status_code == 403
    unknown = services.evidence_links.url(case_id, "nope.jpg").removeprefix("http://testserver")
    assert client.get(unknown).status_code == 404
    assert client.get(f"/evidence/{case_id}/{file}?exp={exp}").status_code == 422  # no signature at all


def walk_strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
    elif isinstance(value, str):
        yield value


def test_no_server_paths_in_api_output_or_payloads(city, tmp_path):
    client, services, server, settings = city
    case_id = confirmed_case_with_evidence(client, services, settings)
    wait_sent(services)
    responses = {path: client.get(path, headers=ADMIN) for path in (
        "/api/v1/cases", f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/audit", "/api/v1/outbox",
        "/api/v1/flights", "/api/v1/cameras", "/api/v1/me", "/health")}
    data_folder = str(tmp_path)
    absolute_path = re.compile(r"(^|[\s\"'=(])/(tmp|srv|var|home|root|data|mnt|opt)/")
    for path, response in responses.items():
        assert response.status_code == 200, (path, response.text)
        for text in walk_strings(response.json()):
            assert data_folder not in text and not absolute_path.search(text), (path, text)
    evidence = responses[f"/api/v1/cases/{case_id}"].json()["evidence"]
    assert {e["file"] for e in evidence} == {"v1.jpg", "v1.orig.jpg"} and all("path" not in e for e in evidence)
    with services.session_factory() as s:
        [row] = s.query(OutboxMessage).all()
        payload_texts = list(walk_strings(row.payload))
    assert not any(data_folder in t for t in payload_texts)
    [record] = server.records().values()
    assert not any(data_folder in t for t in walk_strings(record["fields"]))


def test_needs_check_is_listed_and_resolved_by_an_admin(city):
    client, services, server, settings = city
    case_id = confirmed_case_with_evidence(client, services, settings)
    wait_sent(services)
    with services.session_factory.begin() as s:  # as the worker leaves a row it could not reconcile
        s.execute(update(OutboxMessage).values(status="needs_check", remote_id=None, last_error="GET: HTTP 500"))
    listed = client.get("/api/v1/outbox", params={"status": "needs_check"}, headers=ADMIN).json()
    [row] = listed["data"]
    assert (row["case_id"], row["status"], row["last_error"]) == (case_id, "needs_check", "GET: HTTP 500")
    url = f"/api/v1/outbox/{row['id']}/resolve"
    assert client.post(url, json={"action": "sent"}, headers=ADMIN).status_code == 422  # the id is missing
    assert client.post(url, json={"action": "sent", "remote_id": "SR-1"}, headers=ALICE).status_code == 403
    assert client.post("/api/v1/outbox/999/resolve", json={"action": "repost"}, headers=ADMIN).status_code == 404
    done = client.post(url, json={"action": "sent", "remote_id": "SR-000001"}, headers=ADMIN)
    assert done.status_code == 200 and done.json() == {"id": row["id"], "status": "sent"}
    assert client.post(url, json={"action": "repost"}, headers=ADMIN).status_code == 409  # not needs_check now
    listed = client.get("/api/v1/outbox", headers=ADMIN).json()["data"][0]
    assert (listed["status"], listed["remote_id"]) == ("sent", "SR-000001")
    audit = client.get(f"/api/v1/cases/{case_id}/audit", headers=ALICE).json()["data"]
    assert audit[-1]["action"] == "outbox_resolve_sent" and audit[-1]["actor"] == "root"
