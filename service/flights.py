"""Drone flights as background jobs of the service: the ``flights`` rows (`FlightStore`) and the job thread
(`FlightWorker`).

A flight is submitted through ``POST /api/v1/flights`` (an upload, or a server path an admin names): its input
lands under ``<flights_dir>/<flight_id>/input/`` and a row is created ``queued``. One `FlightWorker` thread
per service runs the oldest queued flight (`service.drone.run_flight`, output in
``<flights_dir>/<flight_id>/out/``), writes its progress to the row at most once per
``progress_interval_s``, turns its violations into cases (`service.drone.ingest_flight`), writes the report
again with links to those cases, and ends the row ``done``, ``failed`` (one line: why) or ``cancelled``.

One flight at a time, on few inference threads: the camera workers keep their pace (a process-wide
``os.nice`` would slow them too, so the worker only limits its threads).

Restart: a flight left ``running`` by a service that was killed goes back to ``queued`` when the worker starts
and runs again from scratch (its output folder is rewritten; `ingest_flight` is idempotent, so no case is
duplicated). A service that shuts down cleanly puts its running flight back to ``queued`` the same way. Hence
one process per database runs flights (``settings.run_flights``; others serve the API with it off). A cancel
asked for while the flight runs (``cancel_requested``) is polled with each progress write, so it also reaches a
worker in another process.

Example:
    >>> store = FlightStore(session_factory)                                     # doctest: +SKIP
    >>> job = store.create(new_flight_id(), name="Rooftops", input=FlightSource(video="/d/f.mp4", srt="/d/f.SRT"),
    ...                    created_by="pilot-1")                                # doctest: +SKIP
    >>> worker = FlightWorker(store, cases, lambda: config, Path("/var/sw/flights")).start()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detector.errors import StreetwatchError
from detector.sources.base import one_line
from service.db.models import FLIGHT_STATUSES, Case, Flight

if TYPE_CHECKING:
    from service.cases import CaseStore
    from service.config import AppConfig
    from service.drone import FlightInput, FlightProgress, FlightResult

__all__ = ["ACTIVE_STATUSES", "CASE_URL", "FINAL_STATUSES", "FlightError", "FlightJob", "FlightNotFoundError",
           "FlightSource", "FlightStateError", "FlightStore", "FlightWorker", "ReportLinks", "StillsError",
           "extract_stills", "flight_file", "new_flight_id", "remove_flight_dir"]

log = logging.getLogger("streetwatch.flights")

ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("done", "failed", "cancelled")
assert set(ACTIVE_STATUSES + FINAL_STATUSES) == set(FLIGHT_STATUSES)
CASE_URL = "/review?case={case_id}"
"""Where a flight report served by the service links each finding's case (the review page opens it)."""
STILL_SUFFIXES = (".jpg", ".jpeg")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_flight_id(now: datetime | None = None) -> str:
    """A new flight id: ``flight-YYYYMMDD-HHMMSS-xxxxxx`` (UTC time and 24 random bits; sorts by time).

    Example:
        >>> new_flight_id(datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc))[:23]
        'flight-20260601-080000-'
    """
    now = now or utc_now()
    return f"flight-{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class FlightError(StreetwatchError):
    """A flight request that cannot be done."""


class FlightNotFoundError(FlightError):
    """No flight with this id."""


class FlightStateError(FlightError):
    """The flight is not in a status that allows this (e.g. cancelling a finished flight)."""


class StillsError(FlightError):
    """A zip of stills that cannot be used (not a zip, no JPEG, too large)."""


@dataclass(frozen=True)
class FlightSource:
    """What a flight job reads (server paths): a video and its SRT, or a folder of geotagged stills.

    Attributes:
        video: The video file.
        srt: Its DJI SRT sidecar (None: found beside the video by name).
        stills: A folder of geotagged JPEG stills (instead of a video).
    """

    video: str | None = None
    srt: str | None = None
    stills: str | None = None

    def __post_init__(self) -> None:
        if (self.video is None) == (self.stills is None):
            raise ValueError("flight source: give a video or a stills folder, not both or neither")
        if self.srt is not None and self.video is None:
            raise ValueError("flight source: an SRT goes with a video")

    def to_json(self) -> dict[str, str | None]:
        return {"video": self.video, "srt": self.srt, "stills": self.stills}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FlightSource":
        return cls(video=data.get("video"), srt=data.get("srt"), stills=data.get("stills"))

    def flight_input(self) -> "FlightInput":
        """The drone job's input (the files are checked again: they may have gone since the upload).

        Raises:
            service.drone.FlightInputError: A file is missing or is not a video / SRT / folder.
        """
        from service.drone import FlightInput

        if self.stills is not None:
            return FlightInput.from_path(self.stills)
        return FlightInput.from_path(self.video, self.srt)

    def display_name(self) -> str:
        """The file or folder name, without the server's folders."""
        return Path(self.video or self.stills or "").name


