"""One logging set-up (`service.logging_setup`): the audit trail reaches the log with an ISO-8601 UTC timestamp,
JSON lines parse, uvicorn's access log goes through the same handler with keys in addresses redacted, and the
command line's ``--log-level`` / ``--log-format`` reach it."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.cli import build_parser
from service.logging_setup import configure_logging, utc_iso
from service.serving import uvicorn_config
from service.settings import LogSettings, Settings
from tests.service.test_api import ADMIN, make_config, settings  # noqa: F401 (the settings fixture)

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


@pytest.fixture
def log_stream():
    """A fresh stream the one handler writes to; the loggers are put back as they were afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers),
             {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
              for n in _UVICORN})
    stream = io.StringIO()
    yield stream
    for handler in root.handlers[:]:
        if handler not in saved[1]:
            root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, (level, handlers, propagate) in saved[2].items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def test_an_audit_line_of_the_app_appears_with_a_utc_timestamp(log_stream, settings):  # noqa: F811
    configure_logging("info", "text", log_stream)
    zones = {"zones": [{"id": "z2", "kind": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1]]}]}
    with TestClient(create_app(settings, config=make_config())) as client:
        assert client.put("/api/v1/cameras/cam-1/zones", json=zones, headers=ADMIN).status_code == 200
    audit = [line for line in log_stream.getvalue().splitlines() if " streetwatch.audit: " in line]
    assert audit, log_stream.getvalue()
    assert re.fullmatch(rf"{ISO_UTC} INFO streetwatch\.audit: config \S+ camera=cam-1 by=root .*", audit[0]), audit


@pytest.mark.parametrize("level, logged, shown", [
    ("info", logging.INFO, True),
    ("warning", logging.INFO, False),
    ("warning", logging.ERROR, True),
    ("debug", logging.DEBUG, True),
])
def test_the_level_decides_for_every_logger(log_stream, level, logged, shown):
    configure_logging(level, "text", log_stream)
    for name in ("streetwatch.workers", "uvicorn.error", "a.library"):
        logging.getLogger(name).log(logged, "hello from %s", name)
    assert (log_stream.getvalue().count("hello from") == 3) is shown


def test_json_lines_parse(log_stream):
    configure_logging("info", "json", log_stream)
    log = logging.getLogger("streetwatch.audit")
    log.info("case %d confirmed by %s: 占道经营\nsecond line", 4, "alice")
    try:
        raise RuntimeError("disk full")
    except RuntimeError:
        logging.getLogger("streetwatch.workers").exception("evidence write failed")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"ts", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "streetwatch.audit"
    assert first["message"] == "case 4 confirmed by alice: 占道经营\nsecond line"
    assert re.fullmatch(ISO_UTC, first["ts"])
    assert second["level"] == "ERROR" and "RuntimeError: disk full" in second["exc_info"]


def test_a_second_set_up_replaces_the_first(log_stream):
    other = io.StringIO()
    configure_logging("info", "text", other)
    configure_logging("info", "text", log_stream)
    logging.getLogger("streetwatch").info("once")
    assert other.getvalue() == "" and log_stream.getvalue().count("once") == 1


def test_without_a_stream_lines_go_to_the_stderr_of_the_moment(log_stream, monkeypatch):
    configure_logging("info", "text")
    monkeypatch.setattr("sys.stderr", log_stream)  # replaced after the set-up, as pytest's capture does
    logging.getLogger("streetwatch.flights").warning("flight f-1 failed")
    assert re.fullmatch(rf"{ISO_UTC} WARNING streetwatch\.flights: flight f-1 failed\n", log_stream.getvalue())


@pytest.mark.parametrize("level, fmt, field", [("loud", "text", "log level"), ("info", "xml", "log format")])
def test_bad_level_or_format_is_one_clear_error(level, fmt, field):
    with pytest.raises(ValueError, match=f"^{field} '"):
        configure_logging(level, fmt, io.StringIO())


@pytest.mark.parametrize("created_s, expected", [(0.0, "1970-01-01T00:00:00.000Z"),
                                                 (1780300800.5, "2026-06-01T08:00:00.500Z")])
def test_utc_iso(created_s, expected):
    assert utc_iso(created_s) == expected


def test_a_key_in_an_address_is_redacted_in_uvicorn_access_log(log_stream, settings):  # noqa: F811
    """A real uvicorn server (as `serve` runs it): the access line carries the timestamp and no key."""
    import uvicorn

    configure_logging("info", "text", log_stream)
    app = create_app(settings, config=make_config())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", port, log_level="info"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        secret = "s3cret-reviewer-key-0123"
        assert httpx.get(f"http://127.0.0.1:{port}/health?key={secret}&x=1", timeout=10).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    text = log_stream.getvalue()
    assert secret not in text
    # httpx logs the client's request with an httpx.URL argument (not a str): redacted as well
    assert any(" httpx: " in line and "key=[redacted]" in line for line in text.splitlines()), text
    access = [line for line in text.splitlines() if "uvicorn.access" in line and "/health" in line]
    assert len(access) == 1, text
    assert re.fullmatch(rf'{ISO_UTC} INFO uvicorn\.access: .*"GET /health\?key=\[redacted\]&x=1 HTTP/1\.1" 200',
                        access[0]), access


@pytest.mark.parametrize("argv", [
    ["serve", "--config", "c.yaml", "--log-level", "debug", "--log-format", "json"],
    ["run", "clip.mp4", "--config", "c.yaml", "--camera", "cam-1", "--log-level", "debug", "--log-format", "json"],
    ["demo", "--log-level", "debug", "--log-format", "json"],
    ["drone", "flight.mp4", "--out", "o", "--log-level", "debug", "--log-format", "json"],
])
def test_every_long_running_command_takes_the_log_options(argv):
    args = build_parser().parse_args(argv)
    assert (args.log_level, args.log_format) == ("debug", "json")


def test_serve_takes_level_and_format_from_its_settings_when_no_option_is_given(tmp_path):
    args = build_parser().parse_args(["serve", "--config", "c.yaml"])
    assert (args.log_level, args.log_format) == (None, None)  # cmd_serve falls back to settings.log
    base = {"database_path": tmp_path / "c.db", "evidence_dir": tmp_path / "e"}
    assert Settings(**base).log == LogSettings(level="info", format="text")
    assert Settings(**base, log={"level": "debug", "format": "json"}).log.format == "json"
    with pytest.raises(ValidationError, match="log.format"):
        Settings(**base, log={"format": "xml"})
