"""Schemathesis against the live OpenAPI (issue 17): a real server on loopback, every operation, every role.

The app from `create_app` runs under uvicorn in a thread (`ServerThread`) on a fresh SQLite file and evidence
folder with a few seeded cases, an outbox row and two drone flights. Schemathesis loads the schema the server
serves (``/openapi.json``) and generates requests for every operation, valid ones (positive) and invalid ones
(negative), with the keys of each role and without a key. Every answer must pass three checks:

- ``not_a_server_error``: no 5xx (the issue found 280 of them: ids and cursors beyond 2^63);
- ``status_code_conformance``: the status is one the operation documents (400/413/415/422/429 included);
- ``response_schema_conformance``: the body matches the documented schema of that status.

Bounded and repeatable for CI: a fixed number of examples per operation and role (`RUNS`), derandomized
Hypothesis (the same requests on every run), no example database, no shrinking (the failure report carries a
``curl`` line that reproduces it): about 1,700 requests, some 40 s of CPU for the whole file (one process: the
server is a thread of it). One-off deeper runs against the same server (four times the examples here, and
schemathesis' CLI with its coverage, fuzzing and stateful phases: some 18,000 requests) found nothing beyond what
is fixed and pinned below.

State: the server changes its database and in-memory configuration as schemathesis confirms, rejects and
deletes; everything lives under the module's own temporary folder, so no other test sees it. Nothing heavy
runs: ``run_cameras=False`` (no pipelines), ``run_flights=False`` (an accepted flight upload is queued, never
analysed), ``outbox.deliver=False`` (confirmed cases are never posted), no ``config_path`` (camera edits stay in
memory), and the failed-auth limit is raised so that the anonymous run is not all 429s (its own tests:
tests/service/test_hostile_input.py).

Schemathesis 4's pytest integration for a schema that exists only at run time
(``schemathesis.pytest.from_fixture``) fails under pytest 9 (it sets ``Function._nodeid``, which pytest 9
renamed), so this file drives the documented Python API instead: ``APIOperation.as_strategy`` with Hypothesis'
``@given`` and ``Case.call_and_validate``, one pytest test per role and generation mode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from service.app import create_app
from service.flights import FlightSource
from service.settings import Settings, flights_dir
from tests.service.test_api import KEYS, jpeg, make_config
from tests.service.test_cases import make_origin, make_violation
from tests.service.test_review_page import ServerThread  # uvicorn in a thread on a free loopback port

pytestmark = pytest.mark.timeout(120)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
BEARER = {role: {"Authorization": f"Bearer {KEYS[name]}"}
          for role, name in (("admin", "admin"), ("reviewer", "alice"), ("camera", "cam-1"), ("pilot", "pilot-li"))}


@dataclass(frozen=True)
class Run:
    """One schemathesis pass: a caller (`role`, None: no key) and how many examples per operation."""

    role: str | None
    mode: GenerationMode
    max_examples: int
    known_ids: bool = False  # path parameters fixed to seeded resources, so reads reach their 200 answers


# Most examples where the most code runs (an admin key passes every role check); keys that are refused early
# (401/403 before any parameter is used) need few.
RUNS = [
    Run("admin", GenerationMode.POSITIVE, 10),
    Run("admin", GenerationMode.NEGATIVE, 7),
    Run("admin", GenerationMode.POSITIVE, 5, known_ids=True),
    Run("reviewer", GenerationMode.POSITIVE, 6),
    Run("reviewer", GenerationMode.NEGATIVE, 5),
    Run("reviewer", GenerationMode.POSITIVE, 5, known_ids=True),
    Run("camera", GenerationMode.POSITIVE, 5),
    Run("camera", GenerationMode.NEGATIVE, 5),
    Run("pilot", GenerationMode.POSITIVE, 5, known_ids=True),
    Run(None, GenerationMode.POSITIVE, 5),
    Run(None, GenerationMode.NEGATIVE, 5),
]


@dataclass(frozen=True)
class Live:
    """The running server: its URL, the schema it serves, and ids of seeded resources by path parameter."""

    url: str
    app: FastAPI
    schema: BaseSchema
    known_ids: dict[str, str]


def seed(app: FastAPI, settings: Settings, evidence_dir: Path) -> dict[str, str]:
    """Cases with evidence files (one confirmed: an outbox row), a finished flight with its report and a queued
    one; returns an existing id for each path parameter."""
    services = app.state.services
    case_ids = []
    for i in range(3):
        paths = {}
        for kind in ("annotated", "crop"):
            path = evidence_dir / f"v{i}.{kind}.jpg"
            path.write_bytes(jpeg(i))
            paths[kind] = str(path)
        case_ids.append(services.cases.ingest(make_violation(f"v{i}"), paths, origin=make_origin()).id)
    services.cases.confirm(case_ids[0], "alice")
    done = services.flights.create("flight-done", input=FlightSource(video="/nowhere/f.mp4"),
                                   created_by="pilot-li").id
    services.flights.claim_next()
    services.flights.finish(done, "done")
    out = flights_dir(settings) / done / "out"
    (out / "frames").mkdir(parents=True)
    (out / "report.html").write_text("<!DOCTYPE html><html><head><title>r</title></head><body></body></html>")
    (out / "findings.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (out / "frames" / "000001.jpg").write_bytes(jpeg())
    services.flights.create("flight-queued", input=FlightSource(video="/nowhere/g.mp4"), created_by="pilot-li")
    evidence_id = services.cases.get(case_ids[1]).evidence[0].id
    return {"case_id": str(case_ids[1]), "evidence_id": str(evidence_id), "camera_id": "cam-1", "flight_id": done,
            "path": "frames/000001.jpg"}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("schemathesis")
    evidence_dir = root / "evidence"
    settings = Settings(
        database_path=root / "cases.db", evidence_dir=evidence_dir, adapters=("open311",),
        run_cameras=False, run_flights=False, outbox={"deliver": False},
        max_push_bytes=200_000, flights={"dir": root / "flights", "max_upload_bytes": 2_000_000},
        # A test folder on a nearly full CI disk must not make /ready degrade (a documented 503, but noise here).
        evidence_min_free_bytes=0,
        auth_limit={"burst": 10000, "per_minute": 60000},
        api_keys=[{"name": "root", "role": "admin", "key": KEYS["admin"]},
                  {"name": "alice", "role": "reviewer", "key": KEYS["alice"]},
                  {"name": "cam-1-gw", "role": "camera", "camera_id": "cam-1", "key": KEYS["cam-1"]},
                  {"name": "pilot-li", "role": "pilot", "key": KEYS["pilot-li"]}])
    app = create_app(settings, config=make_config())  # makes the evidence folder
    known_ids = seed(app, settings, evidence_dir)
    with ServerThread(app) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        yield Live(url=server.url, app=app, schema=schema, known_ids=known_ids)


def failures_of(live: Live, run: Run, schema: BaseSchema | None = None) -> list[str]:
    """Run `run` over every operation of `schema` (default: the live one) against the live server.

    Returns:
        One report per failing operation: its label, the caller, and schemathesis' account of each distinct
        failure with a ``curl`` line that reproduces it; empty when every answer passed `CHECKS`.
    """
    headers = BEARER[run.role] if run.role else {}
    found: list[str] = []
    for result in (schema or live.schema).get_all_operations():
        operation = result.ok()
        path_names = [p.name for p in operation.path_parameters]
        if run.known_ids and (operation.method.upper() != "GET" or not path_names):
            continue  # only reads: a known id in a write would delete or decide the seeded resources
        if run.mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()) and not operation.body:
            continue  # nothing to make invalid (GET /health, /metrics, ...)
        fixed = {n: live.known_ids[n] for n in path_names if n in live.known_ids} if run.known_ids else None

        @given(case=operation.as_strategy(generation_mode=run.mode, path_parameters=fixed))
        @settings(max_examples=run.max_examples, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except (Exception, FailureGroup) as exc:  # a FailureGroup (a BaseExceptionGroup) names every problem found
            found.append(f"--- {operation.label} ({run.role or 'no key'}, {run.mode.value}):\n{exc}")
    return found


@pytest.mark.parametrize("run", RUNS, ids=[f"{r.role or 'no-key'}-{r.mode.value}{'-known-ids' * r.known_ids}"
                                           for r in RUNS])
def test_no_server_error_and_every_answer_as_documented(live, run):
    failures = failures_of(live, run)
    assert not failures, f"{len(failures)} operation(s) failed:\n" + "\n".join(failures)


def test_the_server_is_still_healthy_afterwards(live):
    """After every run above (module order): the fuzzed server still answers and its database is intact."""
    response = requests.get(f"{live.url}/health", timeout=10)
    assert response.status_code == 200 and response.json()["database"] == "ok"


# --- what schemathesis found, pinned ------------------------------------------------------------------------

def test_a_flight_path_body_that_is_not_utf8_is_a_422_naming_the_body(live):
    """Was a 500: ``json.loads`` of bytes raises UnicodeDecodeError, not JSONDecodeError."""
    response = requests.post(f"{live.url}/api/v1/flights", data=b'{"path": "\xe9"}', timeout=10,
                             headers={**BEARER["admin"], "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "body" and "UTF-8" in response.json()["detail"][0]["msg"]


# --- the harness catches what it is meant to catch --------------------------------------------------------

def test_a_server_error_is_reported(live, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(live.app.state.services.cases, "list_cases", boom)
    schema = live.schema.include(path="/api/v1/cases", method="GET")
    failures = failures_of(live, Run("reviewer", GenerationMode.POSITIVE, 2), schema)
    assert len(failures) == 1 and "Server error" in failures[0], failures


def test_an_undocumented_status_is_reported(live):
    spec = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    spec["paths"]["/api/v1/kinds"]["get"]["responses"].pop("401")
    schema = schemathesis.openapi.from_dict(spec).include(path="/api/v1/kinds", method="GET")
    failures = failures_of(live, Run(None, GenerationMode.POSITIVE, 2), schema)
    assert len(failures) == 1 and "Undocumented status code" in failures[0], failures


def test_an_answer_off_its_schema_is_reported(live):
    spec = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    spec["components"]["schemas"]["MePublic"]["properties"]["role"] = {"type": "integer"}
    schema = schemathesis.openapi.from_dict(spec).include(path="/api/v1/me", method="GET")
    failures = failures_of(live, Run("reviewer", GenerationMode.POSITIVE, 2), schema)
    assert len(failures) == 1 and "Response violates schema" in failures[0], failures


# --- the documented statuses ------------------------------------------------------------------------------

# Operations that read their body themselves (a JPEG frame; a flight as multipart upload or JSON server path): a
# Content-Type they do not take is 415, and a body they cannot parse is 422, not FastAPI's 400.
RAW_BODY = {("post", "/api/v1/cameras/{camera_id}/frames"), ("post", "/api/v1/flights")}


def expected_errors(method: str, path: str, op: dict) -> set[str]:
    """The error statuses an operation can answer, from what it declares: a key (401 missing or unknown, 403 wrong
    role, 429 too many failures), a body (400 unparseable, 413 over the limit, 422 invalid), parameters (422)."""
    codes: set[str] = set()
    if op.get("security"):
        codes |= {"401", "403", "429"}
    if "requestBody" in op:
        codes |= {"400", "413", "422"} if (method, path) not in RAW_BODY else {"413", "415", "422"}
    if op.get("parameters"):
        codes.add("422")
    return codes


def test_openapi_documents_the_errors_each_route_can_answer(live):
    spec = requests.get(f"{live.url}/openapi.json", timeout=10).json()
    assert spec == live.schema.raw_schema  # the schema fuzzed above is the one the server serves
    documented: set[str] = set()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            documented |= codes
            lacking = expected_errors(method, path, op) - codes
            if lacking:
                missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
            if not op.get("security"):  # no key asked, so none refused: 401 and 429 would be wrong here
                assert not codes & {"401", "429"}, (method, path, sorted(codes))
            for code in codes - {"422"}:  # 422 may be FastAPI's own validation model
                if code.startswith("4"):
                    schema = op["responses"][code].get("content", {}).get("application/json", {}).get("schema")
                    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (method, path, code)
    assert not missing, "routes that do not document statuses they can answer:\n" + "\n".join(missing)
    assert {"400", "413", "415", "422", "429"} <= documented  # the list


def test_every_reference_of_the_openapi_resolves(live):
    """A ``$ref`` to a model no route declares (``openapi_extra``) is not in ``components``: schemathesis then skips
    that body (it found ``FlightFromPath`` so)."""
    spec = live.schema.raw_schema
    text = json.dumps(spec)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and not refs - set(spec["components"]["schemas"]), sorted(refs - set(spec["components"]["schemas"]))
    upload = spec["paths"]["/api/v1/flights"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert upload["required"] == ["path"] and upload["additionalProperties"] is False


@pytest.mark.parametrize("method, path, codes", [
    ("post", "/api/v1/cases/{case_id}/reject", {"400", "401", "403", "404", "409", "413", "422", "429"}),
    ("post", "/api/v1/cameras/{camera_id}/frames", {"401", "403", "404", "409", "413", "415", "422", "429", "503"}),
    ("post", "/api/v1/flights", {"401", "403", "413", "415", "422", "429"}),
    ("put", "/api/v1/cameras/{camera_id}/zones", {"400", "401", "403", "404", "413", "422", "429", "500"}),
    ("get", "/api/v1/cases", {"401", "403", "422", "429"}),
    ("get", "/evidence/{case_id}/{file}", {"403", "404", "422"}),
])
def test_openapi_error_statuses_of_some_routes(live, method, path, codes):
    op = live.schema.raw_schema["paths"][path][method]
    assert codes <= set(op["responses"]), json.dumps(sorted(op["responses"]))
