"""Changing the camera configuration while the service runs: validate the whole file, write it back atomically.

Every change made through the API (zones, camera create / update / delete) is applied to a plain copy of the
configuration, validated as a whole `AppConfig` (so every cross-field check runs: unique camera and zone ids,
rules that name existing zones, ...), and only a fully valid result replaces the old one. Problems are
reported relative to the camera being changed (``zones[0].polygon``, ``timezone``) so the API can name the
field of the request body.

`write_config_file` writes the result back to the configuration file (``settings.config_path``) through a
temporary file in the same folder and `os.replace`, so a crash leaves either the old or the new file, never a
half-written one. Comments of a hand-written YAML file are not kept (the file is rewritten from the validated
model, with a header saying so); keys the author set explicitly are kept and defaults stay implicit, so the
file reads back to exactly the same configuration.

Example:
    >>> raw = config_document(AppConfig(config_version=1))
    >>> raw["cameras"].append({"id": "gate-1", "source": "push", "timezone": "Asia/Shanghai"})
    >>> validate_config(raw).cameras[0].id
    'gate-1'
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from service.config import AppConfig, ConfigError, format_validation_error, parse_config

__all__ = ["ConfigRejected", "config_document", "problems_relative_to", "render_config", "validate_config",
           "write_config_file"]


class ConfigRejected(ValueError):
    """A changed configuration is invalid.

    Attributes:
        problems: ``(field, reason)`` pairs; fields are relative to the prefix given to `validate_config`.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in self.problems))


def problems_relative_to(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """``(field, reason)`` per problem of `exc`, with `prefix` (e.g. ``cameras[2].``) removed from the fields.

    Example:
        >>> try:
        ...     AppConfig.model_validate({"config_version": 1, "cameras": [{"id": "c", "source": "push",
        ...                               "timezone": "Mars/Olympus"}]})
        ... except ValidationError as exc:
        ...     problems_relative_to(exc, "cameras[0].")[0][0]
        'timezone'
    """
    problems = []
    for line in format_validation_error(exc):
        path, _, reason = line.partition(": ")
        problems.append((path.removeprefix(prefix) if prefix else path, reason))
    return problems


def validate_config(raw: dict[str, Any], prefix: str = "") -> AppConfig:
    """`raw` (a `config_document` with changes) validated as a whole configuration.

    Raises:
        ConfigRejected: With every problem, fields relative to `prefix`.
    """
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigRejected(problems_relative_to(exc, prefix)) from None


def config_document(config: AppConfig) -> dict[str, Any]:
    """The configuration as plain JSON-able data, with only the keys that were set explicitly.

    Defaults stay implicit on purpose: a camera's ``rules`` and ``tracker`` override only the keys they set
    (see `AppConfig.rules_for`), so dumping every default would turn the top-level defaults off for them.
    """
    data = config.model_dump(mode="json", exclude_unset=True)
    data.setdefault("cameras", [])  # present even when the file had none, so edits can append to it
    return data


class _Dumper(yaml.SafeDumper):
    """Short lists of plain values (points, days) in flow style: ``[0.1, 0.2]``, one point per line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, (list, dict)) for item in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def render_config(config: AppConfig, path: Path, note: str = "") -> str:
    """The text of a configuration file for `config`: JSON for ``.json``, YAML otherwise."""
    data = config_document(config)
    if path.suffix.lower() == ".json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    header = (f"# streetwatch configuration, rewritten by the service at {stamp}{' (' + note + ')' if note else ''}.\n"
              "# Changes made through the API are written here; comments of a hand-written file are not kept.\n"
              "# Check it with: streetwatch config validate FILE\n")
    return header + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)


def write_config_file(path: Path | str, config: AppConfig, note: str = "") -> None:
    """Write `config` to `path` atomically (temporary file in the same folder, fsync, `os.replace`).

    The text is read back and validated before it replaces the file, so the service never leaves a file
    behind that it could not start from. The file keeps the permissions of the one it replaces (it may hold
    stream credentials).

    Raises:
        OSError: The file could not be written (the old file is left as it was).
        ConfigError: The rendered text does not read back to the same configuration (a bug; nothing written).
    """
    path = Path(path)
    text = render_config(config, path, note)
    parsed = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    reloaded = parse_config(parsed, str(path))
    if reloaded != config or config_document(reloaded) != config_document(config):
        raise ConfigError(str(path), ["the rewritten file does not read back to the same configuration"])
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