@dataclass(frozen=True)
class FlightJob:
    """One flight row as the API and the worker see it (a snapshot).

    Attributes:
        id: The flight id.
        name: Human-readable name.
        status: One of `service.db.models.FLIGHT_STATUSES`.
        source: The video file or stills folder (server path).
        input: What the job reads (None for a flight that was only met through ingest).
        created_by: The API key holder who submitted it.
        stage: The running job's stage (`service.drone.FlightProgress.stage`), None before it starts.
        progress: 0..1 of the job.
        frames_done: Sampled frames analysed.
        frames_total: Sampled frames to analyse (None before sampling).
        findings: Objects found so far (sightings while detecting, findings after the merge).
        eta_s: Estimated seconds left (None when unknown).
        error: Why it failed, one line.
        notes: What the run could not do (partial telemetry, corrupt frames, ...).
        case_ids: The cases its violations opened or updated.
        cancel_requested: A cancel was asked for while it ran.
        attempts: How many times the job started (more than one: it was restarted).
    """

    id: str
    name: str
    status: str
    source: str
    input: FlightSource | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    stage: str | None
    progress: float
    frames_done: int
    frames_total: int | None
    findings: int | None
    eta_s: float | None
    error: str | None
    notes: tuple[str, ...]
    case_ids: tuple[int, ...]
    cancel_requested: bool
    attempts: int
    lat_deg: float | None = None
    lon_deg: float | None = None
    grid_code: str = ""
    timezone: str = "UTC"

    @classmethod
    def from_row(cls, row: Flight) -> "FlightJob":
        return cls(
            id=row.id, name=row.name or "", status=row.status, source=row.source or "",
            input=FlightSource.from_json(row.input) if row.input else None, created_by=row.created_by,
            created_at=row.created_at, updated_at=row.updated_at, started_at=row.started_at, ended_at=row.ended_at,
            stage=row.stage, progress=float(row.progress or 0.0), frames_done=int(row.frames_done or 0),
            frames_total=row.frames_total, findings=row.findings, eta_s=row.eta_s, error=row.error,
            notes=tuple(str(n) for n in (row.notes or ())), case_ids=tuple(int(c) for c in (row.case_ids or ())),
            cancel_requested=bool(row.cancel_requested), attempts=int(row.attempts or 0), lat_deg=row.lat_deg,
            lon_deg=row.lon_deg, grid_code=row.grid_code or "", timezone=row.timezone or "UTC")


