"""Changing the camera configuration while the service runs: validate the whole file, write it back atomically.

Every change made through the API (zones, camera create / update / delete) is applied to a plain copy of the
configuration, validated as a whole `AppConfig` (so every cross-field check runs: unique camera and zone ids,
rules that name existing zones, ...), and only a fully valid result replaces the old one. Problems are
reported relative to the camera being changed (``zones[0].polygon``, ``timezone``) so the API can name the
field of the request body.

`write_config_file` writes the result back to the configuration file (``settings.config_path``) through a
temporary file in the same folder and `os.replace`, so a crash leaves either the old or the new file, never a
half-written one. A YAML file that exists is edited in place with ruamel.yaml's round-trip mode
(`merge_into_yaml`): the operator's comments, key order, quoting, number spelling and indentation survive; only
the values that changed are replaced, list items with an ``id`` (cameras, zones) are matched by id so their
comments move with them, and a one-line stamp at the top says what the service changed last. Keys the author
set explicitly are kept and defaults stay implicit, so the file reads back to exactly the same configuration.
Known limit: ruamel.yaml keeps a comment line that stands between two list items with the item above it, so
a heading comment above a removed or reordered camera can end up above its neighbour (or be dropped with it).

Example:
    >>> raw = config_document(AppConfig(config_version=1))
    >>> raw["cameras"].append({"id": "gate-1", "source": "push", "timezone": "Asia/Shanghai"})
    >>> validate_config(raw).cameras[0].id
    'gate-1'
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelYAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from service.config import AppConfig, ConfigError, format_validation_error, parse_config

__all__ = ["STAMP_PREFIX", "ConfigRejected", "config_document", "merge_into_yaml", "problems_relative_to",
           "render_config", "validate_config", "write_config_file"]

# The first line of a file the service changed; replaced (not stacked) on every later change.
STAMP_PREFIX = "# streetwatch: last changed by the service"


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


def _round_trip_yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True  # "0504" stays double-quoted, '07:00' single-quoted
    rt.width = 4096  # never re-fold the operator's long lines (names, URLs)
    rt.allow_unicode = True  # 漕溪北路, not "\u6F15..."
    return rt


def _fresh(value: Any) -> Any:
    """Plain data as ruamel nodes; short lists of values or points in flow style: ``[[0.1, 0.2], [0.3, 0.4]]``."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _fresh(item)
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(item) for item in value)
        if len(value) <= 16 and all(_plain_or_point(item) for item in value):
            seq.fa.set_flow_style()  # one line, as examples/config.yaml writes polygons and days
        return seq
    return value


def _plain_or_point(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) <= 3 and not any(isinstance(item, (list, dict)) for item in value)
    return not isinstance(value, dict)


def _scalar_kind(value: Any) -> str:
    # ruamel loads booleans as ScalarBoolean (an int subclass) and keeps 30 (int) where the model says 30.0:
    # compare by kind so `true` never stands in for 1 and `30` is kept for 30.0.
    if isinstance(value, (bool, ScalarBoolean)):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__ if not isinstance(value, str) else "str"


def _by_id(items: list[Any]) -> dict[Any, int] | None:
    """Index of each item by its ``id`` when every item is a mapping with a unique id (cameras, zones)."""
    if not all(isinstance(item, dict) and "id" in item for item in items):
        return None
    index = {item["id"]: i for i, item in enumerate(items)}
    return index if len(index) == len(items) else None


def _merge(old: Any, new: Any, added: list[tuple[CommentedMap, Any]]) -> Any:
    """`new` (plain data) written over the round-trip node `old`, keeping `old`'s unchanged parts as they are.

    Keys added to mappings that already existed are recorded in `added` (see `_drop_implied_keys`).
    """
    if isinstance(new, dict) and isinstance(old, CommentedMap):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            if key in old:
                merged = _merge(old[key], value, added)
                if merged is not old[key]:
                    old[key] = merged  # assignment keeps the key's comments (ca.items[key])
            else:
                old[key] = _fresh(value)  # a new key goes after the operator's keys
                added.append((old, key))
        return old
    if isinstance(new, list) and isinstance(old, CommentedSeq):
        new_ids, old_ids = _by_id(new), _by_id(old)
        if new_ids is not None and old_ids is not None and new:
            # Cameras and zones: match by id, so an item's comments (held by the sequence at the item's index)
            # move with the item when others are added, removed or reordered.
            items, comments = [], []
            for item in new:
                i = old_ids.get(item["id"])
                items.append(_fresh(item) if i is None else _merge(old[i], item, added))
                comments.append(None if i is None else old.ca.items.get(i))
            list.__delitem__(old, slice(None))
            old.ca.items.clear()
            list.extend(old, items)
            for j, comment in enumerate(comments):
                if comment is not None:
                    old.ca.items[j] = comment
            return old
        for i, value in enumerate(new[:len(old)]):
            merged = _merge(old[i], value, added)
            if merged is not old[i]:
                old[i] = merged
        for i in range(len(old) - 1, len(new) - 1, -1):
            del old[i]  # CommentedSeq drops and shifts the comments of removed items
        for value in new[len(old):]:
            old.append(_fresh(value))
        return old
    if isinstance(new, (dict, list)) or isinstance(old, (dict, list)):
        return _fresh(new)
    if old == new and _scalar_kind(old) == _scalar_kind(new):
        return old  # the operator's spelling: "0504", 0.50, 30 for 30.0
    return new


