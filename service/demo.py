"""`streetwatch demo`: the whole service on embedded defaults, on one machine, with nothing to configure.

What it sets up, all under one data folder (default ``$XDG_DATA_HOME/streetwatch/demo``, i.e.
``~/.local/share/streetwatch/demo``):

- ``clips/<scenario>/``: a scenario clip (`datasets.synth.scenario`) rendered once and kept; its ground-truth
  timeline gives the camera's zones and dwell times (`config_for_timeline`).
- ``config.yaml``: one camera whose source is that clip, played in real time and looping (a file camera in
  `service.workers`), the shipped ``street`` model; kept on later runs while it still plays that clip (camera
  and zone edits through the API are written back to it), written anew with ``fresh``.
- ``keys.json`` (mode 0600): a demo admin key and a demo reviewer key, made once and kept, so a reviewer's
  browser tab stays signed in across restarts; ``settings.yaml`` holds only their SHA-256.
- ``settings.yaml`` (rewritten on each run): SQLite file ``cases.sqlite3``, ``evidence/``, the keys; a valid
  file for ``streetwatch serve --settings`` as well.
- ``cases.sqlite3`` and ``evidence/``: emptied at the start of each run unless ``keep`` (``--keep``).

Why each run starts without cases: a run plays its clip from the start, so the stall sets up again where it
stood at the end of the last run. The service (rightly, for a real street) joins a thing found again within the
dedupe cooldown to its case, even a confirmed or rejected one, so a second run would show the reviewer nothing
new and ``--exit-after-cases`` would wait for ever. With ``keep`` the earlier cases stay and that joining is
deliberate: the exit condition then counts the cases *touched in this run* (made, or found again: a violation
of this run attached to them), and the stopped time between runs is not counted as dwell (`detector.rules`).

Then it runs the same app as ``streetwatch serve`` (`service.app.create_app`: API, review page, camera worker,
outbox) under uvicorn and prints the review page's address, the same address with the reviewer key
(``/#key=...``, which signs the browser tab in; a fragment never reaches the server, so the key stays out of
its access log), the reviewer key, and a line for every case that appears.
``exit_after_cases`` / ``timeout_s`` make it usable headless (tests, CI).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import quote

__all__ = ["DEFAULT_SCENARIO", "DemoOptions", "DemoSetup", "default_data_dir", "ensure_keys", "prepare_demo",
           "run_demo"]

DEFAULT_SCENARIO = "stall_2min"
MODEL = "street"
EXIT_OK, EXIT_TIMEOUT, EXIT_USER_ERROR = 0, 1, 2


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/streetwatch/demo`` (``~/.local/share/streetwatch/demo`` when XDG_DATA_HOME is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "streetwatch" / "demo"


@dataclass(frozen=True)
class DemoOptions:
    """What `streetwatch demo` was asked for (see its ``--help``)."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    scenario: str = DEFAULT_SCENARIO
    speed: float = 1.0
    fps: float = 2.0
    seed: int = 0
    fresh: bool = False
    keep: bool = False
    exit_after_cases: int | None = None
    timeout_s: float | None = None
    threads: int = 0


@dataclass(frozen=True)
class DemoSetup:
    """The files `prepare_demo` wrote and what the demo prints."""

    data_dir: Path
    settings_path: Path
    config_path: Path
    database_path: Path
    reviewer_key: str
    admin_key: str
    camera_id: str
    clip_path: Path
    timeline: dict


# --- preparation -------------------------------------------------------------------------------------------

def _clip(opts: DemoOptions, say: Callable[[str], None]) -> tuple[Path, dict]:
    """The scenario clip and its timeline, rendered on first use (the timeline file is written last, so a
    half-rendered clip is rendered again)."""
    from datasets.synth import render_scenario

    folder = opts.data_dir / "clips" / f"{opts.scenario}-seed{opts.seed}-{opts.fps:g}fps"
    video, timeline_path = folder / f"{opts.scenario}.mp4", folder / f"{opts.scenario}.json"
    if not (video.is_file() and timeline_path.is_file()):
        say(f"rendering scenario {opts.scenario} once (cached in {folder}); this takes a minute or two ...")
        started = time.monotonic()
        clip = render_scenario(opts.scenario, folder, seed=opts.seed, fps=opts.fps)
        say(f"rendered {clip.n_frames} frames ({clip.duration_s:.0f} s, {clip.codec}) in "
            f"{time.monotonic() - started:.0f} s")
    return video, json.loads(timeline_path.read_text(encoding="utf-8"))