class FlightStore:
    """The ``flights`` rows of flight jobs: submit, list, claim, progress, finish, cancel. Each method is one
    transaction.

    Args:
        session_factory: From `service.db.make_session_factory`.
        clock: Wall-clock time (UTC) for the row times.
    """

    def __init__(self, session_factory: sessionmaker[Session], clock: Callable[[], datetime] = utc_now):
        self._sessions = session_factory
        self._clock = clock

    def create(self, flight_id: str, *, input: FlightSource, name: str = "", created_by: str | None = None,
               timezone_name: str = "UTC") -> FlightJob:
        """A new ``queued`` flight.

        Raises:
            FlightStateError: A flight with this id exists already.
        """
        now = self._clock()
        source = input.video or input.stills or ""
        with self._sessions.begin() as session:
            if session.get(Flight, flight_id) is not None:
                raise FlightStateError(f"flight_id: {flight_id!r} exists already")
            row = Flight(id=flight_id, name=name, source=source, status="queued", address="", grid_code="",
                         timezone=timezone_name, frames_done=0, progress=0.0, input=input.to_json(),
                         created_by=created_by, cancel_requested=False, attempts=0, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            return FlightJob.from_row(row)

    def get(self, flight_id: str) -> FlightJob:
        """The flight.

        Raises:
            FlightNotFoundError: No such flight.
        """
        with self._sessions() as session:
            return FlightJob.from_row(self._row(session, flight_id))

    @staticmethod
    def _row(session: Session, flight_id: str) -> Flight:
        row = session.get(Flight, flight_id)
        if row is None:
            raise FlightNotFoundError(f"flight_id: no flight {flight_id!r}")
        return row

    def list(self, *, status: str | None = None, created_by: str | None = None, limit: int = 50) -> list[FlightJob]:
        """Flights newest first, optionally of one status and one submitter."""
        query = select(Flight).order_by(Flight.created_at.desc(), Flight.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Flight.status == status)
        if created_by is not None:
            query = query.where(Flight.created_by == created_by)
        with self._sessions() as session:
            return [FlightJob.from_row(r) for r in session.scalars(query)]

    def counts_by_status(self) -> dict[str, int]:
        counts = {s: 0 for s in FLIGHT_STATUSES}
        with self._sessions() as session:
            for status, n in session.execute(select(Flight.status, func.count()).group_by(Flight.status)):
                counts[status] = n
        return counts

    def cases_opened(self, flight_ids: Iterable[str]) -> dict[str, int]:
        """Cases whose origin is each flight (cases of an earlier flight that a flight updated are not counted
        here; `FlightJob.case_ids` has them)."""
        ids = list(flight_ids)
        if not ids:
            return {}
        with self._sessions() as session:
            rows = session.execute(select(Case.flight_id, func.count()).where(Case.flight_id.in_(ids))
                                   .group_by(Case.flight_id))
            return {flight_id: n for flight_id, n in rows}

    # --- the job's life ---------------------------------------------------------------------------------

    def claim_next(self) -> FlightJob | None:
        """The oldest ``queued`` flight, now ``running`` (started now, progress reset, one more attempt); None
        when nothing is queued. Safe with several claimers (PostgreSQL: ``SKIP LOCKED``; SQLite: every
        transaction is ``BEGIN IMMEDIATE``, so one claimer at a time)."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.scalars(select(Flight).where(Flight.status == "queued")
                                  .order_by(Flight.created_at, Flight.id).limit(1)
                                  .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            self._reset_progress(row)
            row.status = "running"
            row.started_at = now
            row.ended_at = None
            row.error = None
            row.attempts = int(row.attempts or 0) + 1
            row.updated_at = now
            session.flush()
            return FlightJob.from_row(row)

    @staticmethod
    def _reset_progress(row: Flight) -> None:
        row.stage = None
        row.progress = 0.0
        row.frames_done = 0
        row.frames_total = None
        row.findings = None
        row.eta_s = None
        row.notes = None

    def requeue_interrupted(self) -> list[str]:
        """Flights left ``running`` by a service that stopped (killed): back to ``queued`` from scratch, or
        ``cancelled`` when a cancel had been asked for. Returns the ids put back in the queue."""
        now = self._clock()
        with self._sessions.begin() as session:
            rows = session.scalars(select(Flight).where(Flight.status == "running")).all()
            requeued = []
            for row in rows:
                self._reset_progress(row)
                row.updated_at = now
                if row.cancel_requested:
                    row.status, row.ended_at = "cancelled", now
                else:
                    row.status, row.started_at = "queued", None
                    requeued.append(row.id)
            return requeued

    def write_progress(self, flight_id: str, progress: "FlightProgress") -> bool:
        """Record a running flight's progress; returns whether a cancel was asked for."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._row(session, flight_id)
            if row.status == "running":
                row.stage = progress.stage
                row.progress = round(float(progress.fraction), 4)
                row.frames_done = int(progress.frames_done)
                row.frames_total = int(progress.frames_total) if progress.frames_total else None
                row.findings = int(progress.findings)
                row.eta_s = None if progress.eta_s is None else round(float(progress.eta_s), 1)
                row.updated_at = now
            return bool(row.cancel_requested)

    def finish(self, flight_id: str, status: str, *, error: str | None = None, notes: Iterable[str] = (),
               findings: int | None = None, case_ids: Iterable[int] = ()) -> FlightJob:
        """End a running flight: ``done`` (progress 1), ``failed`` (with the one-line `error`) or
        ``cancelled``."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish: status must be one of {FINAL_STATUSES}, got {status!r}")
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._row(session, flight_id)
            row.status = status
            row.ended_at = now
            row.updated_at = now
            row.error = error
            row.eta_s = None
            row.notes = [str(n) for n in notes] or row.notes
            row.case_ids = [int(c) for c in case_ids] or row.case_ids
            if findings is not None:
                row.findings = findings
            if status == "done":
                row.stage, row.progress = "done", 1.0
            session.flush()
            return FlightJob.from_row(row)

    def requeue(self, flight_id: str) -> None:
        """Put a running flight back in the queue (the service is shutting down in the middle of it)."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._row(session, flight_id)
            if row.status == "running":
                self._reset_progress(row)
                row.status, row.started_at, row.updated_at = "queued", None, now

    def request_cancel(self, flight_id: str) -> FlightJob:
        """Cancel a flight: a queued one at once; a running one when its worker next reports progress
        (``cancel_requested``; the worker in this process is told directly by the API as well).

        Raises:
            FlightNotFoundError: No such flight.
            FlightStateError: The flight has ended already.
        """
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._row(session, flight_id)
            if row.status not in ACTIVE_STATUSES:
                raise FlightStateError(f"flight {flight_id}: is {row.status}; only a queued or running flight can "
                                       f"be cancelled")
            if row.status == "queued":
                row.status, row.ended_at = "cancelled", now
            row.cancel_requested = True
            row.updated_at = now
            session.flush()
            return FlightJob.from_row(row)

    def cancel_requested(self, flight_id: str) -> bool:
        with self._sessions() as session:
            return bool(self._row(session, flight_id).cancel_requested)

    def running(self) -> list[FlightJob]:
        with self._sessions() as session:
            return [FlightJob.from_row(r) for r in session.scalars(select(Flight).where(Flight.status == "running"))]


# --- files -----------------------------------------------------------------------------------------------

def flight_file(out_dir: Path, relative: str) -> Path | None:
    """The file `relative` inside a flight's output folder, or None when it is not one (missing, a folder, or a
    path leading outside it: ``..``, an absolute path, a link out of the folder).

    Example:
        >>> flight_file(Path("/nonexistent"), "../../etc/passwd") is None
        True
    """
    if not relative or "\\" in relative or "\0" in relative:
        return None
    rel = PurePosixPath(relative)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts):
        return None
    root = out_dir.resolve()
    path = (root / Path(*rel.parts)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def extract_stills(zip_path: Path, dest: Path, *, max_bytes: int, max_files: int = 100_000) -> int:
    """Unpack the JPEG stills of a zip into `dest` (flat: folders inside the zip are dropped, names made safe);
    other members are ignored. Returns the number of stills.

    A zip is untrusted: member names never leave `dest` (only the base name is kept), and the unpacked size
    is capped by what the member headers declare and by what is actually written (a zip bomb stops at
    `max_bytes`).

    Raises:
        StillsError: Not a zip, no JPEG in it, two stills with the same name, or too large.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StillsError(f"stills: {zip_path.name} is not a zip file ({exc})") from None
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    count = 0
    names: set[str] = set()
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and PurePosixPath(m.filename).suffix.lower() in STILL_SUFFIXES
                   and not PurePosixPath(m.filename).name.startswith(".")]
        if not members:
            raise StillsError(f"stills: {zip_path.name} holds no JPEG still (.jpg/.jpeg)")
        if len(members) > max_files:
            raise StillsError(f"stills: {zip_path.name} holds {len(members)} stills; at most {max_files}")
        declared = sum(m.file_size for m in members)
        if declared > max_bytes:
            raise StillsError(f"stills: {zip_path.name} unpacks to {declared} bytes; the limit is {max_bytes}")
        for member in members:
            name = _safe_name(PurePosixPath(member.filename).name)
            if name.lower() in names:
                raise StillsError(f"stills: {zip_path.name} holds two stills named {name!r} (in different folders)")
            names.add(name.lower())
            with archive.open(member) as src, open(dest / name, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise StillsError(f"stills: {zip_path.name} unpacks to more than {max_bytes} bytes")
                    out.write(chunk)
            count += 1
    return count


def _safe_name(name: str) -> str:
    """A file name safe to create: letters, digits, ``._-`` (others become ``_``), no leading dot."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name).lstrip(".")
    return cleaned[:120] or "file"


class ReportLinks:
    """Short-lived links that let a browser open a flight's report without an API key.

    A browser tab cannot send the ``Authorization`` header, so the review page asks the API (with its key) for a
    link: ``/api/v1/flights/<id>/shared/<token>/report.html``, where the token is the expiry time and an
    HMAC-SHA256 of the flight id and that time under a secret of this service instance. The report's images
    load by relative path under the same prefix. The secret is made when the service starts, so links die
    with a restart (and after `ttl_s`).

    Example:
        >>> links = ReportLinks(ttl_s=60, secret=b"k" * 32, clock=lambda: 1000.0)
        >>> token = links.token("f-1")
        >>> links.valid("f-1", token), links.valid("f-2", token)
        (True, False)
    """

    def __init__(self, ttl_s: float = 3600.0, secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self.ttl_s = ttl_s
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock

    def _mac(self, flight_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{flight_id}|{expires}".encode(), hashlib.sha256).hexdigest()[:40]

    def token(self, flight_id: str) -> str:
        expires = int(self._clock() + self.ttl_s)
        return f"{expires}.{self._mac(flight_id, expires)}"

    def expires_at(self, token: str) -> datetime:
        return datetime.fromtimestamp(int(token.split(".", 1)[0]), timezone.utc)

    def valid(self, flight_id: str, token: str) -> bool:
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        return expires >= self._clock() and hmac.compare_digest(mac, self._mac(flight_id, expires))


# --- the worker ------------------------------------------------------------------------------------------

@dataclass
class FlightWorkerState:
    """What the flight worker is doing (for logs and tests; the API reads the rows).

    Attributes:
        current: The flight it runs (None: idle).
        runs: Flights it ran to an end (done, failed or cancelled) since it started.
        last_error: The latest failure, one line.
    """

    current: str | None = None
    runs: int = 0
    last_error: str | None = None
    requeued_at_start: list[str] = field(default_factory=list)


class FlightWorker:
    """The background thread that runs queued flights one at a time (see the module docstring).

    Args:
        store: The flight rows.
        cases: Where the flights' violations become cases.
        config: Returns the current configuration (its ``drone`` and ``grid`` sections, category codes).
        flights_dir: ``<flights_dir>/<flight_id>/out`` receives each flight's output.
        threads: onnxruntime intra-op threads of the flight detector.
        progress_interval_s: Progress is written to the row at most this often (and at every stage change).
        poll_s: Sleep between looks for a queued flight (`wake` cuts it short).
        case_url: How the report links each finding's case (``{case_id}`` is replaced).
        runner: `service.drone.run_flight` or a stand-in with its signature (tests).
        ingest: `service.drone.ingest_flight` or a stand-in.
        report: ``write_report(out_dir, case_url=...)`` (`service.report.write_report`) or a stand-in; it is
            called after the cases exist so the report links them.
    """

    def __init__(self, store: FlightStore, cases: "CaseStore", config: Callable[[], "AppConfig"], flights_dir: Path,
                 *, threads: int = 1, progress_interval_s: float = 1.0, poll_s: float = 2.0,
                 case_url: str = CASE_URL, runner: Callable[..., "FlightResult"] | None = None,
                 ingest: Callable[..., list[int]] | None = None, report: Callable[..., Any] | None = None) -> None:
        self.store = store
        self.cases = cases
        self.config = config
        self.flights_dir = Path(flights_dir)
        self.threads = threads
        self.progress_interval_s = progress_interval_s
        self.poll_s = poll_s
        self.case_url = case_url
        self._runner = runner
        self._ingest = ingest
        self._report = report
        self.state = FlightWorkerState()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None

    # --- life --------------------------------------------------------------------------------------------

    def start(self) -> "FlightWorker":
        """Put flights a killed service left running back in the queue, then start the thread."""
        self.state.requeued_at_start = self.store.requeue_interrupted()
        for flight_id in self.state.requeued_at_start:
            log.warning("flight %s: was running when the service stopped; queued again (runs from the start)",
                        flight_id)
        self._thread = threading.Thread(target=self._main, name="flights", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop: a running flight is interrupted at its next frame and queued again (it runs at the next start)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look for a queued flight now (a flight was just submitted)."""
        self._wake.set()

    def cancel(self, flight_id: str) -> bool:
        """Interrupt `flight_id` if this worker is running it (the row says ``cancel_requested`` already)."""
        with self._lock:
            if self.state.current == flight_id and self._cancel is not None:
                self._cancel.set()
                return True
        return False

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception as exc:  # the database went away for a moment: keep the loop alive
                self.state.last_error = one_line(exc)
                log.exception("flight worker: the flight queue could not be read")
                ran = None
                self._stop.wait(5.0)
            if ran is None and not self._stop.is_set():
                self._wake.wait(self.poll_s)
                self._wake.clear()

    # --- one flight -------------------------------------------------------------------------------------

    def run_once(self) -> str | None:
        """Run the oldest queued flight to its end; returns its id, or None when nothing was queued."""
        job = self.store.claim_next()
        if job is None:
            return None
        cancel = threading.Event()
        with self._lock:
            self.state.current = job.id
            self._cancel = cancel
        if self._stop.is_set():
            cancel.set()
        log.info("flight %s: started (attempt %d)", job.id, job.attempts)
        try:
            status = self._run(job, cancel)
        finally:
            with self._lock:
                self.state.current = None
                self._cancel = None
        if status is not None:
            self.state.runs += 1
        return job.id

    def _run(self, job: FlightJob, cancel: threading.Event) -> str | None:
        from service.drone import FlightCancelled

        last = {"t": float("-inf"), "stage": None}

        def progress(p: "FlightProgress") -> None:
            now = time.monotonic()
            if p.stage == last["stage"] and now - last["t"] < self.progress_interval_s:
                return
            last["t"], last["stage"] = now, p.stage
            if self.store.write_progress(job.id, p):
                cancel.set()

        try:
            if job.input is None:
                raise FlightError(f"flight {job.id}: no input recorded (it was not submitted as a job)")
            inp = job.input.flight_input()
            config = self.config()
            result = self._call_runner(inp, config, self.flights_dir / job.id / "out", flight_id=job.id,
                                       name=job.name, progress=progress, cancel=cancel, threads=self.threads)
            if cancel.is_set():  # asked for after the last frame: honoured before any case is made
                raise FlightCancelled(f"flight {job.id}: cancelled")
            case_ids = self._call_ingest(self.cases, result, config, name=job.name, source=job.source)
            notes = list(result.summary.get("notes", ())) if isinstance(result.summary, dict) else []
            try:
                self._call_report(result.out_dir, case_url=self.case_url)
            except Exception as exc:  # the cases exist; a report without case links is still a report
                log.exception("flight %s: report not rewritten with case links", job.id)
                notes.append(f"report not rewritten with case links: {one_line(exc)}")
            self.store.finish(job.id, "done", notes=notes, findings=len(result.findings), case_ids=case_ids)
            log.info("flight %s: done, %d finding(s), %d case(s)", job.id, len(result.findings), len(case_ids))
            return "done"
        except FlightCancelled:
            if self._stop.is_set() and not self.store.cancel_requested(job.id):
                self.store.requeue(job.id)  # the service is stopping: run it again at the next start
                log.info("flight %s: interrupted by shutdown; queued again", job.id)
                return None
            self.store.finish(job.id, "cancelled")
            log.info("flight %s: cancelled", job.id)
            return "cancelled"
        except StreetwatchError as exc:
            self.state.last_error = one_line(exc)
            self.store.finish(job.id, "failed", error=one_line(exc))
            log.error("flight %s: failed: %s", job.id, one_line(exc))
            return "failed"
        except Exception as exc:  # a bug or a full disk: this flight fails, the worker goes on
            self.state.last_error = one_line(exc)
            log.exception("flight %s: failed", job.id)
            self.store.finish(job.id, "failed", error=f"internal error: {one_line(exc)}")
            return "failed"

    def _call_runner(self, *args: Any, **kwargs: Any) -> "FlightResult":
        if self._runner is None:
            from service.drone import run_flight

            self._runner = run_flight
        return self._runner(*args, **kwargs)

    def _call_ingest(self, *args: Any, **kwargs: Any) -> list[int]:
        if self._ingest is None:
            from service.drone import ingest_flight

            self._ingest = ingest_flight
        return self._ingest(*args, **kwargs)

    def _call_report(self, out_dir: Path, case_url: str) -> None:
        if self._report is None:
            from service.report import write_report

            self._report = write_report
        self._report(out_dir, case_url=case_url)


def remove_flight_dir(flights_dir: Path, flight_id: str) -> None:
    """Remove a flight's folder (an upload that was refused half-way)."""
    shutil.rmtree(Path(flights_dir) / flight_id, ignore_errors=True)