def _drop_implied_keys(document: CommentedMap, added: list[tuple[CommentedMap, Any]], config: AppConfig) -> None:
    """Remove each added key that the model fills in by itself (e.g. the national category codes).

    Without this the first API edit would write such defaults into the operator's file. A key stays when
    leaving it out changes the configuration or what was set explicitly.
    """
    want = config_document(config)
    for parent, key in reversed(added):
        value = parent[key]
        position = list(parent).index(key)
        del parent[key]
        try:
            again = AppConfig.model_validate(_plain(document))
        except ValidationError:
            again = None
        if again is None or again != config or config_document(again) != want:
            parent.insert(position, key, value)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _guess_indent(text: str) -> tuple[int, int, int]:
    """``(mapping, sequence, offset)`` indentation of a block YAML file, for ruamel's `YAML.indent`.

    Hand-written because ruamel's ``load_yaml_guess_indent`` is misled by a key with a trailing comment
    (``schedule:  # note`` guesses 6/4 for the 2/4/2 file in examples/config.yaml).
    """
    mapping = sequence = offset = None
    previous: tuple[int, str] | None = None  # (column, text) of the last key-only line such as ``cameras:``
    for line in text.splitlines():
        body = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not body.strip():
            continue
        column = len(body) - len(body.lstrip())
        content = body.lstrip()
        if previous is not None and (column > previous[0] or (column == previous[0] and content.startswith("- "))):
            if content.startswith("- ") and sequence is None:  # "c:\n- x" (offset 0) is valid YAML too
                offset = column - previous[0]
                sequence = offset + 2 + len(content[2:]) - len(content[2:].lstrip())
            elif not content.startswith("- ") and mapping is None:
                mapping = column - previous[0]
        previous = (column, content) if content.endswith(":") else None
        if mapping is not None and sequence is not None:
            break
    return mapping or 2, sequence or 4, 2 if offset is None else offset


def _stamp(note: str) -> str:
    stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return f"{STAMP_PREFIX} at {stamp}{' (' + note + ')' if note else ''}. Check: streetwatch config validate FILE\n"


def merge_into_yaml(existing_text: str, config: AppConfig, note: str = "") -> str:
    """`existing_text` (a YAML configuration) edited to hold `config`, with its comments and layout kept.

    Args:
        existing_text: The file as it is now.
        config: The configuration the file must hold afterwards.
        note: What changed and who changed it, for the stamp line at the top.

    Returns:
        The new text: the stamp line, then the operator's file with only the changed values replaced.

    Raises:
        ValueError: `existing_text` is not YAML holding a mapping (the caller renders a fresh file instead).

    Example:
        >>> text = "# my cameras\\nconfig_version: 1  # keep\\ncameras: []\\n"
        >>> print(merge_into_yaml(text, AppConfig(config_version=1)).split("\\n", 1)[1], end="")
        # my cameras
        config_version: 1  # keep
        cameras: []
    """
    lines = existing_text.splitlines(keepends=True)
    if lines and lines[0].startswith(STAMP_PREFIX):
        existing_text = "".join(lines[1:])
    try:
        rt = _round_trip_yaml()
        document = rt.load(existing_text)
    except RuamelYAMLError as exc:
        raise ValueError(f"cannot parse the existing YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, CommentedMap):
        raise ValueError(f"the existing file holds {type(document).__name__}, not a mapping")
    mapping, sequence, offset = _guess_indent(existing_text)
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)  # ruamel has one indentation per file
    added: list[tuple[CommentedMap, Any]] = []
    _merge(document, config_document(config), added)
    _drop_implied_keys(document, added, config)
    out = io.StringIO()
    rt.dump(document, out)
    return _stamp(note) + out.getvalue()


def render_config(config: AppConfig, path: Path, note: str = "", existing_text: str | None = None) -> str:
    """The text of a configuration file for `config`: JSON for ``.json``, YAML otherwise.

    With `existing_text` (the YAML file as it is now) the file is edited in place (`merge_into_yaml`); without
    it a fresh file is written.

    Raises:
        ValueError: `existing_text` is not a YAML mapping that ruamel.yaml can read.
    """
    data = config_document(config)
    if path.suffix.lower() == ".json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if existing_text is not None and existing_text.strip():
        return merge_into_yaml(existing_text, config, note)
    rt = _round_trip_yaml()
    rt.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    rt.dump(_fresh(data), out)
    return _stamp(note) + out.getvalue()


def write_config_file(path: Path | str, config: AppConfig, note: str = "") -> None:
    """Write `config` to `path` atomically (temporary file in the same folder, fsync, `os.replace`).

    The text is read back and validated before it replaces the file, so the service never leaves a file
    behind that it could not start from. The file keeps the permissions of the one it replaces (it may hold
    stream credentials).

    Raises:
        OSError: The file could not be written (the old file is left as it was).
        ConfigError: The existing YAML file cannot be edited in place, or the rendered text does not read back
            to the same configuration (a bug); nothing is written.
    """
    path = Path(path)
    try:
        existing_text: str | None = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        existing_text = None
    try:
        text = render_config(config, path, note, existing_text)
    except ValueError as exc:  # never overwrite (and so lose) an operator's file that could not be edited
        raise ConfigError(str(path), [f"cannot edit the existing file in place: {exc}"]) from None
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