def ensure_keys(path: Path, prefix: str = "demo-") -> dict[str, str]:
    """An admin and a reviewer key (``{"admin": ..., "reviewer": ...}``) kept in `path`, made once; the file is
    readable by its owner only (`streetwatch demo`, and `streetwatch serve --config` without settings)."""
    if path.is_file():
        try:
            keys = json.loads(path.read_text(encoding="utf-8"))
            if all(isinstance(keys.get(k), str) and len(keys[k]) >= 16 for k in ("admin", "reviewer")):
                return keys
        except ValueError:
            pass
    keys = {"admin": f"{prefix}admin-{secrets.token_urlsafe(18)}",
            "reviewer": f"{prefix}reviewer-{secrets.token_urlsafe(18)}"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(keys, out, indent=1)
    return keys


def _kept_camera(config_path: Path, source: str) -> str | None:
    """The id of the camera playing `source` in an existing, valid ``config.yaml`` (None: write a new one)."""
    from service.config import ConfigError, load_config

    if not config_path.is_file():
        return None
    try:
        config = load_config(config_path)
    except (ConfigError, OSError, ValueError):
        return None
    return next((c.id for c in config.cameras if c.source == source), None)


def _write_yaml(path: Path, data: dict, header: str) -> None:
    import yaml

    path.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def prepare_demo(opts: DemoOptions, say: Callable[[str], None] = print) -> DemoSetup:
    """Create the data folder, the clip, the keys, ``config.yaml`` and ``settings.yaml`` (rewritten each run).

    Without ``keep`` the case database and evidence of earlier runs are removed first (see the module docstring);
    ``fresh`` also writes ``config.yaml`` anew.

    Raises:
        ValueError: Unknown scenario, ``fresh`` with ``keep``, or a data folder whose path a camera URL cannot
            hold.
    """
    from datasets.synth import SCENARIOS
    from datasets.synth.scenario_eval import config_for_timeline
    from service.config import load_config
    from service.settings import Settings, hash_api_key

    if opts.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {opts.scenario!r} (known: {', '.join(SCENARIOS)})")
    if opts.fresh and opts.keep:
        raise ValueError("--fresh and --keep exclude each other (--fresh removes the cases and rewrites config.yaml)")
    data_dir = opts.data_dir.expanduser().resolve()
    if any(c.isspace() for c in str(data_dir)):
        raise ValueError(f"--data-dir {data_dir}: the path must not contain spaces (it goes into a file:// URL)")
    data_dir.mkdir(parents=True, exist_ok=True)
    opts = replace(opts, data_dir=data_dir)
    database_path, evidence_dir = data_dir / "cases.sqlite3", data_dir / "evidence"
    if not opts.keep:
        if database_path.is_file():
            say(f"demo: starting without cases (those of earlier runs are removed from {data_dir}; --keep keeps "
                f"them)")
        for name in ("cases.sqlite3", "cases.sqlite3-wal", "cases.sqlite3-shm", "cases.sqlite3-journal"):
            (data_dir / name).unlink(missing_ok=True)
        shutil.rmtree(evidence_dir, ignore_errors=True)
    video, timeline = _clip(opts, say)
    keys = ensure_keys(data_dir / "keys.json")

    config_path, settings_path = data_dir / "config.yaml", data_dir / "settings.yaml"
    source = video.resolve().as_uri()
    camera_id = _kept_camera(config_path, source) if not opts.fresh else None
    if camera_id is not None:
        say(f"demo: keeping {config_path} (camera and zone edits made through the API stay; --fresh rewrites it)")
    else:
        config = config_for_timeline(timeline, MODEL)
        camera = config["cameras"][0]
        camera.update(name=f"demo camera (scenario {opts.scenario})", source=source,
                      address="streetwatch demo street")
        camera_id = camera["id"]
        _write_yaml(config_path, config,
                    f"# Written by `streetwatch demo`: one camera playing the {opts.scenario} clip, zones from its "
                    f"timeline.\n# Kept while it plays this clip (edits through the API are written back here); "
                    f"--fresh writes it anew.\n")
    settings = {
        "database_path": str(database_path),
        "evidence_dir": str(evidence_dir),
        "config_path": str(config_path),
        "api_keys": [{"name": "demo-admin", "role": "admin", "key_sha256": hash_api_key(keys["admin"])},
                     {"name": "demo-reviewer", "role": "reviewer", "key_sha256": hash_api_key(keys["reviewer"])}],
        "inference_threads": opts.threads,
        "file_camera_speed": opts.speed,
    }
    _write_yaml(settings_path, settings,
                "# Written by `streetwatch demo` (rewritten on each run); also valid for\n"
                f"#   streetwatch serve --settings {settings_path}\n"
                "# The plain keys are in keys.json beside this file. To post confirmed cases to a case system, "
                "copy this\n# file, add an outbox section (webhook: {url, secret} or open311: {endpoint, api_key}) "
                "and public_base_url\n# (the address the case system reaches for evidence links), and serve it.\n")
    Settings.model_validate(settings)  # what the app will load; fails here with the field named
    load_config(config_path)
    return DemoSetup(data_dir=data_dir, settings_path=settings_path, config_path=config_path,
                     database_path=database_path, reviewer_key=keys["reviewer"], admin_key=keys["admin"],
                     camera_id=camera_id, clip_path=video, timeline=timeline)


# --- running -----------------------------------------------------------------------------------------------

def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class _Monitor:
    """Watches the running app from a thread: prints the banner once the server is up, a line for each case
    touched in this run (made, or found again: a violation of this run attached to it) and each decision, and
    stops the server when enough cases were touched or the time is up."""

    def __init__(self, server: Any, app: Any, setup: DemoSetup, opts: DemoOptions, out: TextIO):
        self.server, self.setup, self.opts, self.out = server, setup, opts, out
        self.services = app.state.services
        self.base_url = f"http://{_url_host(opts.host)}:{opts.port}"
        self.result: int | None = None
        self.message = ""
        self.new_cases = 0
        self.touched_cases = 0
        self._statuses: dict[int, str] = {}
        self._errors_seen: set[str] = set()
        self._start_id = self._max_case_id()
        # A violation attached from now on is this run's (CaseViolation.attached_at is the store's UTC clock).
        self._started_at = datetime.now(timezone.utc)

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _max_case_id(self) -> int:
        from sqlalchemy import func, select

        from service.db.models import Case

        with self.services.session_factory() as session:
            return int(session.scalar(select(func.max(Case.id))) or 0)

    def signed_in_url(self) -> str:
        """The review page's address with the reviewer key (``/#key=...``): opening it signs the tab in. The key
        rides in the fragment, which browsers never send, so it cannot reach the access log."""
        return f"{self.base_url}/#key={quote(self.setup.reviewer_key, safe='')}"

    def banner(self) -> None:
        s, o = self.setup, self.opts
        expected = s.timeline.get("expected_violations") or []
        due = min((v["due_s"] for v in expected), default=None)
        loop_s = float(s.timeline["duration_s"])
        lines = [
            "",
            "streetwatch demo is running (Ctrl-C stops it)",
            f"  review page:   {self.base_url}/   sign in with the reviewer key below, or open",
            f"  signed in:     {self.signed_in_url()}",
            "                 (the page keeps the key for this tab and removes it from the address bar)",
            f"  reviewer key:  {s.reviewer_key}",
            f"  admin key:     {s.admin_key}   (cameras, zones, outbox; API docs at {self.base_url}/docs)",
            f"  camera:        {s.camera_id}, the {o.scenario} scenario ({loop_s:.0f} s, looping"
            f"{'' if o.speed == 1 else f', {o.speed:g}x speed'}), model {MODEL}",
            f"  data:          {s.data_dir}  (cases.sqlite3, evidence/, settings.yaml, config.yaml, keys.json)",
            "  outbox:        off: confirmed cases stay in the database. To post them to a case system, add an",
            "                 outbox section (webhook or open311) to a copy of settings.yaml and run",
            f"                 streetwatch serve --settings <that file> --port {o.port}",
        ]
        if due is not None:
            lines.append(f"  first case:    expected about {due / o.speed:.0f} s after the camera starts "
                         f"(the scenario's first violation is due at {due:.0f} s of the clip)")
        self.say("\n".join(lines) + "\n")

    def _poll(self) -> None:
        from sqlalchemy import or_, select

        from service.db.models import Case, CaseViolation

        this_run = select(CaseViolation.case_id).where(CaseViolation.attached_at >= self._started_at)
        with self.services.session_factory() as session:
            rows = session.execute(select(Case.id, Case.kind, Case.zone_id, Case.camera_id, Case.status)
                                   .where(or_(Case.id > self._start_id, Case.id.in_(this_run)))
                                   .order_by(Case.id)).all()
        for case_id, kind, zone_id, camera_id, status in rows:
            before = self._statuses.get(case_id)
            if before is None:
                self.touched_cases += 1
                if case_id > self._start_id:
                    self.new_cases += 1
                    self.say(f"case {case_id}: {kind} in zone {zone_id} (camera {camera_id}), {status}; "
                             f"review it at {self.base_url}/")
                else:
                    self.say(f"case {case_id} (from an earlier run): {kind} in zone {zone_id} (camera {camera_id}) "
                             f"found again and joined to it, {status}; review it at {self.base_url}/")
            elif before != status:
                self.say(f"case {case_id}: {before} -> {status}")
            self._statuses[case_id] = status
        for camera_id, runtime in list(self.services.runtimes.items()):
            error = runtime.last_error
            if error and error not in self._errors_seen:
                self._errors_seen.add(error)
                self.say(f"camera {camera_id}: {runtime.state}: {error}")

    def _camera_line(self) -> str:
        runtime = self.services.runtimes.get(self.setup.camera_id)
        if runtime is None:
            return f"camera {self.setup.camera_id}: starting"
        ms = runtime.median_inference_ms()
        return (f"camera {self.setup.camera_id}: {runtime.state}, {runtime.frames_processed} frames analysed"
                f"{'' if ms is None else f', inference {ms:.0f} ms'}, {self.new_cases} new cases"
                f"{'' if self.touched_cases == self.new_cases else f', {self.touched_cases} touched'}")

    def _stop(self, result: int, message: str = "") -> None:
        self.result, self.message = result, message
        self.server.should_exit = True

    def run(self) -> None:
        started = time.monotonic()
        while not self.server.started:
            if self.server.should_exit or time.monotonic() - started > 120:
                return
            time.sleep(0.1)
        self.banner()
        first_frame_said = False
        last_status = time.monotonic()
        while not self.server.should_exit:
            try:
                self._poll()
            except Exception as exc:  # a locked database for a moment: the next poll sees it
                self.say(f"demo: cannot read cases: {exc}")
            runtime = self.services.runtimes.get(self.setup.camera_id)
            if not first_frame_said and runtime is not None and runtime.frames_processed:
                first_frame_said = True
                self.say(f"camera {self.setup.camera_id}: streaming, first frame analysed "
                         f"({time.monotonic() - started:.0f} s after start)")
            now = time.monotonic()
            if now - last_status >= 30:
                last_status = now
                self.say(self._camera_line())
            n = self.opts.exit_after_cases
            if n is not None and self.touched_cases >= n:
                again = self.touched_cases - self.new_cases
                self._stop(EXIT_OK, f"demo: {self.new_cases} case(s) created"
                                    f"{f' and {again} found again' if again else ''} in this run; exiting "
                                    f"(--exit-after-cases {n})")
                return
            if self.opts.timeout_s is not None and now - started >= self.opts.timeout_s:
                if n is None:
                    self._stop(EXIT_OK, f"demo: ran {self.opts.timeout_s:g} s (--timeout-s); exiting")
                else:
                    self._stop(EXIT_TIMEOUT, f"streetwatch: error: demo: timed out after {self.opts.timeout_s:g} s "
                                             f"with {self.touched_cases} of {n} case(s); {self._camera_line()}")
                return
            time.sleep(1.0)


def run_demo(opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Prepare the data folder and run the service until Ctrl-C, or until `exit_after_cases` / `timeout_s`.

    Returns:
        0 (stopped, or enough cases), 1 (timed out waiting for cases), 2 (the port is taken).
    """
    import logging

    import uvicorn

    from service.app import create_app
    from service.config import load_config
    from service.settings import Settings

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    if not _port_free(opts.host, opts.port):
        print(f"streetwatch: error: demo: port {opts.port} on {opts.host} is in use (choose another with --port)",
              file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    setup = prepare_demo(opts, say)
    import yaml

    settings = Settings.model_validate(yaml.safe_load(setup.settings_path.read_text(encoding="utf-8")))
    if not logging.getLogger().handlers:  # `streetwatch demo` set logging up already (service.logging_setup)
        from service.logging_setup import configure_logging

        configure_logging("warning")
    app = create_app(settings, load_config(setup.config_path))
    from service.serving import uvicorn_config

    # No log_level: the root logger's level (--log-level) decides for uvicorn's loggers too.
    server = uvicorn.Server(uvicorn_config(app, settings, opts.host, opts.port, access_log=False))
    monitor = _Monitor(server, app, setup, opts, out)
    earlier = monitor._start_id
    if earlier:
        say(f"demo: {earlier} case(s) from earlier runs are in {setup.database_path} (--keep): a thing found "
            f"again joins its case, and --exit-after-cases counts the cases made or found again in this run")
    say(f"demo: starting the service on {monitor.base_url} ...")
    thread = threading.Thread(target=monitor.run, name="demo-monitor", daemon=True)
    thread.start()
    server.run()
    thread.join(5)
    if monitor.result is None:
        if not server.started:
            print(f"streetwatch: error: demo: the server did not start on {opts.host}:{opts.port}", file=sys.stderr,
                  flush=True)
            return EXIT_USER_ERROR
        say("demo: stopped")
        return EXIT_OK
    print(monitor.message, file=sys.stderr if monitor.result else out, flush=True)
    return monitor.result
