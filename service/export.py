"""Bulk export of cases: a zip with ``cases.csv``, ``cases.geojson`` and the blurred evidence images.

Layout of the zip (``GET /api/v1/export`` and ``streetwatch export``)::

    evidence/<case_id>/<file>   the public (blurred) copy of each evidence image (`service.privacy`)
    cases.csv                   one row per case, UTF-8 with a BOM (Excel then reads Chinese addresses)
    cases.geojson               RFC 7946 FeatureCollection: a Point per case that has lat/lon, properties =
                                the CSV columns (typed: numbers as numbers, empty as null)

The zip is produced as a stream of chunks (`iter_export_zip`): images are read and passed on 64 KiB at a time,
so memory stays flat however many images a range holds; only the table rows (a few hundred bytes a case, at
most `Settings.export_max_cases` cases) are held until the end, where the CSV and GeoJSON are written. No file
in it names a server path: evidence is named by its zip path, and an image that is missing or cannot be blurred
is listed in ``evidence_withheld`` with the reason instead of being dropped silently.

Example:
    >>> ids = select_case_ids(session_factory, CaseFilter(status="confirmed"), max_cases=5000)  # doctest: +SKIP
    >>> with open("cases.zip", "wb") as f:                                                    # doctest: +SKIP
    ...     for chunk in iter_export_zip(store, ids, resolve):
    ...         f.write(chunk)
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detector.errors import StreetwatchError
from service.cases import CaseFilter, CasePublic, CaseStore, EvidencePublic, filter_cases
from service.db.models import Case
from service.evidence_links import served_evidence_path
from service.privacy import PrivacyError, PublicCopies
from service.settings import Settings, flights_dir

__all__ = ["CSV_COLUMNS", "ExportError", "TooManyCasesError", "case_feature", "case_row", "csv_cells",
           "iter_export_zip", "public_evidence_resolver", "select_case_ids"]

CSV_COLUMNS = ("case_id", "status", "kind", "corrected_kind", "category_code", "camera_id", "flight_id", "zone_id",
               "first_seen", "last_seen", "ended_at", "dwell_s", "score", "lat_deg", "lon_deg", "address",
               "grid_code", "class_name", "reject_reason", "merged_into", "evidence", "evidence_withheld")
# Free-text columns a spreadsheet might run as a formula (OWASP "CSV injection"); numbers are never touched, so
# a negative longitude stays a number.
_TEXT_COLUMNS = frozenset({"kind", "corrected_kind", "category_code", "camera_id", "flight_id", "zone_id", "address",
                           "grid_code", "class_name", "reject_reason", "evidence", "evidence_withheld"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024

EvidenceResolver = Callable[[CasePublic, EvidencePublic], Path]
"""The file to put in the zip for one evidence row (its blurred copy); raises `ExportError` (or
`service.privacy.PrivacyError`) with the reason when there is none."""


class ExportError(StreetwatchError):
    """An export that cannot be made, or one evidence file that cannot go into it (the message says why)."""


class TooManyCasesError(ExportError):
    """The filters select more cases than one export may hold."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} cases match: narrow the time range or the filters (the limit is "
                         "export_max_cases in the settings)")
        self.limit = limit


def select_case_ids(session_factory: sessionmaker[Session], filters: CaseFilter, max_cases: int) -> list[int]:
    """The ids of the cases `filters` selects, oldest first, with the same meaning as `CaseStore.list_cases`
    (status, camera, flight and kind equal; observed in the time range: last seen at or after ``seen_from``,
    first seen before ``seen_to``).

    Raises:
        TooManyCasesError: More than `max_cases` match (only `max_cases` + 1 ids are read to find out).
    """
    query = filter_cases(select(Case.id).order_by(Case.id).limit(max_cases + 1), filters)
    with session_factory() as session:
        ids = list(session.scalars(query))
    if len(ids) > max_cases:
        raise TooManyCasesError(max_cases)
    return ids


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def case_row(case: CasePublic, included: Iterable[str] = (), withheld: Iterable[str] = ()) -> dict[str, Any]:
    """The export's record of one case (typed values; None for empty), keyed by `CSV_COLUMNS`.

    Args:
        case: The case.
        included: Zip paths of its evidence images in the export.
        withheld: ``<file>: <reason>`` for each evidence image left out.
    """
    return {
        "case_id": case.id, "status": case.status, "kind": case.kind, "corrected_kind": case.corrected_kind,
        "category_code": case.category_code, "camera_id": case.camera_id, "flight_id": case.flight_id,
        "zone_id": case.zone_id, "first_seen": case.first_seen.isoformat(), "last_seen": case.last_seen.isoformat(),
        "ended_at": case.ended_at.isoformat() if case.ended_at else None, "dwell_s": round(case.dwell_s, 1),
        "score": round(case.score, 4), "lat_deg": case.lat_deg, "lon_deg": case.lon_deg,
        "address": case.address or None, "grid_code": case.grid_code or None, "class_name": case.class_name,
        "reject_reason": case.reject_reason, "merged_into": case.merged_into,
        "evidence": ";".join(included) or None, "evidence_withheld": "; ".join(withheld) or None,
    }


