"""Secrets and files (issue 17): keys from files and environment variables, example keys refused, keys redacted
from logs."""

from __future__ import annotations

import logging

import pytest

from service.serving import RedactSecretsFilter, redact
from service.settings import EXAMPLE_KEYS, Settings, hash_api_key

KEY = "a-real-secret-key-0123456789"


def _settings(tmp_path, **key):
    return Settings(database_path=tmp_path / "c.db", evidence_dir=tmp_path / "e",
                    api_keys=[{"name": "alice", "role": "reviewer", **key}])


def test_keys_from_a_file_or_an_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "alice.key").write_text(KEY + "\n")
    monkeypatch.setenv("SW_ALICE_KEY", KEY)
    for key in ({"key_file": str(tmp_path / "alice.key")}, {"key_env": "SW_ALICE_KEY"}, {"key": KEY}):
        assert _settings(tmp_path, **key).api_keys[0].key_sha256 == hash_api_key(KEY)


@pytest.mark.parametrize("key, message", [
    ({"key_file": "/nonexistent/alice.key"}, "key_file: cannot read /nonexistent/alice.key"),
    ({"key_env": "SW_NOT_SET_ANYWHERE"}, "key_env: the environment variable SW_NOT_SET_ANYWHERE is not set"),
    ({"key_env": "not a name"}, "key_env: must be an environment variable name"),
    ({"key": KEY, "key_env": "SW_ALICE_KEY"}, "give one of key, key_env"),
    ({"key": EXAMPLE_KEYS[0]}, "example key of examples/settings.yaml"),
    ({"key": EXAMPLE_KEYS[1]}, "example key of examples/settings.yaml"),
])
def test_bad_key_sources_and_example_keys_are_refused_with_a_clear_message(tmp_path, key, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _settings(tmp_path, **key)


def test_the_shipped_example_settings_are_refused_at_start(tmp_path):
    import yaml
    from pathlib import Path

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "settings.yaml").read_text())
    with pytest.raises(ValueError, match="example key"):
        Settings.model_validate(raw)


def test_outbox_secrets_from_files_and_environment(tmp_path, monkeypatch):
    (tmp_path / "hook.secret").write_text("s" * 32)
    monkeypatch.setenv("SW_OPEN311_KEY", "city-key")
    settings = Settings(database_path=tmp_path / "c.db", evidence_dir=tmp_path / "e", outbox={
        "webhook": {"url": "https://city.example/hook", "secret_file": str(tmp_path / "hook.secret")},
        "open311": {"endpoint": "https://city.example/open311/v2", "api_key_env": "SW_OPEN311_KEY"}})
    assert settings.outbox.webhook.secret == "s" * 32 and settings.outbox.open311.api_key == "city-key"


@pytest.mark.parametrize("line, expected", [
    ('127.0.0.1:5 - "GET /?key=s3cret HTTP/1.1" 200', '127.0.0.1:5 - "GET /?key=[redacted] HTTP/1.1" 200'),
    ("GET /review?case=4&key=abc&x=1", "GET /review?case=4&key=[redacted]&x=1"),
    ("GET /x?api_key=abc", "GET /x?api_key=[redacted]"),
    ("GET /api/v1/flights/f1/shared/tok123/report.html", "GET /api/v1/flights/f1/shared/[redacted]/report.html"),
    ("GET /api/v1/cases?monkey=1", "GET /api/v1/cases?monkey=1"),
])
def test_redaction(line, expected):
    assert redact(line) == expected


def test_the_access_log_filter_rewrites_uvicorn_records(caplog):
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/?key={KEY}", "1.1", 200), None)
    assert RedactSecretsFilter().filter(record)
    assert KEY not in record.getMessage() and "key=[redacted]" in record.getMessage()