def csv_cells(row: dict[str, Any]) -> list[str]:
    """One CSV line's cells: empty for None, free text that would start a formula prefixed with ``'``."""
    cells = []
    for column in CSV_COLUMNS:
        text = _cell(row[column])
        if column in _TEXT_COLUMNS and text.startswith(_FORMULA_START):
            text = "'" + text
        cells.append(text)
    return cells


def case_feature(row: dict[str, Any]) -> dict[str, Any] | None:
    """The GeoJSON Feature of one export record: a Point at [lon, lat] (RFC 7946 order), or None without both."""
    if row["lat_deg"] is None or row["lon_deg"] is None:
        return None
    return {"type": "Feature", "id": row["case_id"],
            "geometry": {"type": "Point", "coordinates": [row["lon_deg"], row["lat_deg"]]},
            "properties": dict(row)}


class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable file that keeps what is written until `drain` (zipfile then writes data
    descriptors instead of seeking back, which is what makes the zip streamable)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._chunks.append(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def iter_export_zip(store: CaseStore, case_ids: Iterable[int], resolve: EvidenceResolver,
                    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Iterator[bytes]:
    """The export zip of the cases `case_ids`, as a stream of byte chunks (see the module doc).

    Args:
        store: The case store.
        case_ids: The cases, in the order of the CSV rows (`select_case_ids`).
        resolve: The blurred file for each evidence row (raises with the reason when there is none).
        now: The time stamped on the zip's entries.
    """
    stamp = now().astimezone(timezone.utc).timetuple()[:6]
    sink = _ChunkSink()
    rows: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as zf:
        for case_id in case_ids:
            case = store.get(case_id)
            included: list[str] = []
            withheld: list[str] = []
            for evidence in case.evidence:
                try:
                    src = resolve(case, evidence).open("rb")
                except (ExportError, PrivacyError, OSError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    withheld.append(f"{evidence.file}: {_strip_paths(reason, evidence.file)}")
                    continue
                name = f"evidence/{case.id}/{evidence.file}"
                # JPEG and PNG are compressed already: stored, not deflated again.
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o600 << 16
                # A read error half-way propagates: the stream breaks off rather than holding a cut image.
                with src, zf.open(info, "w", force_zip64=True) as dst:
                    while chunk := src.read(CHUNK_BYTES):
                        dst.write(chunk)
                        if data := sink.drain():
                            yield data
                included.append(name)
                if data := sink.drain():
                    yield data
            rows.append(case_row(case, included, withheld))
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_cells(r) for r in rows)
        _write_text(zf, "cases.csv", "\ufeff" + table.getvalue(), stamp)
        features = [f for f in (case_feature(r) for r in rows) if f is not None]
        _write_text(zf, "cases.geojson", json.dumps({"type": "FeatureCollection", "features": features},
                                                    ensure_ascii=False, separators=(",", ":")), stamp)
    yield sink.drain()


def public_evidence_resolver(settings: Settings, copies: PublicCopies) -> EvidenceResolver:
    """The resolver of the service's exports: the blurred copy of each evidence file that may be served (under
    the evidence folder or the flights' folder, and existing), as the signed links serve it."""

    def resolve(case: CasePublic, evidence: EvidencePublic) -> Path:
        path = served_evidence_path(evidence.path, settings.evidence_dir, (flights_dir(settings),))
        if path is None:
            raise ExportError("the file is missing (removed by the retention policy?)")
        return copies.public_path(path, evidence.kind, evidence.boxes)

    return resolve


def _write_text(zf: zipfile.ZipFile, name: str, text: str, stamp: tuple[int, ...]) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    zf.writestr(info, text.encode("utf-8"))


def _strip_paths(reason: str, file: str) -> str:
    """A reason without any server folder in it (an OSError's message may carry the full path)."""
    words = [file if ("/" in w or "\\" in w) else w for w in reason.split()]
    return " ".join(words)
